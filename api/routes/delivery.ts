import { Router } from 'express';
import { z } from 'zod';
import { DEAD_LETTER_STATUSES } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import type { VerifyChannelOwnership } from '../../services/channel-ownership';
import { LeadUpdateRejected, type ParleyTemporal } from '../../temporal/client';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { wabaIdSchema } from './tenant';
import { webChatOriginsSchema } from './webchat';
import { MANAGERS, SETUP_READERS, allow } from '../access';
import { doc } from '../openapi';
import { channelSchema, circuitCloseSchema, deadLetterSchema } from '../schemas/accounts';
import { pageOf } from '../schemas/common';

const idParam = z.strictObject({ id: z.uuid('must be a uuid') });
const listQuery = pageQuery.extend({
  status: z.enum(DEAD_LETTER_STATUSES).optional(),
  leadId: z.uuid().optional(),
});
const channelPatch = z
  .strictObject({
    accessToken: z.string().min(10).max(2000).optional(),
    appSecret: z.string().min(8).max(500).optional(),
    messagesPerSecond: z.number().int().min(1).max(1000).nullable().optional(),
    markRead: z.boolean().optional(),
    /** Move the channel to another agent of the tenant (replies use it from the next turn). */
    agentId: z.uuid().optional(),
    /** Web chat: origins whose pages may use the widget (null = any). */
    allowedOrigins: webChatOriginsSchema.nullable().optional(),
    /** false: inbound is still recorded, the AI does not reply, other sends wait; true: waiting sends go ahead. */
    enabled: z.boolean().optional(),
    /** WhatsApp: the WhatsApp Business Account id (null removes it). */
    wabaId: wabaIdSchema.nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one field to change');

/** What a replay answers: the lead workflow's outbound result (contract/messages.ts OutboundResult). */
const replayResult = z
  .strictObject({
    requestId: z.string(),
    status: z
      .enum(['sent', 'failed', 'refused', 'parked', 'queued'])
      .meta({ description: '`sent`: delivered; `failed`/`refused`: not sent (`reason`); `parked`: a dead letter again (`deadLetterId`) or deferred; `queued`: waits for the channel\'s circuit breaker' }),
    deadLetterId: z.string().optional(),
    outboundMessageId: z.string().optional(),
    providerMessageId: z.string().optional(),
    reason: z.string().optional(),
  })
  .meta({ description: 'What running the operation again did' });
const replayAnswer = z
  .strictObject({ deadLetter: deadLetterSchema, result: replayResult })
  .meta({ id: 'AccountDeadLetterReplay', description: 'The dead letter after its replay, and what the replay did' });

/**
 * Delivery operations: dead letters (list, replay, discard) and the channel circuit breaker
 * (state, token replacement, close). Replay and discard are Temporal updates to the lead
 * workflow that parked the operation.
 */
export function createDeliveryRouter(deps: { services: Services; temporal: ParleyTemporal; log: Logger; verifyChannel?: VerifyChannelOwnership }): Router {
  const { services, temporal } = deps;
  const log = deps.log.child({ module: 'delivery' });
  const r = Router();
  const auth = tenantAuth(services); // tenant key, then the tenant's API rate limit
  r.use('/v1/dead-letters', auth);
  r.use('/v1/channels/:id', auth);

  r.get(
    '/v1/dead-letters',
    allow(...SETUP_READERS),
    validate({ query: listQuery }),
    doc({ summary: 'List dead letters', description: 'Operations lead workflows parked after their retries ran out, newest first; filter by `status` and `leadId`.', responses: { 200: pageOf(deadLetterSchema) } }),
    async (_req, res) => {
      res.json(await services.deadLetters.list(res.locals.tenantId, res.locals.query));
    },
  );

  r.get('/v1/dead-letters/:id', allow(...SETUP_READERS), validate({ params: idParam }), doc({ summary: 'Get a dead letter', responses: { 200: deadLetterSchema } }), async (_req, res) => {
    const d = await services.deadLetters.get(res.locals.tenantId, res.locals.params.id);
    if (!d) throw new AppError('not_found', 'dead letter not found');
    res.json(d);
  });

  r.post(
    '/v1/dead-letters/:id/replay',
    allow(...MANAGERS),
    validate({ params: idParam }),
    doc({
      summary: 'Replay a dead letter',
      description:
        'Runs the parked operation again in its lead workflow (a Temporal update) and answers when it is done; a send goes out under the same outbound id. Only an open dead letter: otherwise 409 `not_open`; the workflow refusing it → 409 `replay_rejected`.',
      responses: { 200: replayAnswer },
    }),
    async (_req, res) => {
      const tenantId: string = res.locals.tenantId;
      const d = await services.deadLetters.get(tenantId, res.locals.params.id);
      if (!d) throw new AppError('not_found', 'dead letter not found');
      if (!(await services.deadLetters.markReplaying(tenantId, d.id))) throw new AppError('conflict', `the dead letter is ${d.status}, not open`, undefined, 'not_open');
      try {
        const result = await temporal.replayDeadLetter(d.workflowId, d.id);
        res.json({ deadLetter: await services.deadLetters.get(tenantId, d.id), result });
      } catch (err) {
        // another replay of it is still running in the workflow: leave it marked as replaying
        if (!(err instanceof LeadUpdateRejected && /is being replayed/.test(err.reason))) await services.deadLetters.reopen(d.id);
        if (err instanceof LeadUpdateRejected) throw new AppError('conflict', err.reason, undefined, 'replay_rejected');
        throw err;
      }
    },
  );

  r.post(
    '/v1/dead-letters/:id/discard',
    allow(...MANAGERS),
    validate({ params: idParam }),
    doc({
      summary: 'Discard a dead letter',
      description: 'Drops the parked operation in its lead workflow and gives back the credit a parked send still held. Only an open dead letter: otherwise 409 `not_open`; the workflow refusing it → 409 `discard_rejected`.',
      responses: { 200: deadLetterSchema },
    }),
    async (_req, res) => {
      const tenantId: string = res.locals.tenantId;
      const d = await services.deadLetters.get(tenantId, res.locals.params.id);
      if (!d) throw new AppError('not_found', 'dead letter not found');
      if (d.status !== 'open') throw new AppError('conflict', `the dead letter is ${d.status}, not open`, undefined, 'not_open');
      try {
        await temporal.discardDeadLetter(d.workflowId, d.id);
      } catch (err) {
        if (err instanceof LeadUpdateRejected) throw new AppError('conflict', err.reason, undefined, 'discard_rejected');
        throw err;
      }
      res.json(await services.deadLetters.get(tenantId, d.id));
    },
  );

  r.get('/v1/channels/:id', allow(...SETUP_READERS), validate({ params: idParam }), doc({ summary: 'Get a channel', description: 'With its circuit breaker state.', responses: { 200: channelSchema } }), async (_req, res) => {
    const c = await services.channels.get(res.locals.tenantId, res.locals.params.id);
    if (!c) throw new AppError('not_found', 'channel not found');
    res.json(c);
  });

  /** Replace the token (e.g. after a 190), change the throughput / mark-read settings, or move the channel to another agent. */
  r.patch(
    '/v1/channels/:id',
    allow(...MANAGERS),
    validate({ params: idParam, body: channelPatch }),
    doc({
      summary: 'Change a channel',
      description:
        'Replace the access token (e.g. after a 190) or the app secret, change the throughput or mark-read settings, the web chat origins (`allowedOrigins`, web chat only) or the WhatsApp Business Account id (`wabaId`, WhatsApp only), move the channel to another agent of the tenant (replies use it from the next turn), or disable it. A new token is verified against the channel\'s id as at registration (409 `channel_not_owned`, 422 `access_token_invalid`). `enabled: false`: inbound is still recorded, the AI does not reply and every other send waits as for an open circuit; `enabled: true`: the waiting sends go ahead.',
      responses: { 200: channelSchema },
    }),
    async (_req, res) => {
      const current = await services.channels.get(res.locals.tenantId, res.locals.params.id);
      if (!current) throw new AppError('not_found', 'channel not found');
      if (current && res.locals.body.allowedOrigins !== undefined && current.platform !== 'webchat') {
        throw new AppError('validation_failed', 'allowedOrigins is a web chat setting', [{ path: ['allowedOrigins'], message: 'only for web chat channels' }]);
      }
      if (current && res.locals.body.wabaId !== undefined && current.platform !== 'whatsapp') {
        throw new AppError('validation_failed', 'wabaId is a WhatsApp setting', [{ path: ['wabaId'], message: 'only for WhatsApp channels' }]);
      }
      if (current && deps.verifyChannel && res.locals.body.accessToken !== undefined && current.platform !== 'webchat') {
        // the new token must control the registered id too
        await deps.verifyChannel({ platform: current.platform, accountId: current.phoneNumberId, accessToken: res.locals.body.accessToken });
      }
      const c = await services.channels.updateCredentials(res.locals.tenantId, res.locals.params.id, res.locals.body);
      if (!c) throw new AppError('not_found', 'channel not found');
      res.locals.audit = { before: current, after: c };
      if (current.enabled === false && c.enabled === true) {
        // enabled again: the sends that waited go ahead now (they also poll, as for a closed circuit)
        try {
          await temporal.startCircuitResume({ tenantId: res.locals.tenantId, channelAccountId: c.id }, `enabled-${new Date().toISOString()}`);
        } catch (err) {
          log.warn({ err, channelAccountId: c.id }, 'could not start the resume workflow after enabling the channel; the waiting leads resume on their next poll');
        }
      }
      res.json(c);
    },
  );

  /**
   * Close the circuit breaker: the channel's waiting sends go ahead (same outbound ids). Acts
   * only on an open circuit; the waiting leads are signalled by a workflow started here (one
   * per opening), not inside the request. A closed circuit answers 200 "already closed".
   */
  r.post(
    '/v1/channels/:id/circuit/close',
    allow(...MANAGERS),
    validate({ params: idParam }),
    doc({
      summary: "Close a channel's circuit breaker",
      description:
        "The channel's waiting sends go ahead (same outbound ids): a workflow started here (one per opening) signals the waiting leads, not the request itself. A closed circuit answers 200 with `alreadyClosed: true` and nothing is signalled.",
      responses: { 200: circuitCloseSchema },
    }),
    async (_req, res) => {
      const tenantId: string = res.locals.tenantId;
      const result = await services.channels.closeCircuit(tenantId, res.locals.params.id);
      if (!result) throw new AppError('not_found', 'channel not found');
      const c = result.channel;
      if (!result.closed) {
        res.json({ ...c, alreadyClosed: true, message: 'the circuit is already closed', resumeWorkflowId: null });
        return;
      }
      let resumeWorkflowId: string | null = null;
      try {
        resumeWorkflowId = await temporal.startCircuitResume({ tenantId, channelAccountId: c.id }, result.openedAt ?? new Date().toISOString());
      } catch (err) {
        // the waiting workflows poll the circuit too: they resume within their poll interval
        log.warn({ err, channelAccountId: c.id }, 'could not start the circuit resume workflow; the waiting leads resume on their next poll');
      }
      res.json({ ...c, alreadyClosed: false, resumeWorkflowId });
    },
  );

  return r;
}
