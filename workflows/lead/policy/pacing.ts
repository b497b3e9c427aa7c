/**
 * Channel pacing: a minimum gap between two outbound messages to one lead, plus optional
 * jitter so bursts do not look machine-made. Randomness is an input (the workflow passes the
 * SDK's deterministic random number), so the policy stays pure.
 */
import type { Channel } from '../../../contract/vocabulary';
import { formatInstant, parseInstant } from './window';

export interface PacingPolicy {
  /** Minimum time between two outbound messages to the same lead. */
  minGapMs: number;
  /** Up to this much extra delay, chosen by `random`. */
  jitterMs: number;
}

/**
 * WhatsApp Cloud API's pair rate limit is about one message every 6 seconds to one user
 * (error 131056 beyond it); Instagram and web chat are far more lenient.
 */
export const DEFAULT_PACING: Readonly<Record<Channel, Readonly<PacingPolicy>>> = {
  whatsapp: { minGapMs: 6000, jitterMs: 1500 },
  instagram: { minGapMs: 1000, jitterMs: 500 },
  webchat: { minGapMs: 0, jitterMs: 0 },
};

export interface NextSendAtInput {
  lastOutboundAt?: string;
  now: string;
  policy: PacingPolicy;
  /** A number in [0, 1) supplied by the caller. */
  random: number;
}

/**
 * The earliest time the next message may go out: `now` when nothing was sent yet or the gap
 * has passed, else lastOutboundAt + minGap + floor(random × jitter).
 */
export function nextSendAt(input: NextSendAtInput): string {
  const now = parseInstant(input.now, 'now');
  const { minGapMs, jitterMs } = input.policy;
  if (!(Number.isFinite(minGapMs) && minGapMs >= 0)) throw new RangeError(`policy.minGapMs must be a non-negative number, got ${minGapMs}`);
  if (!(Number.isFinite(jitterMs) && jitterMs >= 0)) throw new RangeError(`policy.jitterMs must be a non-negative number, got ${jitterMs}`);
  if (!(input.random >= 0 && input.random < 1)) throw new RangeError(`random must be in [0, 1), got ${input.random}`);
  if (input.lastOutboundAt === undefined) return input.now;
  const earliest = parseInstant(input.lastOutboundAt, 'lastOutboundAt') + minGapMs + Math.floor(input.random * jitterMs);
  return earliest > now ? formatInstant(earliest) : input.now;
}
