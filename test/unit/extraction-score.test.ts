import { isKnown, leadScore, SCORE_WEIGHTS } from '../../activities/extraction/score';
import { estimateCostMicros, priceOf } from '../../activities/llm/pricing';

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

  test('unknown models cost 0', () => {
    expect(priceOf('llama3.1:8b')).toBeUndefined();
    expect(estimateCostMicros('llama3.1:8b', 5000, 5000)).toBe(0);
  });
});
