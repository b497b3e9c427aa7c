import { ApplicationFailure } from '@temporalio/common';
import {
  graphRateLimitDelayMs,
  MAX_RATE_LIMIT_DELAY_MS,
  numberKey,
  pairKey,
  parseRetryAfter,
  waitForSendSlot,
  type SendRateLimits,
} from '../../activities/channels/send-rate-limit';
import { loadConfig } from '../../config';
import { validateTake, type RateLimiter, type TakeOptions, type TakeResult } from '../../services/rate-limit';

/** A limiter answering from a script, recording what was asked. */
function scriptedLimiter(answers: Record<string, TakeResult>) {
  const takes: { key: string; opts: TakeOptions }[] = [];
  const releases: string[] = [];
  const limiter: Pick<RateLimiter, 'take' | 'release'> = {
    take: async (key, opts) => {
      takes.push({ key, opts });
      const prefix = key.split(':')[0]!;
      return answers[prefix] ?? { ok: true, waitMs: 0, remaining: 1 };
    },
    release: async (key) => {
      releases.push(key);
    },
  };
  return { limiter, takes, releases };
}

function limitsWith(limiter: Pick<RateLimiter, 'take' | 'release'>, slept: number[], over: Partial<SendRateLimits> = {}): SendRateLimits {
  return {
    limiter,
    messagesPerSecond: 80,
    pairIntervalMs: 6000,
    pairBurst: 1,
    maxSleepMs: 2000,
    sleep: async (ms) => {
      slept.push(ms);
    },
    ...over,
  };
}

const slot = { channelAccountId: 'ch-1', to: '919876543210' };

describe('waitForSendSlot', () => {
  test('takes the pair slot (1 per interval) and the number slot (channel rate, else the default), sleeps for the later one', async () => {
    const { limiter, takes } = scriptedLimiter({ pair: { ok: true, waitMs: 1200, remaining: 0 }, number: { ok: true, waitMs: 40, remaining: 0 } });
    const slept: number[] = [];
    const waited = await waitForSendSlot(limitsWith(limiter, slept), { ...slot, messagesPerSecond: 20 });
    expect(waited).toBe(1200);
    expect(slept).toEqual([1200]);
    expect(takes).toEqual([
      { key: pairKey('ch-1', '919876543210'), opts: { ratePerSec: 1000 / 6000, burst: 1, maxWaitMs: 2000 } },
      { key: numberKey('ch-1'), opts: { ratePerSec: 20, burst: 20, maxWaitMs: 2000 } },
    ]);
    await waitForSendSlot(limitsWith(limiter, slept), { ...slot, messagesPerSecond: null });
    expect(takes[3]!.opts).toMatchObject({ ratePerSec: 80, burst: 80 });
  });

  test('no wait: no sleep; no limits configured: nothing is taken', async () => {
    const { limiter, takes } = scriptedLimiter({});
    const slept: number[] = [];
    expect(await waitForSendSlot(limitsWith(limiter, slept), slot)).toBe(0);
    expect(slept).toEqual([]);
    expect(takes).toHaveLength(2);
    expect(await waitForSendSlot(undefined, slot)).toBe(0);
  });

  test('a pair slot further than the longest sleep: retryable provider_rate_limited with nextRetryDelay = the wait, number untouched', async () => {
    const { limiter, takes } = scriptedLimiter({ pair: { ok: false, waitMs: 4500, remaining: 0 } });
    const err = await waitForSendSlot(limitsWith(limiter, []), slot).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f.type).toBe('provider_rate_limited');
    expect(f.nonRetryable).toBeFalsy();
    expect(f.nextRetryDelay).toBe(4500);
    expect(takes.map((t) => t.key.split(':')[0])).toEqual(['pair']);
  });

  test('a refused number slot gives the pair slot back and retries at the number slot', async () => {
    const { limiter, releases } = scriptedLimiter({ number: { ok: false, waitMs: 2500, remaining: 0 } });
    const f = (await waitForSendSlot(limitsWith(limiter, []), slot).catch((e: unknown) => e)) as ApplicationFailure;
    expect(f.type).toBe('provider_rate_limited');
    expect(f.nextRetryDelay).toBe(2500);
    expect(releases).toEqual([pairKey('ch-1', '919876543210')]);
  });

  test('pair interval 0 turns the pair limit off', async () => {
    const { limiter, takes } = scriptedLimiter({});
    await waitForSendSlot(limitsWith(limiter, [], { pairIntervalMs: 0 }), slot);
    expect(takes.map((t) => t.key)).toEqual([numberKey('ch-1')]);
  });
});

describe('Graph rate-limit retry delays', () => {
  test('131056 (pair rate) waits at least the pair interval, then 4^n seconds', () => {
    const d = (attempt: number) => graphRateLimitDelayMs({ code: 131056, attempt, pairIntervalMs: 6000 });
    expect([1, 2, 3, 4].map(d)).toEqual([6000, 6000, 16_000, 64_000]);
    expect(d(9)).toBe(MAX_RATE_LIMIT_DELAY_MS);
    expect(graphRateLimitDelayMs({ code: 131056, attempt: 1, pairIntervalMs: 0 })).toBe(6000);
  });

  test('130429 backs off from 1 s, 4 / 80007 from 10 s; Retry-After wins when longer', () => {
    expect([1, 2, 3].map((attempt) => graphRateLimitDelayMs({ code: 130429, attempt }))).toEqual([1000, 2000, 4000]);
    expect([1, 2].map((attempt) => graphRateLimitDelayMs({ code: 80007, attempt }))).toEqual([10_000, 20_000]);
    expect(graphRateLimitDelayMs({ code: 4, attempt: 1 })).toBe(10_000);
    expect(graphRateLimitDelayMs({ code: 130429, attempt: 1, retryAfterMs: 30_000 })).toBe(30_000);
    expect(graphRateLimitDelayMs({ code: 130429, attempt: 3, retryAfterMs: 500 })).toBe(4000);
    expect(graphRateLimitDelayMs({ code: 4, attempt: 1, retryAfterMs: 24 * 3600_000 })).toBe(MAX_RATE_LIMIT_DELAY_MS);
  });

  test('Retry-After: seconds or an HTTP date', () => {
    const now = Date.parse('2026-03-01T10:00:00Z');
    expect(parseRetryAfter('30', now)).toBe(30_000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Sun, 01 Mar 2026 10:00:45 GMT', now)).toBe(45_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('take options', () => {
  test('the reservation bound is rate × maxWait; a take that could never be granted is refused up front', () => {
    expect(validateTake({ ratePerSec: 80, burst: 80, maxWaitMs: 2000 })).toEqual({ rate: 80, burst: 80, cost: 1, maxDebt: 160 });
    expect(validateTake({ ratePerSec: 1 / 6, burst: 1 }).maxDebt).toBe(0);
    expect(() => validateTake({ ratePerSec: 0, burst: 1 })).toThrow(RangeError);
    expect(() => validateTake({ ratePerSec: 1, burst: 0 })).toThrow(RangeError);
    expect(() => validateTake({ ratePerSec: 1, burst: 1, cost: 3, maxWaitMs: 1000 })).toThrow(/never be granted/);
  });
});

describe('rate-limit config', () => {
  test('defaults: Meta\'s 80 msg/s per number, one message per 6 s to one user, 600 API requests/min, 50 USD of LLM a day', () => {
    const c = loadConfig({});
    expect({
      mps: c.WHATSAPP_MESSAGES_PER_SECOND,
      pairMs: c.WHATSAPP_PAIR_INTERVAL_MS,
      pairBurst: c.WHATSAPP_PAIR_BURST,
      sleep: c.SEND_RATE_LIMIT_MAX_SLEEP_MS,
      api: c.TENANT_API_REQUESTS_PER_MINUTE,
      authFailures: c.AUTH_FAILURES_PER_MINUTE,
      llm: c.LLM_DAILY_BUDGET_MICROS,
    }).toEqual({ mps: 80, pairMs: 6000, pairBurst: 1, sleep: 2000, api: 600, authFailures: 30, llm: 50_000_000 });
    expect(() => loadConfig({ WHATSAPP_PAIR_BURST: '0', TENANT_API_REQUESTS_PER_MINUTE: '0', LLM_DAILY_BUDGET_MICROS: '-1' })).toThrow(/WHATSAPP_PAIR_BURST[\s\S]*TENANT_API_REQUESTS_PER_MINUTE[\s\S]*LLM_DAILY_BUDGET_MICROS/);
  });
});
