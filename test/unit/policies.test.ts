import { shouldContinueAsNew } from '../../workflows/lead/policy/continue-as-new';
import { admitInbound } from '../../workflows/lead/policy/dedup';
import { leadDetails, leadSummary } from '../../workflows/lead/policy/summary';

describe('admitInbound (dedup memory)', () => {
  test('admits a new id and remembers it', () => {
    const d = admitInbound(['a'], 'b', 10);
    expect(d).toEqual({ admitted: true, seen: ['a', 'b'] });
  });
  test('rejects an id it remembers', () => {
    expect(admitInbound(['a', 'b'], 'a', 10).admitted).toBe(false);
  });
  test('stays within capacity by forgetting the oldest', () => {
    let seen: string[] = [];
    for (let i = 0; i < 25; i++) seen = admitInbound(seen, `m${i}`, 10).seen;
    expect(seen).toHaveLength(10);
    expect(seen[0]).toBe('m15');
    expect(admitInbound(seen, 'm24', 10).admitted).toBe(false);
    expect(admitInbound(seen, 'm14', 10).admitted).toBe(true);
  });
  test('does not mutate its input', () => {
    const seen = ['a'];
    admitInbound(seen, 'b', 1);
    expect(seen).toEqual(['a']);
  });
});

describe('shouldContinueAsNew', () => {
  const base = { historyLength: 10, eventBudget: 100, serverSuggested: false, turnInFlight: false };
  test('not below the budget', () => expect(shouldContinueAsNew(base)).toBe(false));
  test('at the budget', () => expect(shouldContinueAsNew({ ...base, historyLength: 100 })).toBe(true));
  test('when the server suggests it', () => expect(shouldContinueAsNew({ ...base, serverSuggested: true })).toBe(true));
  test('never during a turn', () =>
    expect(shouldContinueAsNew({ ...base, historyLength: 1000, serverSuggested: true, turnInFlight: true })).toBe(false));
});

describe('summaries for the Web UI', () => {
  test('names the lead and channel', () => {
    expect(leadSummary({ channel: 'whatsapp', contactId: '919876543210', contactName: 'Priya' })).toBe('Lead Priya (919876543210) on WhatsApp');
    expect(leadSummary({ channel: 'webchat', contactId: 'v1' })).toBe('Lead v1 on Web chat');
  });
  test('stays under 300 UTF-8 bytes for the longest name and contact id the webhook lets through', () => {
    const summary = leadSummary({ channel: 'instagram', contactId: '9'.repeat(128), contactName: '😀'.repeat(128) });
    expect(Buffer.byteLength(summary, 'utf8')).toBeLessThanOrEqual(300);
    expect(summary).toContain(`${'😀'.repeat(32)}…`);
    expect(summary.isWellFormed()).toBe(true);
  });
  test('details show blocked leads', () => {
    const d = leadDetails({
      channel: 'whatsapp',
      contactId: '919876543210',
      now: '2026-03-06T09:00:00Z',
      stage: 'New',
      mode: 'ai',
      blocked: true,
      counters: { inbound: 1, duplicates: 0, turns: 1, replies: 0, failedReplies: 0, blockedTurns: 1, runs: 1 },
    });
    expect(d).toContain('Blocked: no credits');
    expect(d).toContain('Blocked turns 1');
  });
});
