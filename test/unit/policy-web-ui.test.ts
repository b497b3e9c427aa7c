import { leadDetails, maskContact, sequenceLine, windowLine, escapeMarkdown, type LeadDetailsInput } from '../../workflows/lead/policy/summary';
import { appendRecent, clip, RECENT_MESSAGE_CHARS, RECENT_MESSAGES, type RecentMessage } from '../../workflows/lead/policy/transcript';
import { checkEmpty, checkHandOff, checkManualMessage, WEB_UI_REASON_MAX_CHARS, WEB_UI_TEXT_MAX_CHARS } from '../../workflows/lead/policy/web-ui';
import { transitionMode } from '../../workflows/lead/policy/handoff';

const counters = { inbound: 3, duplicates: 0, turns: 2, replies: 2, failedReplies: 0, blockedTurns: 0, runs: 1 };
const base: LeadDetailsInput = { channel: 'whatsapp', contactId: '919876543210', now: '2026-03-06T09:00:00Z', stage: 'Qualified', mode: 'ai', blocked: false, counters };

describe('recent messages (the details transcript)', () => {
  test('keeps the newest RECENT_MESSAGES, oldest first, without mutating its input', () => {
    let list: RecentMessage[] = [];
    for (let i = 0; i < 10; i++) {
      const before = list;
      list = appendRecent(list, { from: i % 2 ? 'bot' : 'lead', at: `2026-03-06T09:0${i}:00Z`, text: `m${i}` });
      expect(before).toHaveLength(Math.min(i, RECENT_MESSAGES));
    }
    expect(list.map((m) => m.text)).toEqual(['m4', 'm5', 'm6', 'm7', 'm8', 'm9']);
  });
  test('cuts each text to RECENT_MESSAGE_CHARS code points on one line, never splitting an emoji', () => {
    expect(clip('a\n\n b\tc ')).toBe('a b c');
    const long = '😀'.repeat(500);
    const cut = appendRecent(undefined, { from: 'lead', at: '2026-03-06T09:00:00Z', text: long })[0]!.text;
    expect([...cut]).toHaveLength(RECENT_MESSAGE_CHARS);
    expect(cut.endsWith('…')).toBe(true);
    expect(cut.isWellFormed()).toBe(true);
    expect(clip('x'.repeat(RECENT_MESSAGE_CHARS))).toBe('x'.repeat(RECENT_MESSAGE_CHARS));
  });
  test('the carried state stays small: 6 messages of the longest text are a few KB', () => {
    let list: RecentMessage[] = [];
    for (let i = 0; i < 100; i++) list = appendRecent(list, { from: 'lead', at: '2026-03-06T09:00:00.000Z', text: '鳥'.repeat(5000) });
    expect(Buffer.byteLength(JSON.stringify(list))).toBeLessThan(6 * (RECENT_MESSAGE_CHARS * 3 + 80));
  });
});

describe('current details (Markdown for the Web UI)', () => {
  test('masks the contact: never the whole number or handle', () => {
    expect(maskContact('919876543210')).toBe('91…3210');
    expect(maskContact('wv_0123456789abcdef')).toBe('wv…cdef');
    expect(maskContact('12345678')).toBe('…78');
    expect(maskContact('123')).toBe('…');
    const d = leadDetails(base);
    expect(d).toContain('**Lead** 91…3210 on WhatsApp');
    expect(d).not.toContain('919876543210');
    expect(d).not.toContain('9876');
  });
  test('stage, mode, score; blocked, opted out, dead letters and the circuit wait need attention', () => {
    const d = leadDetails({ ...base, mode: 'human', score: 72, blocked: true, optedOut: true, deadLetters: [{}, {}], circuitWaitSince: '2026-03-06T08:00:00Z', deferred: [{}] });
    expect(d).toContain('**Stage** Qualified · **Mode** human (a person answers) · **Score** 72');
    expect(d).toContain('**Dead letters: 2**');
    expect(d).toContain("**Sends waiting: the channel's circuit breaker is open** (since 2026-03-06 08:00 UTC)");
    expect(d).toContain('Deferred sends: 1');
    expect(d).toContain('**Blocked: no credits**');
    expect(d).toContain('**Opted out**');
    expect(leadDetails(base)).toContain('**Score** –');
    expect(leadDetails(base)).not.toContain('Dead letters');
  });
  test('the window: never opened, open until, closed since, closed by the provider', () => {
    expect(windowLine({ now: base.now })).toMatch(/^not opened/);
    expect(windowLine({ now: base.now, lastInboundAt: '2026-03-06T08:30:00Z' })).toBe('open until 2026-03-07 08:30 UTC: free-form replies allowed');
    expect(windowLine({ now: base.now, lastInboundAt: '2026-03-04T08:30:00Z' })).toBe('closed since 2026-03-05 08:30 UTC: templates only');
    expect(windowLine({ now: base.now, lastInboundAt: '2026-03-06T08:30:00Z', providerWindowClosedAt: '2026-03-06T08:45:00Z' })).toMatch(/^closed \(the provider said so/);
    // a newer inbound message reopens it
    expect(windowLine({ now: base.now, lastInboundAt: '2026-03-06T08:50:00Z', providerWindowClosedAt: '2026-03-06T08:45:00Z' })).toMatch(/^open until/);
    expect(leadDetails({ ...base, lastInboundAt: '2026-03-06T08:30:00Z' })).toContain('- **Window** open until 2026-03-07 08:30 UTC');
  });
  test('the sequence: step n of m and the next due time; paused, stopped, completed', () => {
    const def = { name: 'Welcome', steps: [{}, {}, {}] };
    const cursor = { sequenceId: 's', stepIndex: 1, enrolledAt: '2026-03-06T08:00:00Z', updatedAt: '2026-03-06T08:00:00Z' };
    expect(sequenceLine(undefined)).toBe('none');
    expect(sequenceLine({ def, cursor: { ...cursor, status: 'active', dueAt: '2026-03-07T10:00:00Z' } })).toBe('Welcome, step 2 of 3, next step due 2026-03-07 10:00 UTC');
    expect(sequenceLine({ def, cursor: { ...cursor, status: 'paused', remainingMs: 90 * 60_000 } })).toBe('Welcome, step 2 of 3, **paused** (1 h 30 min left when resumed)');
    expect(sequenceLine({ def, cursor: { ...cursor, status: 'stopped', stopReason: 'lead_replied' } })).toBe('Welcome, stopped at step 2 of 3 (lead\\_replied)');
    expect(sequenceLine({ def, cursor: { ...cursor, stepIndex: 3, status: 'completed' } })).toBe('Welcome, completed (3 of 3 steps)');
  });
  test('the last messages, marked by author, with the lead\'s Markdown made inert', () => {
    const recentMessages: RecentMessage[] = [
      { from: 'lead', at: '2026-03-06T08:58:00Z', text: 'How much is the premium plan?' },
      { from: 'bot', at: '2026-03-06T08:58:30Z', text: 'It is 49 EUR a month.' },
      { from: 'human', at: '2026-03-06T08:59:00Z', text: 'Hi, Anna here from sales.' },
      { from: 'lead', at: '2026-03-06T08:59:30Z', text: '![x](https://evil.example/p.png) <img src=x> **bold** [link](http://x)' },
    ];
    const d = leadDetails({ ...base, recentMessages });
    expect(d).toContain('**Last 4 messages**');
    expect(d).toContain('- 2026-03-06 08:58 UTC **Lead:** How much is the premium plan?');
    expect(d).toContain('**Bot:** It is 49 EUR a month.');
    expect(d).toContain('**Team:** Hi, Anna here from sales.');
    expect(d).toContain('**Lead:** \\!\\[x\\]\\(https://evil.example/p.png\\) &lt;img src=x&gt; \\*\\*bold\\*\\* \\[link\\]\\(http://x\\)');
    expect(leadDetails(base)).toContain('_No messages yet._');
    expect(escapeMarkdown('a & b')).toBe('a &amp; b');
  });
  test('bounded: the longest state gives details of a few KB', () => {
    const recentMessages = Array.from({ length: RECENT_MESSAGES }, () => ({ from: 'lead' as const, at: '2026-03-06T08:58:00Z', text: clip('*'.repeat(5000)) }));
    const d = leadDetails({ ...base, stage: 's'.repeat(100), recentMessages, sequence: { def: { name: 'n'.repeat(500), steps: [{}] }, cursor: { sequenceId: 's', stepIndex: 0, status: 'active', dueAt: base.now, enrolledAt: base.now, updatedAt: base.now } } });
    expect(Buffer.byteLength(d)).toBeLessThan(4000);
  });
});

describe('Web UI update bodies', () => {
  test('handOff: nothing, {} or a reason (trimmed, bounded); anything else is refused with the reason', () => {
    expect(checkHandOff(undefined)).toEqual({ ok: true, value: {} });
    expect(checkHandOff(null)).toEqual({ ok: true, value: {} });
    expect(checkHandOff({})).toEqual({ ok: true, value: {} });
    expect(checkHandOff({ reason: '  wants a discount ' })).toEqual({ ok: true, value: { reason: 'wants a discount' } });
    expect(checkHandOff({ reason: '   ' })).toEqual({ ok: true, value: {} });
    expect(checkHandOff({ reason: 'x'.repeat(WEB_UI_REASON_MAX_CHARS) }).ok).toBe(true);
    expect(checkHandOff({ reason: 'x'.repeat(WEB_UI_REASON_MAX_CHARS + 1) })).toEqual({ ok: false, reason: `handOff: "reason" is ${WEB_UI_REASON_MAX_CHARS + 1} characters; at most ${WEB_UI_REASON_MAX_CHARS}` });
    expect(checkHandOff({ reason: 5 })).toEqual({ ok: false, reason: 'handOff: "reason" must be a string' });
    expect(checkHandOff('agent')).toMatchObject({ ok: false, reason: expect.stringContaining('takes a JSON object') });
    expect(checkHandOff([])).toMatchObject({ ok: false });
    expect(checkHandOff({ reasons: 'x' })).toMatchObject({ ok: false, reason: expect.stringContaining('unknown field "reasons"; it takes only "reason"') });
  });
  test('handBack and the sequence updates take no fields', () => {
    expect(checkEmpty('handBack', undefined)).toEqual({ ok: true, value: {} });
    expect(checkEmpty('pauseSequence', {})).toEqual({ ok: true, value: {} });
    expect(checkEmpty('resumeSequence', { now: true, x: 1 })).toEqual({ ok: false, reason: 'resumeSequence: unknown fields "now", "x"; it takes no fields, e.g. {}' });
    expect(checkEmpty('handBack', 1)).toMatchObject({ ok: false });
  });
  test('sendManualMessage: text required, not blank, bounded, no other fields', () => {
    expect(checkManualMessage({ text: 'Hello there' })).toEqual({ ok: true, value: { text: 'Hello there' } });
    expect(checkManualMessage(undefined)).toMatchObject({ ok: false, reason: expect.stringContaining('needs the message') });
    expect(checkManualMessage({})).toMatchObject({ ok: false, reason: expect.stringContaining('"text" must be a string') });
    expect(checkManualMessage({ text: ' \n ' })).toEqual({ ok: false, reason: 'sendManualMessage: "text" is empty' });
    expect(checkManualMessage({ text: 'x'.repeat(WEB_UI_TEXT_MAX_CHARS) }).ok).toBe(true);
    expect(checkManualMessage({ text: '😀'.repeat(WEB_UI_TEXT_MAX_CHARS + 1) })).toMatchObject({ ok: false, reason: expect.stringContaining(`at most ${WEB_UI_TEXT_MAX_CHARS}`) });
    expect(checkManualMessage({ txt: 'hi' })).toMatchObject({ ok: false, reason: expect.stringContaining('unknown field "txt"') });
  });
  test('a handoff from the Web UI is a person\'s: no cooldown after a handback (a keyword has one)', () => {
    const input = { mode: 'ai' as const, request: 'handoff' as const, now: '2026-03-06T09:00:00Z', lastHandbackAt: '2026-03-06T08:59:00Z', autoHandoffCooldownMs: 30 * 60_000 };
    expect(transitionMode({ ...input, source: 'web_ui' })).toEqual({ ok: true, mode: 'human' });
    expect(transitionMode({ ...input, source: 'keyword' }).ok).toBe(false);
  });
});
