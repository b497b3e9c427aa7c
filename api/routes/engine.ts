import { Router, type Response } from 'express';
import { z } from 'zod';
import { MODE_REQUESTS, STOP_CONDITIONS } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { sequenceUsesTemplates, templateNotSupported, toSequenceDef } from '../../services/sequences';
import { LeadUpdateRejected, type ParleyTemporal } from '../../temporal/client';
import { sequenceStepSchema, templateRefSchema } from '../../workflows/lead/policy/schemas';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';

const createSequenceBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  steps: z.array(sequenceStepSchema).min(1).max(50),
  stopOn: z.array(z.enum(STOP_CONDITIONS)).max(STOP_CONDITIONS.length).default([...STOP_CONDITIONS]),
});
const createRuleBody = z.strictObject({
  sequenceId: z.uuid(),
  agentId: z.uuid().optional(),
  channelAccountId: z.uuid().optional(),
});
const stageBody = z.strictObject({ stage: z.string().trim().min(1).max(100) });
const modeBody = z.strictObject({ request: z.enum(MODE_REQUESTS) });
const enrollBody = z.strictObject({ sequenceId: z.uuid() });
const messageBody = z.union([
  z.strictObject({ text: z.string().trim().min(1).max(4096) }),
  z.strictObject({ template: templateRefSchema }),
]);

/** Reasons the lead workflow gives that deserve their own error code. */
const REASON_CODES: Record<string, string> = { window_closed: 'window_closed', no_template: 'no_template', contact_opted_out: 'contact_opted_out' };

/** A refused update is a 409 with the workflow's reason. */
function rejected(err: unknown): never {
  if (err instanceof LeadUpdateRejected) throw new AppError('conflict', err.reason, undefined, REASON_CODES[err.reason] ?? 'invalid_transition');
  throw err;
}

/**
 * The conversation engine's API: sequences, enrolment rules, and actions on a lead that go
 * through its workflow as synchronous Temporal updates (invalid transitions → 409 with the reason).
 */
export function createEngineRouter(deps: { services: Services; temporal: ParleyTemporal }): Router {
  const { services, temporal } = deps;
  const r = Router();
  const auth = tenantAuth(services); // tenant key, then the tenant's API rate limit
  r.use('/v1/sequences', auth);
  r.use('/v1/enrollment-rules', auth);
  r.use('/v1/leads/:leadId', auth);

  r.post('/v1/sequences', validate({ body: createSequenceBody }), async (_req, res) => {
    res.status(201).json(await services.sequences.create(res.locals.tenantId, res.locals.body));
  });
  r.get('/v1/sequences', validate({ query: pageQuery }), async (_req, res) => {
    res.json(await services.sequences.list(res.locals.tenantId, res.locals.query));
  });
  r.post('/v1/enrollment-rules', validate({ body: createRuleBody }), async (_req, res) => {
    res.status(201).json(await services.sequences.createRule(res.locals.tenantId, res.locals.body));
  });
  r.get('/v1/enrollment-rules', validate({ query: pageQuery }), async (_req, res) => {
    res.json(await services.sequences.listRules(res.locals.tenantId, res.locals.query));
  });

  async function leadOf(res: Response, rawId: unknown) {
    const id = z.uuid().safeParse(rawId);
    const lead = id.success ? await services.leads.get(res.locals.tenantId, id.data) : undefined;
    if (!lead) throw new AppError('not_found', 'lead not found');
    return lead;
  }

  for (const action of ['pause', 'resume', 'reset', 'skip'] as const) {
    r.post(`/v1/leads/:leadId/sequence/${action}`, validate({ body: z.strictObject({}) }), async (req, res) => {
      const lead = await leadOf(res, req.params.leadId);
      const cursor = await temporal.sequence(lead.workflowId, { action }).catch(rejected);
      res.json({ sequence: cursor });
    });
  }
  r.post('/v1/leads/:leadId/sequence/enroll', validate({ body: enrollBody }), async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    const seq = await services.sequences.get(res.locals.tenantId, res.locals.body.sequenceId);
    if (!seq) throw new AppError('validation_failed', 'sequenceId does not name a sequence of this tenant', [{ path: 'sequenceId', message: 'unknown sequence' }]);
    if (lead.channel !== 'whatsapp' && sequenceUsesTemplates(seq.steps)) throw templateNotSupported(lead.channel, 'the sequence has template steps');
    // opt-out: no sequence for a contact on the tenant's suppression list (its steps would be refused one by one)
    if (await services.suppressions.find({ tenantId: res.locals.tenantId, channelAccountId: lead.channelAccountId, contactId: lead.contactId })) {
      throw new AppError('conflict', 'the contact opted out (it is on the suppression list); it must write START first, or be removed from the list', undefined, 'contact_opted_out');
    }
    const cursor = await temporal.sequence(lead.workflowId, { action: 'enroll', sequence: toSequenceDef(seq) }).catch(rejected);
    res.json({ sequence: cursor });
  });

  r.post('/v1/leads/:leadId/stage', validate({ body: stageBody }), async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    if (!(await services.pipelines.stageExists(res.locals.tenantId, res.locals.body.stage))) {
      throw new AppError('validation_failed', `no pipeline of this tenant has a stage named ${res.locals.body.stage}`, [{ path: 'stage', message: 'unknown stage' }]);
    }
    res.json(await temporal.setStage(lead.workflowId, res.locals.body.stage).catch(rejected));
  });

  r.post('/v1/leads/:leadId/mode', validate({ body: modeBody }), async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    res.json(await temporal.setMode(lead.workflowId, res.locals.body.request).catch(rejected));
  });
  for (const request of ['handoff', 'handback'] as const) {
    r.post(`/v1/leads/:leadId/${request}`, validate({ body: z.strictObject({}) }), async (req, res) => {
      const lead = await leadOf(res, req.params.leadId);
      res.json(await temporal.setMode(lead.workflowId, request).catch(rejected));
    });
  }

  r.post('/v1/leads/:leadId/messages', validate({ body: messageBody }), async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    const body = res.locals.body as z.infer<typeof messageBody>;
    if ('template' in body && lead.channel !== 'whatsapp') throw templateNotSupported(lead.channel, 'a template message');
    const requestId = crypto.randomUUID();
    const result = await temporal
      .sendMessage(lead.workflowId, 'text' in body ? { requestId, kind: 'text', text: body.text } : { requestId, kind: 'template', template: body.template })
      .catch(rejected);
    if (result.status === 'sent') res.status(201).json(result);
    else if (result.status === 'queued') res.status(202).json(result);
    else if (result.status === 'refused') throw new AppError('conflict', result.reason ?? 'refused', undefined, result.reason);
    else res.status(502).json({ error: { code: 'delivery_failed', message: result.reason ?? 'delivery failed', outboundMessageId: result.outboundMessageId } });
  });
  return r;
}
