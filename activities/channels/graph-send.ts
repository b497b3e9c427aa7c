/**
 * One effectively-once Graph API send, shared by the WhatsApp and Instagram activities:
 * record the outbound row under the workflow's deterministic id, return the stored result
 * when an earlier attempt already sent it, stop at an open circuit breaker, claim the provider
 * call (one attempt at a time: leads.markSendAttempt), POST, store the provider id at once,
 * and classify a failure by the Graph `error.code`.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { FailureType, type FailureTypeName } from '../../contract/failures';
import type { Logger } from '../../lib/logger';
import { recordCircuitOpened, recordGraphError, recordReply, recordSendDuration, type MetricPlatform, type ReplyOutcome } from '../../lib/metrics';
import type { ChannelService } from '../../services/channels';
import type { LeadService } from '../../services/leads';
import { parseGraphJson, readGraphError, type GraphErrorClass } from '../../lib/graph-errors';
import { activityCancelled, currentAttempt, graphRateLimitDelayMs, parseRetryAfter, releasePairSlot, releasePairSlotIfNotSent, waitForSendSlot, type SendRateLimits } from './send-rate-limit';

export interface GraphSendDeps {
  leads: LeadService;
  channels: ChannelService;
  log: Logger;
  graphApiUrl: string;
  graphApiVersion: string;
  timeoutMs: number;
  /** A retry waits this long after an unconfirmed attempt for its status webhook (default 120 s). */
  unconfirmedWaitMs?: number;
  fetch?: typeof fetch;
  /** Business-number and pair rate limits shared by every worker; none = unlimited. */
  rateLimits?: SendRateLimits;
  /** The metrics' platform label (lib/metrics.ts); the WhatsApp and Instagram activities set it. */
  platform?: Extract<MetricPlatform, 'whatsapp' | 'instagram'>;
}

/** Failure types that mean "the send waits" (circuit, disabled channel, suspended tenant), not that it failed. */
const WAITING_TYPES = new Set<string>([FailureType.ChannelCircuitOpen, FailureType.TenantSuspended]);

/** The parley_replies_total outcome of a send attempt that threw. */
export function replyOutcomeOf(err: unknown): ReplyOutcome {
  if (err instanceof ApplicationFailure) {
    if (err.type && WAITING_TYPES.has(err.type)) return 'waiting';
    return err.nonRetryable ? 'failed' : 'retrying';
  }
  return 'retrying';
}

export interface SendBase {
  tenantId: string;
  leadId: string;
  channelAccountId: string;
  /** Deterministic id chosen by the workflow before the call: the send's idempotency key. */
  outboundMessageId: string;
  to: string;
}

export interface SendResult {
  outboundMessageId: string;
  providerMessageId: string;
  /** True when an earlier attempt had already sent it: nothing went out this time. */
  alreadySent: boolean;
}

const sendResponseSchema = z.object({
  messages: z.array(z.object({ id: z.string().min(1) })).min(1).optional(),
  message_id: z.string().min(1).optional(),
});

function failureTypeFor(cls: GraphErrorClass, retryable: boolean): FailureTypeName {
  switch (cls) {
    case 'rate_limited':
      return FailureType.ProviderRateLimited;
    case 'reengagement':
      return FailureType.ProviderReengagement;
    case 'spam_limited':
      return FailureType.ProviderSpamLimited;
    case 'auth':
      return FailureType.ProviderAuth;
    case 'permanent':
      return FailureType.ProviderPermanent;
    default:
      return retryable ? FailureType.ProviderTransient : FailureType.ProviderPermanent;
  }
}

export interface GraphSendRequest {
  input: SendBase;
  /** Path under the versioned Graph URL, given the channel's account id (phone_number_id / IG id). */
  path: (accountId: string) => string;
  /** The JSON body to POST, or a function that builds it once the send is known to go ahead (a media library id resolved only then). */
  body: Record<string, unknown> | (() => Promise<Record<string, unknown>>);
  /** Fields that address the recipient, given where the lead is reached now (merged into the body). */
  recipient?: (lead: { phone: string | null; bsuid: string | null }) => Record<string, unknown>;
  /** How the message reads in the transcript (`details`: kept on the row, e.g. a rich message). */
  transcript: { body: string; type: string; details?: Record<string, unknown> };
  /**
   * Meta refused the call: a new body to POST once more under the same claim, or undefined to fail
   * as usual. Asked at most once per attempt (a media library file whose Meta id Meta no longer
   * knows is uploaded again and the message resent: rich.ts).
   */
  retryRefused?: (error: GraphRefusal) => Promise<Record<string, unknown> | undefined>;
}

/** What Meta answered to a refused call. */
export interface GraphRefusal {
  httpStatus: number;
  code: number | null;
  subcode: number | null;
  message: string | undefined;
  details: string | undefined;
}

export function createGraphSender(deps: GraphSendDeps) {
  const doFetch = deps.fetch ?? fetch;
  const log = deps.log.child({ module: 'graph-send' });

  const platform = deps.platform ?? 'whatsapp';
  /** One send attempt, counted by outcome in parley_replies_total. */
  return async function sendGraphMessage(req: GraphSendRequest): Promise<SendResult> {
    try {
      const sent = await attempt(req);
      recordReply(platform, sent.alreadySent ? 'already_sent' : 'sent');
      return sent;
    } catch (err) {
      recordReply(platform, replyOutcomeOf(err));
      throw err;
    }
  };

  async function attempt(req: GraphSendRequest): Promise<SendResult> {
    const { input } = req;
    const row = await deps.leads.createOutbound({ id: input.outboundMessageId, tenantId: input.tenantId, leadId: input.leadId, body: req.transcript.body, type: req.transcript.type, ...(req.transcript.details ? { details: req.transcript.details } : {}) });
    const settled = await settledOutbound(deps.leads, row, `channel account ${input.channelAccountId}`);
    if (settled) return settled;
    if (row.channelEnabled === false) {
      throw ApplicationFailure.create({ type: FailureType.ChannelCircuitOpen, message: 'the channel is disabled: the send waits until it is enabled again', nonRetryable: true, details: [{ reason: FailureType.ChannelDisabled }] });
    }
    const creds = await deps.channels.sendCredentials(input.channelAccountId);
    if (!creds) {
      throw ApplicationFailure.create({ type: FailureType.ChannelNotFound, message: `channel account ${input.channelAccountId} not found`, nonRetryable: true });
    }
    if (creds.deleted) {
      throw ApplicationFailure.create({ type: FailureType.ChannelDeleted, message: `channel account ${input.channelAccountId} is deleted: nothing is sent on it`, nonRetryable: true });
    }
    if (creds.tenantSuspended) {
      throw ApplicationFailure.create({ type: FailureType.TenantSuspended, message: 'the tenant is suspended: nothing is sent until the platform admin reactivates it', nonRetryable: true });
    }
    if (creds.circuitState === 'open') {
      throw ApplicationFailure.create({
        type: FailureType.ChannelCircuitOpen,
        message: `the circuit breaker of channel ${input.channelAccountId} is open; the send waits until it is closed`,
        nonRetryable: true,
      });
    }
    // An earlier attempt may have reached Meta and died before storing the answer (a killed
    // worker, a timeout). The Cloud API has no idempotency key: give Meta's status webhook,
    // which carries our id and stores the provider id, time to arrive before sending again.
    const unconfirmedMs = row.unconfirmedAttemptAgeMs ?? undefined;
    const waitMs = deps.unconfirmedWaitMs ?? 120_000;
    if (unconfirmedMs !== undefined && unconfirmedMs < waitMs) {
      throw ApplicationFailure.create({
        type: FailureType.ProviderUnconfirmed,
        message: `an earlier attempt may have reached the provider ${Math.round(unconfirmedMs / 1000)} s ago; waiting for its status webhook before sending again`,
        nextRetryDelay: Math.max(1000, Math.ceil(waitMs - unconfirmedMs)),
      });
    }
    if (unconfirmedMs !== undefined) log.warn({ outboundMessageId: input.outboundMessageId, unconfirmedMs }, 'no status webhook for an earlier attempt: sending again');
    const body = typeof req.body === 'function' ? await req.body() : req.body;
    // business-number and pair rate (shared by every worker): sleep for a near slot, else a retryable provider_rate_limited at its time
    const slot = { channelAccountId: input.channelAccountId, to: input.to, messagesPerSecond: creds.messagesPerSecond };
    await waitForSendSlot(deps.rateLimits, slot);
    const url = `${deps.graphApiUrl.replace(/\/$/, '')}/${deps.graphApiVersion}/${req.path(creds.phoneNumberId)}`;
    // Temporal cancelled the activity (a reply turn whose heartbeat timed out: the workflow's
    // careful deliver sends; a worker shutting down: a retry sends): no provider call now
    if (activityCancelled()) {
      await releasePairSlot(deps.rateLimits, slot);
      throw ApplicationFailure.create({ type: FailureType.ProviderTransient, message: 'the send was cancelled before it called the provider' });
    }
    // claim the call: of two attempts that passed the checks above at once (a reply turn still
    // running on a worker the server gave up on, and its retry), only one calls the provider. A
    // claim younger than the provider call's timeout may belong to an attempt still in flight, so
    // it holds even when SEND_UNCONFIRMED_WAIT_MS is shorter (or 0)
    const claim = await deps.leads.markSendAttempt(input.outboundMessageId, { staleAfterMs: Math.max(waitMs, deps.timeoutMs) });
    if (!claim.claimed) {
      await releasePairSlot(deps.rateLimits, slot);
      if (claim.providerMessageId) return { outboundMessageId: input.outboundMessageId, providerMessageId: claim.providerMessageId, alreadySent: true };
      if (claim.status === 'failed') throw ApplicationFailure.create({ type: FailureType.ProviderPermanent, message: 'message already failed permanently', nonRetryable: true });
      const age = claim.attemptAgeMs ?? 0;
      throw ApplicationFailure.create({
        type: FailureType.ProviderUnconfirmed,
        message: `another attempt of this send called the provider ${Math.round(age / 1000)} s ago; waiting for its answer or status webhook before sending again`,
        nextRetryDelay: Math.max(1000, Math.ceil(Math.max(waitMs, deps.timeoutMs) - age)),
      });
    }
    let outgoing = body;
    let retriedRefusal = false;
    for (;;) {
      let res: Response;
      const startedAt = performance.now();
      try {
        res = await doFetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${creds.accessToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(req.recipient ? { ...outgoing, ...req.recipient({ phone: row.leadPhone, bsuid: row.leadBsuid }) } : outgoing),
          signal: AbortSignal.timeout(deps.timeoutMs),
        });
      } catch (err) {
        recordSendDuration(platform, 'network', (performance.now() - startedAt) / 1000);
        // network error or timeout: retryable; whether it went out is settled by the status
        // webhook, which carries our id in biz_opaque_callback_data
        throw ApplicationFailure.create({ type: FailureType.ProviderTransient, message: `Graph API unreachable: ${(err as Error).message}` });
      }
      const text = await res.text();
      recordSendDuration(platform, res.ok ? 'ok' : 'error', (performance.now() - startedAt) / 1000);
      const json = parseGraphJson(text);
      if (res.ok) {
        const parsed = sendResponseSchema.safeParse(json);
        const providerMessageId = parsed.success ? (parsed.data.messages?.[0]?.id ?? parsed.data.message_id) : undefined;
        if (!providerMessageId) {
          throw ApplicationFailure.create({ type: FailureType.ProviderTransient, message: `Graph API answered ${res.status} without a message id` });
        }
        await deps.leads.markOutboundSent({ id: input.outboundMessageId, leadId: input.leadId, providerMessageId });
        return { outboundMessageId: input.outboundMessageId, providerMessageId, alreadySent: false };
      }
      // Meta answered with an error: this call did not send
      const err = readGraphError(res.status, json);
      const code = err.code;
      const refusal: GraphRefusal = {
        httpStatus: res.status,
        code: code ?? null,
        subcode: err.subcode ?? null,
        message: err.isGraphError ? err.message : text.slice(0, 300),
        details: err.details,
      };
      if (req.retryRefused && !retriedRefusal) {
        retriedRefusal = true;
        let again: Record<string, unknown> | undefined;
        try {
          again = await req.retryRefused(refusal);
        } catch (retryErr) {
          // the first call sent nothing: free the claim so that a retry of the activity sends at once
          await deps.leads.clearSendAttempt(input.outboundMessageId, claim.attemptAt);
          await releasePairSlot(deps.rateLimits, slot);
          throw retryErr;
        }
        if (again) {
          log.info({ leadId: input.leadId, outboundMessageId: input.outboundMessageId, code: refusal.code }, 'graph api refused the send: sending once more with a new body');
          outgoing = again;
          continue;
        }
      }
      await deps.leads.clearSendAttempt(input.outboundMessageId, claim.attemptAt);
      const cls = err.class;
      const retryable = err.retryable;
      recordGraphError(platform, code, cls);
      const detail = { httpStatus: refusal.httpStatus, code: refusal.code, subcode: refusal.subcode, class: cls, message: refusal.message, details: refusal.details };
      log.warn({ leadId: input.leadId, outboundMessageId: input.outboundMessageId, error: detail }, 'graph api send failed');
      const type = failureTypeFor(cls, retryable);
      if (cls === 'auth') {
        // stop every send of this channel until an admin replaces the token and closes it
        await deps.channels.openCircuit(input.channelAccountId, detail);
        recordCircuitOpened(platform);
      } else if (!retryable && cls !== 'reengagement' && cls !== 'spam_limited') {
        await deps.leads.markOutboundFailed({ id: input.outboundMessageId, error: detail });
      }
      // throughput and call-count refusals (130429, 4, 80007, …) sent nothing: the pair slot is free again
      await releasePairSlotIfNotSent(deps.rateLimits, slot, code);
      throw ApplicationFailure.create({
        type,
        message: `Graph API error ${code ?? res.status} (${cls}): ${detail.message ?? ''}`,
        nonRetryable: !retryable,
        details: [detail],
        // rate limits (lib/graph-errors.ts) and a Retry-After: wait as Meta asks, at least the pair interval for 131056
        ...(retryable && (cls === 'rate_limited' || res.headers.has('retry-after'))
          ? { nextRetryDelay: graphRateLimitDelayMs({ code, attempt: currentAttempt(), retryAfterMs: parseRetryAfter(res.headers.get('retry-after')), pairIntervalMs: deps.rateLimits?.pairIntervalMs }) }
          : {}),
      });
    }
  }
}

/**
 * What the outbound row recorded before this attempt settles, if anything: already sent (its
 * result again), already failed for good, or its channel deleted (the message marked failed:
 * its workflow may be gone). undefined: go on and send.
 */
export async function settledOutbound(
  leads: Pick<LeadService, 'markOutboundFailed'>,
  row: { id: string; providerMessageId: string | null; status: string; error?: unknown; channelDeleted?: boolean | null },
  channel: string,
): Promise<SendResult | undefined> {
  if (row.providerMessageId) return { outboundMessageId: row.id, providerMessageId: row.providerMessageId, alreadySent: true };
  if (row.status === 'failed') {
    throw ApplicationFailure.create({ type: FailureType.ProviderPermanent, message: 'message already failed permanently', nonRetryable: true, details: [row.error] });
  }
  if (row.channelDeleted === true) {
    await leads.markOutboundFailed({ id: row.id, error: { type: FailureType.ChannelDeleted } });
    throw ApplicationFailure.create({ type: FailureType.ChannelDeleted, message: `${channel} is deleted: nothing is sent on it`, nonRetryable: true });
  }
  return undefined;
}
