import { Router, type Response } from 'express';
import { z } from 'zod';
import { MODE_REQUESTS, STOP_CONDITIONS } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { sequenceArchived, sequenceUsesTemplates, templateNotSupported, toSequenceDef } from '../../services/sequences';
import { LeadUpdateRejected, type ParleyTemporal } from '../../temporal/client';
import { channelProblems, libraryMediaRefs, type RichMessage } from '../../contract/rich';
import { interactiveMessageSchema, locationMessageSchema, mediaMessageSchema, reactionMessageSchema, sequenceStepSchema, templateRefSchema } from '../../workflows/lead/policy/schemas';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { LEAD_ACTORS, LEAD_READERS, MANAGERS, SETUP_READERS, allow } from '../access';
import type { ApiKeyPrincipal } from '../../services/api-keys';
import { pageOf } from '../schemas/common';
import { enrollmentRule, sequence } from '../schemas/setup';
import { doc, type RouteDoc } from '../openapi';
import { leadExtractAnswer, leadFollowUpCancelled, leadFollowUpList, leadModeAnswer, leadSendFailed, leadSendResult, leadSequenceAnswer, leadStageAnswer } from '../schemas/leads';
import type { FollowUp } from '../../contract/agent-tools';
import { isFollowUpNotFound } from '../../workflows/lead/policy/follow-ups';

/** The mode requests an `agent` key may make. */
const AGENT_MODE_REQUESTS = new Set<string>(['handoff', 'handback']);

const createSequenceBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  steps: z.array(sequenceStepSchema).min(1).max(50),
  stopOn: z.array(z.enum(STOP_CONDITIONS)).max(STOP_CONDITIONS.length).default([...STOP_CONDITIONS]).meta({ description: 'Events that stop the sequence for a lead (default: all)' }),
});
const createRuleBody = z.strictObject({
  sequenceId: z.uuid(),
  agentId: z.uuid().optional().meta({ description: 'Only new leads of this agent (absent: any agent)' }),
  channelAccountId: z.uuid().optional().meta({ description: 'Only new leads on this channel (absent: any channel)' }),
});
const stageBody = z.strictObject({ stage: z.string().trim().min(1).max(100) });
const modeBody = z.strictObject({ request: z.enum(MODE_REQUESTS) });
const enrollBody = z.strictObject({ sequenceId: z.uuid() });
const messageBody = z.union([
  z.strictObject({ text: z.string().trim().min(1).max(4096) }),
  z.strictObject({ template: templateRefSchema }),
  z.strictObject({ interactive: interactiveMessageSchema }),
  z.strictObject({ media: mediaMessageSchema }),
  z.strictObject({ location: locationMessageSchema }),
  z.strictObject({ reaction: reactionMessageSchema }),
]);

/** The rich message of a request body (contract/rich.ts), or undefined for text and templates. */
function richOf(body: z.infer<typeof messageBody>): RichMessage | undefined {
  if ('interactive' in body) return { kind: 'interactive', interactive: body.interactive };
  if ('media' in body) return { kind: 'media', media: body.media };
  if ('location' in body) return { kind: 'location', location: body.location };
  if ('reaction' in body) return { kind: 'reaction', reaction: body.reaction };
  return undefined;
}

const followUpParams = z.strictObject({ leadId: z.string(), followUpId: z.uuid('must be a uuid') });

/** A scheduled follow-up as the API shows it (the template by name). */
function presentFollowUp(f: FollowUp): z.infer<typeof leadFollowUpList>['items'][number] {
  return { id: f.id, at: f.at, note: f.note, template: f.template?.name ?? null };
}

/** Reasons the lead workflow gives that deserve their own error code. */
const REASON_CODES: Record<string, string> = { window_closed: 'window_closed', no_template: 'no_template', contact_opted_out: 'contact_opted_out' };

/** A refused update is a 409 with the workflow's reason. */
function rejected(err: unknown): never {
  if (err instanceof LeadUpdateRejected) throw new AppError('conflict', err.reason, undefined, REASON_CODES[err.reason] ?? 'invalid_transition');
  throw err;
}

const SEQUENCE_ACTION_DOCS: Record<'pause' | 'resume' | 'skip', RouteDoc> = {
  pause: { summary: "Pause a lead's sequence", description: 'The delay left is kept (`remainingMs`). 409 unless the sequence is active.', responses: { 200: leadSequenceAnswer } },
  resume: { summary: "Resume a lead's paused sequence", description: 'The current step is due after the delay that was left. 409 unless the sequence is paused.', responses: { 200: leadSequenceAnswer } },
  skip: { summary: "Skip the current step of a lead's sequence", description: 'The next step is due now (a paused sequence stays paused, with no delay left); skipping the last step completes the sequence. 409 unless the sequence is active or paused.', responses: { 200: leadSequenceAnswer } },
};
const HANDOVER_DOCS: Record<'handoff' | 'handback', RouteDoc> = {
  handoff: { summary: 'Hand a lead to a human', description: 'Mode human: the AI stops answering and sequences stop. Same as POST /v1/leads/{leadId}/mode with `handoff`.', responses: { 200: leadModeAnswer } },
  handback: { summary: 'Hand a lead back to the AI', description: 'Mode ai again. Same as POST /v1/leads/{leadId}/mode with `handback`.', responses: { 200: leadModeAnswer } },
};

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

  r.post('/v1/sequences', allow(...MANAGERS), validate({ body: createSequenceBody }), doc({ summary: 'Create a follow-up sequence', description: 'Version 1 of the sequence. `stopOn` defaults to every stop condition. Leads enter it by an enrolment rule or POST /v1/leads/{leadId}/sequence/enroll; a sequence with template steps (or fallback templates) enrols WhatsApp leads only. A rich step naming a media library file (`libraryId`) is checked as for a manual message: 404 `media_not_found`, 400 `media_kind_mismatch`.', responses: { 201: sequence } }), async (_req, res) => {
    // media library files the rich steps name: this tenant's, of the step's kind (404 / 400 before anything is stored)
    const steps = (res.locals.body as z.infer<typeof createSequenceBody>).steps;
    for (const [n, step] of steps.entries()) if (step.message) await services.mediaLibrary.checkForMessage(res.locals.tenantId, libraryMediaRefs(step.message), `steps.${n}.message.`);
    res.status(201).json(await services.sequences.create(res.locals.tenantId, res.locals.body, { createdBy: (res.locals.apiKey as ApiKeyPrincipal).keyId }));
  });
  r.get('/v1/sequences', allow(...SETUP_READERS), validate({ query: pageQuery }), doc({ summary: 'List sequences', description: 'Oldest first, archived ones included.', responses: { 200: pageOf(sequence) } }), async (_req, res) => {
    res.json(await services.sequences.list(res.locals.tenantId, res.locals.query));
  });
  r.post('/v1/enrollment-rules', allow(...MANAGERS), validate({ body: createRuleBody }), doc({ summary: 'Create an enrolment rule', description: 'A new lead of `agentId` (absent: any agent) on `channelAccountId` (absent: any channel) is enrolled in `sequenceId`; the oldest matching rule of a sequence not archived wins. 409 `sequence_archived` for an archived sequence, 409 `template_not_supported` for a sequence with template steps on a channel that is not WhatsApp.', responses: { 201: enrollmentRule } }), async (_req, res) => {
    res.status(201).json(await services.sequences.createRule(res.locals.tenantId, res.locals.body));
  });
  r.get('/v1/enrollment-rules', allow(...SETUP_READERS), validate({ query: pageQuery }), doc({ summary: 'List enrolment rules', description: 'Oldest first.', responses: { 200: pageOf(enrollmentRule) } }), async (_req, res) => {
    res.json(await services.sequences.listRules(res.locals.tenantId, res.locals.query));
  });

  async function leadOf(res: Response, rawId: unknown) {
    const id = z.uuid().safeParse(rawId);
    const lead = id.success ? await services.leads.get(res.locals.tenantId, id.data) : undefined;
    if (!lead) throw new AppError('not_found', 'lead not found');
    return lead;
  }

  for (const action of ['pause', 'resume', 'skip'] as const) {
    r.post(`/v1/leads/:leadId/sequence/${action}`, allow(...MANAGERS), validate({ body: z.strictObject({}) }), doc(SEQUENCE_ACTION_DOCS[action]), async (req, res) => {
      const lead = await leadOf(res, req.params.leadId);
      const cursor = await temporal.sequence(lead.workflowId, { action }).catch(rejected);
      res.json({ sequence: cursor });
    });
  }
  // A reset restarts the lead on the sequence's current version (a lead keeps the version it was
  // enrolled with until it finishes or is reset); an archived sequence restarts on the lead's own.
  r.post(
    '/v1/leads/:leadId/sequence/reset',
    allow(...MANAGERS),
    validate({ body: z.strictObject({}) }),
    doc({
      summary: "Restart a lead's sequence from its first step",
      description:
        "Back to step one, active, from any status (a stopped or completed sequence too); the enrolment time is kept. It restarts on the sequence's current version (a lead keeps the version it was enrolled with until it finishes or is reset); an archived sequence restarts on the lead's own version. 409 when the lead is not enrolled or not in ai mode.",
      responses: { 200: leadSequenceAnswer },
    }),
    async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    const own = (await temporal.leadState(lead.workflowId))?.sequence?.def;
    const latest = own ? await services.sequences.get(res.locals.tenantId, own.id) : undefined;
    const newer = latest && !latest.archived && latest.version !== own?.version ? toSequenceDef(latest) : undefined;
    if (newer && lead.channel !== 'whatsapp' && sequenceUsesTemplates(newer.steps)) throw templateNotSupported(lead.channel, 'the sequence has template steps');
    const cursor = await temporal.sequence(lead.workflowId, { action: 'reset', ...(newer ? { sequence: newer } : {}) }).catch(rejected);
    res.json({ sequence: cursor });
  });
  r.post(
    '/v1/leads/:leadId/sequence/enroll',
    allow(...MANAGERS),
    validate({ body: enrollBody }),
    doc({
      summary: 'Enrol a lead in a sequence',
      description:
        'The first step is scheduled after its delay. 409 when the sequence is archived, the lead is already in a running sequence or not in ai mode, or the contact opted out (`contact_opted_out`), or the sequence has template steps and the lead is not on WhatsApp (`template_not_supported`).',
      responses: { 200: leadSequenceAnswer },
    }),
    async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    const seq = await services.sequences.get(res.locals.tenantId, res.locals.body.sequenceId);
    if (!seq) throw new AppError('validation_failed', 'sequenceId does not name a sequence of this tenant', [{ path: 'sequenceId', message: 'unknown sequence' }]);
    if (seq.archived) throw sequenceArchived('cannot enrol in it');
    if (lead.channel !== 'whatsapp' && sequenceUsesTemplates(seq.steps)) throw templateNotSupported(lead.channel, 'the sequence has template steps');
    // opt-out: no sequence for a contact on the tenant's suppression list (its steps would be refused one by one)
    if (await services.suppressions.find({ tenantId: res.locals.tenantId, channelAccountId: lead.channelAccountId, contactId: lead.contactId })) {
      throw new AppError('conflict', 'the contact opted out (it is on the suppression list); it must write START first, or be removed from the list', undefined, 'contact_opted_out');
    }
    const cursor = await temporal.sequence(lead.workflowId, { action: 'enroll', sequence: toSequenceDef(seq) }).catch(rejected);
    res.json({ sequence: cursor });
  });

  r.post(
    '/v1/leads/:leadId/stage',
    allow(...LEAD_ACTORS),
    validate({ body: stageBody }),
    doc({ summary: "Set a lead's pipeline stage", description: "The stage must be one of the tenant's pipelines. A running sequence that stops on stage_changed stops (`sequenceStopped`).", responses: { 200: leadStageAnswer } }),
    async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    if (!(await services.pipelines.stageExists(res.locals.tenantId, res.locals.body.stage))) {
      throw new AppError('validation_failed', `no pipeline of this tenant has a stage named ${res.locals.body.stage}`, [{ path: 'stage', message: 'unknown stage' }]);
    }
    res.json(await temporal.setStage(lead.workflowId, res.locals.body.stage).catch(rejected));
  });

  r.post(
    '/v1/leads/:leadId/mode',
    allow(...LEAD_ACTORS),
    validate({ body: modeBody }),
    doc({
      summary: "Change a lead's mode",
      description:
        'handoff (to a human), handback (to the AI), pause, resume, close, reopen. An `agent` key may only hand off and hand back. A transition the current mode does not allow is a 409 with the reason.',
      responses: { 200: leadModeAnswer },
    }),
    async (req, res) => {
    // an agent key hands off and back; pausing, closing and reopening are for managers
    const role = (res.locals.apiKey as ApiKeyPrincipal).role;
    if (role === 'agent' && !AGENT_MODE_REQUESTS.has(res.locals.body.request)) {
      throw new AppError('forbidden', `an API key with role "agent" may only hand off and hand back (request ${res.locals.body.request} needs owner or manager)`);
    }
    const lead = await leadOf(res, req.params.leadId);
    res.json(await temporal.setMode(lead.workflowId, res.locals.body.request).catch(rejected));
  });
  for (const request of ['handoff', 'handback'] as const) {
    r.post(`/v1/leads/:leadId/${request}`, allow(...LEAD_ACTORS), validate({ body: z.strictObject({}) }), doc(HANDOVER_DOCS[request]), async (req, res) => {
      const lead = await leadOf(res, req.params.leadId);
      res.json(await temporal.setMode(lead.workflowId, request).catch(rejected));
    });
  }

  /** Extract the lead's data now, not after the quiet period: 202, the lead's extractions list shows the result. */
  r.post(
    '/v1/leads/:leadId/extract',
    allow(...LEAD_ACTORS),
    validate({ body: z.strictObject({}) }),
    doc({
      summary: "Extract a lead's data now",
      description: 'Asynchronous: 202 once the conversation workflow has scheduled it (now, instead of after the quiet period); GET /v1/leads/{leadId}/extractions shows the new version, if the data changed. 409 before the lead\'s first message is recorded.',
      responses: { 202: leadExtractAnswer },
    }),
    async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    res.status(202).json(await temporal.extractNow(lead.workflowId).catch(rejected));
  });

  // follow-ups the AI scheduled (agent tool schedule_follow_up): read from the workflow's state query, cancelled by its cancelFollowUp update
  r.get(
    '/v1/leads/:leadId/follow-ups',
    allow(...LEAD_READERS),
    doc({
      summary: "List a lead's scheduled follow-ups",
      description:
        "The follow-ups the AI scheduled with the `schedule_follow_up` tool that have not gone out yet, earliest first (the conversation workflow's live state, as GET /v1/leads/{leadId}/state's `followUps`). One that went out or was cancelled is no longer listed; the lead's events keep `follow_up_scheduled`, `follow_up` and `follow_up_cancelled`. 404 when the workflow no longer exists.",
      responses: { 200: leadFollowUpList },
    }),
    async (req, res) => {
      const lead = await leadOf(res, req.params.leadId);
      const state = await temporal.leadState(lead.workflowId);
      if (!state) throw new AppError('not_found', 'conversation workflow not found');
      res.json({ items: (state.followUps ?? []).map(presentFollowUp) });
    },
  );
  r.delete(
    '/v1/leads/:leadId/follow-ups/:followUpId',
    allow(...LEAD_ACTORS),
    validate({ params: followUpParams }),
    doc({
      summary: 'Cancel a scheduled follow-up',
      description:
        "Takes the follow-up out of the lead's conversation workflow (a Temporal update): it will not go out. Recorded as the lead event `follow_up_cancelled` with `source: \"api\"`. 404 when the lead is not this tenant's, or the follow-up is not waiting (it went out, was cancelled, or never existed).",
      responses: { 200: leadFollowUpCancelled },
    }),
    async (_req, res) => {
      const lead = await leadOf(res, res.locals.params.leadId);
      const { cancelled } = await temporal.cancelFollowUp(lead.workflowId, res.locals.params.followUpId).catch((err: unknown) => {
        if (err instanceof LeadUpdateRejected && isFollowUpNotFound(err.reason)) throw new AppError('not_found', 'follow-up not found: it went out, was cancelled, or never existed');
        return rejected(err);
      });
      res.json({ cancelled: presentFollowUp(cancelled[0]!) });
    },
  );

  r.post(
    '/v1/leads/:leadId/messages',
    allow(...LEAD_ACTORS),
    validate({ body: messageBody }),
    doc({
      summary: 'Send a manual message, rich message or template to a lead',
      description:
        "Goes through the lead's delivery, 24-hour window and credit path. 201: sent. 202: queued behind the channel's open circuit breaker, sent once it closes. 409 when refused (`window_closed`, `no_template`, `contact_opted_out`, closed conversation, no credit, …). 502 `delivery_failed` when the provider refused it or it was parked for a later attempt. Templates: WhatsApp only (409 `template_not_supported` elsewhere). Rich messages (`interactive`: button, list, cta_url, quick_replies, generic; `media`; `location`; `reaction`) are checked against the lead's channel's limits (400 `channel_limit` naming each broken limit) and a kind the channel lacks is converted or degraded to text (README: message kinds per channel); they are free-form, so the 24-hour window applies as for text. A `media` (or an interactive media header) may name a media library file by `libraryId`: 404 `media_not_found` unless it is this tenant's, 400 `media_kind_mismatch` unless its kind fits (`type`); WhatsApp gets its Meta media id (uploaded on first use per channel), Instagram and web chat a signed url.",
      responses: {
        201: { schema: leadSendResult, description: 'Sent' },
        202: { schema: leadSendResult, description: "Queued behind the channel's circuit breaker" },
        502: { schema: leadSendFailed, description: 'The send failed or was parked (a dead letter or a deferral may still send it later)' },
      },
    }),
    async (req, res) => {
    const lead = await leadOf(res, req.params.leadId);
    const body = res.locals.body as z.infer<typeof messageBody>;
    if ('template' in body && lead.channel !== 'whatsapp') throw templateNotSupported(lead.channel, 'a template message');
    const rich = richOf(body);
    if (rich) {
      // the channel's limits, as the message would go out there (natively, converted, or degraded to text)
      const problems = channelProblems(rich, lead.channel);
      if (problems.length) throw new AppError('validation_failed', `the message breaks ${lead.channel}'s limits: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems, 'channel_limit');
      // a media library file it names: this tenant's (404 media_not_found), of the message's kind (400 media_kind_mismatch)
      await services.mediaLibrary.checkForMessage(res.locals.tenantId, libraryMediaRefs(rich));
    }
    const requestId = crypto.randomUUID();
    const result = await temporal
      .sendMessage(lead.workflowId, rich ? { requestId, kind: 'rich', message: rich } : 'text' in body ? { requestId, kind: 'text', text: body.text } : { requestId, kind: 'template', template: 'template' in body ? body.template : undefined })
      .catch(rejected);
    if (result.status === 'sent') res.status(201).json(result);
    else if (result.status === 'queued') res.status(202).json(result);
    else if (result.status === 'refused') throw new AppError('conflict', result.reason ?? 'refused', undefined, result.reason);
    else res.status(502).json({ error: { code: 'delivery_failed', message: result.reason ?? 'delivery failed', outboundMessageId: result.outboundMessageId } });
  });
  return r;
}
