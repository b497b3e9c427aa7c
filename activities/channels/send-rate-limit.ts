/**
 * Rate limits of a Graph API send, shared by every worker through the database limiter
 * (services/rate-limit.ts):
 *
 * - business number: `number:{channelAccountId}` at the channel's messages_per_second, else
 *   WHATSAPP_MESSAGES_PER_SECOND (Meta's default throughput is 80 msg/s per number);
 * - pair: `pair:{channelAccountId}:{to}` at one message per WHATSAPP_PAIR_INTERVAL_MS (Meta's
 *   pair rate is about 1 message per 6 s to one user; bursts are tolerated but "borrow" from
 *   later, so the default burst is 1: never risk error 131056).
 *
 * A slot at most SEND_RATE_LIMIT_MAX_SLEEP_MS away is reserved and slept for in the activity;
 * a later one is not reserved: the send throws a retryable `provider_rate_limited` whose
 * `nextRetryDelay` is the time the slot frees up, so Temporal (not a busy worker) does the waiting.
 */
import { recordRateLimitWait } from '../../lib/metrics';
import { isCallCountLimit } from '../../lib/graph-errors';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import type { RateLimiter } from '../../services/rate-limit';

export interface SendRateLimits {
  limiter: Pick<RateLimiter, 'take' | 'release'>;
  /** Per business number when the channel has no messages_per_second. */
  messagesPerSecond: number;
  /** One message per this interval to one user; 0 = no pair limit. */
  pairIntervalMs: number;
  pairBurst: number;
  /** The longest wait slept inside the activity; anything later becomes a Temporal retry. */
  maxSleepMs: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface SendSlot {
  channelAccountId: string;
  to: string;
  /** The channel's own throughput (channel_accounts.messages_per_second); null = the default. */
  messagesPerSecond?: number | null;
}

/** Longest delay a rate-limit retry is told to wait (Retry-After included). */
export const MAX_RATE_LIMIT_DELAY_MS = 5 * 60 * 1000;
const DEFAULT_PAIR_INTERVAL_MS = 6000;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const pairKey = (channelAccountId: string, to: string) => `pair:${channelAccountId}:${to}`;
export const numberKey = (channelAccountId: string) => `number:${channelAccountId}`;

function rateLimited(limit: 'pair' | 'number', waitMs: number, slot: SendSlot): ApplicationFailure {
  recordRateLimitWait(limit, 'deferred', waitMs);
  return ApplicationFailure.create({
    type: FailureType.ProviderRateLimited,
    message: `${limit === 'pair' ? `pair rate to ${slot.to}` : `throughput of channel ${slot.channelAccountId}`} is used up; next slot in ${waitMs} ms`,
    nextRetryDelay: Math.max(1, waitMs),
    details: [{ limit, waitMs }],
  });
}

/**
 * Reserve the pair slot, then the number slot; sleep until both are due (≤ maxSleepMs).
 * Throws a retryable provider_rate_limited (nextRetryDelay = the wait) when either is further.
 * Returns how long it slept.
 */
export async function waitForSendSlot(limits: SendRateLimits | undefined, slot: SendSlot): Promise<number> {
  if (!limits) return 0;
  const maxWaitMs = limits.maxSleepMs;
  let pairWait = 0;
  let pairTaken = false;
  if (limits.pairIntervalMs > 0) {
    const pair = await limits.limiter.take(pairKey(slot.channelAccountId, slot.to), {
      ratePerSec: 1000 / limits.pairIntervalMs,
      burst: limits.pairBurst,
      maxWaitMs,
    });
    if (!pair.ok) throw rateLimited('pair', pair.waitMs, slot);
    pairWait = pair.waitMs;
    pairTaken = true;
  }
  const mps = slot.messagesPerSecond && slot.messagesPerSecond > 0 ? slot.messagesPerSecond : limits.messagesPerSecond;
  const number = await limits.limiter.take(numberKey(slot.channelAccountId), { ratePerSec: mps, burst: mps, maxWaitMs });
  if (!number.ok) {
    // the pair slot was not used: give it back so the retry does not wait for it twice
    if (pairTaken) await limits.limiter.release(pairKey(slot.channelAccountId, slot.to), { burst: limits.pairBurst });
    throw rateLimited('number', number.waitMs, slot);
  }
  const wait = Math.max(pairWait, number.waitMs);
  if (wait > 0) {
    recordRateLimitWait(pairWait >= number.waitMs ? 'pair' : 'number', 'slept', wait);
    await (limits.sleep ?? defaultSleep)(wait);
  }
  return wait;
}

/**
 * After Meta refused a send for its throughput or call-count limit (the message did not go
 * out), give the pair slot back: the retry should wait for Meta, not also for the pair rate.
 * Best effort: never hides the send's own failure.
 */
export async function releasePairSlotIfNotSent(limits: SendRateLimits | undefined, slot: SendSlot, code: number | undefined): Promise<void> {
  // the message was refused before it went out for a limit other than the pair rate: throughput or call count
  if (code !== 130429 && !isCallCountLimit(code)) return;
  await releasePairSlot(limits, slot);
}

/** Give back a pair slot this attempt took but did not use (nothing was sent). Best effort. */
export async function releasePairSlot(limits: SendRateLimits | undefined, slot: SendSlot): Promise<void> {
  if (!limits || limits.pairIntervalMs <= 0) return;
  try {
    await limits.limiter.release(pairKey(slot.channelAccountId, slot.to), { burst: limits.pairBurst });
  } catch {
    /* the slot is lost: the retry waits for the pair rate too */
  }
}

/** `Retry-After` as milliseconds (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How long to wait before retrying a send Meta refused for a rate limit, by Graph error code:
 * - 131056 pair rate: at least the pair interval, growing 4^n s as Meta recommends (1, 4, 16, 64 s …);
 * - 130429 throughput: 1, 2, 4 … s (a second is a whole throughput window);
 * - call-count limits (4, 80007, …: lib/graph-errors.ts; a rolling hour): 10, 20, 40 … s;
 * never less than the response's Retry-After; at most MAX_RATE_LIMIT_DELAY_MS.
 */
export function graphRateLimitDelayMs(input: { code: number | undefined; attempt: number; retryAfterMs?: number; pairIntervalMs?: number }): number {
  const n = Math.max(0, Math.min(20, Math.floor(input.attempt) - 1));
  let backoff: number;
  if (input.code === 131056) backoff = Math.max(input.pairIntervalMs && input.pairIntervalMs > 0 ? input.pairIntervalMs : DEFAULT_PAIR_INTERVAL_MS, 1000 * 4 ** n);
  else if (isCallCountLimit(input.code)) backoff = 10_000 * 2 ** n;
  else backoff = 1000 * 2 ** n;
  return Math.min(MAX_RATE_LIMIT_DELAY_MS, Math.max(backoff, input.retryAfterMs ?? 0));
}

/**
 * Whether Temporal cancelled the running activity (a heartbeat answer says it timed out or was
 * cancelled); false outside an activity. A send checks it before it claims the provider call.
 */
export function activityCancelled(): boolean {
  try {
    return Context.current().cancellationSignal.aborted;
  } catch {
    return false;
  }
}

/** The current activity attempt (1 outside an activity, e.g. a direct call in a test). */
export function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}
