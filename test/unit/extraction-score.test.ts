import { isKnown, leadScore, SCORE_WEIGHTS } from '../../activities/extraction/score';
import { estimateCostMicros, parsePriceTable, priceOf } from '../../activities/llm/pricing';
import { outputCap } from '../../activities/llm/shared';

describe('leadScore', () => {
  test('nothing known is 0, everything known is 100', () => {
    expect(leadScore({})).toBe(0);
    expect(leadScore({ name: null, email: null, company: null, budget: null, authority: null, need: null, timeline: null })).toBe(0);
    expect(
      leadScore({ name: 'Priya', email: 'p@acme.in', company: 'Acme', budget: '₹5L', authority: 'CTO, decides', need: 'CRM', timeline: 'Q1' }),
    ).toBe(100);
    expect(Object.values(SCORE_WEIGHTS).reduce((a, b) => a + b, 0)).toBe(100);
  });

  test('BANT weighs more than contact details', () => {
    const bant = leadScore({ budget: '10k', authority: 'owner', need: 'ads', timeline: 'this month' });
    const contact = leadScore({ name: 'Priya', email: 'p@acme.in', company: 'Acme' });
    expect(bant).toBe(80);
    expect(contact).toBe(20);
    expect(leadScore({ need: 'a CRM' })).toBeGreaterThan(leadScore({ email: 'p@acme.in' }));
  });

  test('blank, placeholder and non-string values earn nothing', () => {
    expect(leadScore({ budget: '   ', authority: 'unknown', need: 'N/A', timeline: 'Not specified', email: 'none', company: 42, name: {} })).toBe(0);
    expect(isKnown('—')).toBe(true); // a real (if odd) answer is not second-guessed
    expect(isKnown('-')).toBe(false);
    expect(isKnown('Unknown.')).toBe(false);
    expect(isKnown('unknown budget but wants a demo')).toBe(true);
  });

  test('always within 0..100 and an integer', () => {
    const s = leadScore({ name: 'a', email: 'b', company: 'c', budget: 'd', authority: 'e', need: 'f', timeline: 'g', extra: 'x' } as never);
    expect(Number.isInteger(s)).toBe(true);
    expect(s).toBeLessThanOrEqual(100);
  });
});

describe('LLM pricing', () => {
  test('known models by list price, snapshot dates and provider prefixes tolerated', () => {
    // gpt-4o-mini: $0.15 / 1M in, $0.60 / 1M out
    expect(estimateCostMicros('gpt-4o-mini', 1_000_000, 0)).toBe(150_000);
    expect(estimateCostMicros('gpt-4o-mini', 1000, 500)).toBe(450);
    expect(estimateCostMicros('gpt-4o', 1000, 1000)).toBe(12_500);
    expect(estimateCostMicros('gpt-4.1-mini', 2000, 1000)).toBe(2_400);
    expect(estimateCostMicros('gpt-4.1-nano', 10_000, 10_000)).toBe(5_000);
    expect(priceOf('gpt-4o-mini-2024-07-18')).toEqual(priceOf('gpt-4o-mini'));
    expect(priceOf('openai/gpt-4o')).toEqual(priceOf('gpt-4o'));
    expect(priceOf('gpt-4o-2024-08-06')).not.toEqual(priceOf('gpt-4o-mini'));
  });

  test('an unknown model costs the conservative unknown-model price, never 0', () => {
    expect(priceOf('llama3.1:8b')).toBeUndefined();
    // 15 / 60 USD per 1M tokens
    expect(estimateCostMicros('llama3.1:8b', 5000, 5000)).toBe(375_000);
    expect(estimateCostMicros('*', 1000, 0)).toBe(15_000);
  });

  test('a deployment price table (LLM_PRICES) is merged over the built-in one and can price unknown models', () => {
    const table = parsePriceTable('{"llama3.1:8b": {"input": 0, "output": 0}, "openai/my-model": {"input": 1, "output": 2}, "*": {"input": 20, "output": 80}}');
    expect(estimateCostMicros('llama3.1:8b', 5000, 5000, table)).toBe(0);
    expect(estimateCostMicros('my-model', 1_000_000, 1_000_000, table)).toBe(3_000_000);
    expect(estimateCostMicros('gpt-4o-mini', 1_000_000, 0, table)).toBe(150_000);
    expect(estimateCostMicros('something-else', 1000, 1000, table)).toBe(100_000);
    expect(() => parsePriceTable('{"x": {"input": -1, "output": 0}}')).toThrow(/x/);
    expect(() => parsePriceTable('{"x": {"input": 1}}')).toThrow();
    expect(() => parsePriceTable('not json')).toThrow(/JSON/);
  });

  test('the output cap: max_tokens, or max_completion_tokens for OpenAI reasoning models', () => {
    expect(outputCap('gpt-4o-mini', 300)).toEqual({ max_tokens: 300 });
    expect(outputCap('llama3.1:8b', 300)).toEqual({ max_tokens: 300 });
    expect(outputCap('o3-mini', 300)).toEqual({ max_completion_tokens: 300 });
    expect(outputCap('openai/gpt-5', 300)).toEqual({ max_completion_tokens: 300 });
  });
});
