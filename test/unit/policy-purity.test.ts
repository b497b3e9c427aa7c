/**
 * The conversation policies run inside a replayed workflow: the same input must always give the
 * same plain-JSON output, without reading the clock, randomness or any I/O module.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { boundSentAt, capParked, inboxAdmission, newInbound, resumesFirst, utf8Bytes } from '../../workflows/lead/policy/bounds';
import { bumpUpDueAt, DEFAULT_BUMP_UP, isRepeat, trimToWords } from '../../workflows/lead/policy/bump-up';
import { DEFAULT_DEBOUNCE, flushAt, shouldFlush } from '../../workflows/lead/policy/debounce';
import { matchHandoffKeyword, transitionMode } from '../../workflows/lead/policy/handoff';
import { DEFAULT_PACING, nextSendAt } from '../../workflows/lead/policy/pacing';
import { isAllowed, isValidTimeZone, nextAllowedSlot } from '../../workflows/lead/policy/quiet-hours';
import { enroll, nextAction, pause, reset, resume, skip, stepSent, stop, type SequenceDef } from '../../workflows/lead/policy/sequence';
import { isWindowOpen, planOutbound, windowClosesAt } from '../../workflows/lead/policy/window';
import { nextWork } from '../../workflows/lead/policy/next-work';
import { onSendFailure } from '../../workflows/lead/policy/send-failure';
import { sequenceCommand, stopOn } from '../../workflows/lead/policy/sequence-command';
import { mayContact, optOutConfig, optTurn, pendingOptOut, sendCategory } from '../../workflows/lead/policy/opt-out';

const POLICY_DIR = join(__dirname, '../../workflows/lead/policy');
const FILES = ['window', 'quiet-hours', 'sequence', 'pacing', 'debounce', 'bump-up', 'handoff', 'bounds', 'next-work', 'send-failure', 'sequence-command', 'opt-out', 'follow-ups'];
const NOW = '2026-03-06T23:00:00-05:00';
const SEQ: SequenceDef = {
  id: 's',
  name: 'S',
  steps: [
    { delayMs: 0, kind: 'ai', template: { name: 't', language: 'en' }, sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '18:00' } },
    { delayMs: 1000, kind: 'text', text: 'hi' },
  ],
  stopOn: ['lead_replied'],
};

/** Every exported decision, called once with representative inputs. */
function runAll(): unknown[] {
  const cursor = enroll(SEQ, NOW);
  if (!cursor.ok) throw new Error(cursor.reason);
  const c = cursor.cursor;
  const paused = pause(c, NOW);
  return [
    windowClosesAt(NOW),
    isWindowOpen(NOW, NOW),
    planOutbound({ kind: 'ai', now: NOW, fallbackTemplate: { name: 't', language: 'en' } }),
    isValidTimeZone('America/New_York'),
    isAllowed(NOW, SEQ.steps[0]!.sendWindow, 'America/New_York'),
    nextAllowedSlot(NOW, SEQ.steps[0]!.sendWindow, 'America/New_York'),
    cursor,
    paused,
    paused.ok ? resume(paused.cursor, NOW) : paused,
    reset(c, SEQ, NOW),
    skip(c, SEQ, NOW),
    stop(c, 'x', NOW),
    stepSent(c, SEQ, NOW),
    nextAction({ seq: SEQ, cursor: c, now: NOW, timeZone: 'America/New_York' }),
    nextAction({ seq: SEQ, cursor: c, now: '2026-03-09T13:00:00Z', timeZone: 'America/New_York' }),
    nextSendAt({ lastOutboundAt: NOW, now: NOW, policy: DEFAULT_PACING.whatsapp, random: 0.5 }),
    flushAt({ firstArrivalAt: NOW, lastArrivalAt: NOW, ...DEFAULT_DEBOUNCE }),
    shouldFlush({ firstArrivalAt: NOW, lastArrivalAt: NOW, ...DEFAULT_DEBOUNCE, now: NOW }),
    bumpUpDueAt({ channel: 'whatsapp', lastInboundAt: NOW, lastOutboundAt: '2026-03-07T04:01:00Z', lastOutboundByBot: true, bumpsSent: 0, policy: DEFAULT_BUMP_UP }),
    trimToWords('one two three. four', 3),
    isRepeat('Hello there', ['hello there!']),
    transitionMode({ mode: 'ai', request: 'handoff', source: 'keyword', now: NOW, lastHandbackAt: NOW, autoHandoffCooldownMs: 1 }),
    matchHandoffKeyword('Agent please', ['agent']),
    boundSentAt('+033658-09-27T01:46:39.000Z', NOW),
    newInbound([], ['x']),
    capParked([1, 2, 3], 2),
    inboxAdmission([], { providerMessageId: 'w', channel: 'whatsapp', contactId: 'c', sentAt: NOW, type: 'text', text: 'hi' }),
    utf8Bytes('héllo 😀'),
    resumesFirst({ error: { type: 'channel_circuit_open' } }),
    nextWork({ now: NOW, outbox: 0, replays: 0, statuses: 0, sequence: { type: 'idle' }, bumpUpAt: NOW, deferred: [{ id: 'd', retryAt: '2026-03-08T00:00:00Z', resumesFirst: false }] }),
    onSendFailure({ type: 'provider_spam_limited', now: NOW, attempts: 0, replaying: false, isTemplate: false }),
    sequenceCommand({ action: 'skip' }, { mode: 'ai', sequence: { def: SEQ, cursor: c }, now: NOW }),
    stopOn({ def: SEQ, cursor: c }, 'lead_replied'),
    optOutConfig({ languages: ['en'], keywords: { fr: { stop: ['ARRÊT'] } }, confirmationText: 'ok' }),
    optTurn({ messages: [{ text: 'Stop!', providerMessageId: 'w' }, { text: 'price?', providerMessageId: 'x' }], keywords: optOutConfig(undefined) }),
    pendingOptOut([{ text: 'baja', providerMessageId: 'w' }], optOutConfig(undefined)),
    sendCategory({ kind: 'ai', llmPurpose: 'bump_up' }, 'bump-up 1'),
    mayContact('template', { suppressed: true, replyAfterOptOut: true }),
  ];
}

describe('policy purity', () => {
  const RealDate = Date;
  const realRandom = Math.random;
  beforeEach(() => {
    class TrappedDate extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length === 0) throw new Error('policy called new Date() without an argument');
        super(...(args as [number]));
      }
      static override now(): number {
        throw new Error('policy called Date.now()');
      }
    }
    global.Date = TrappedDate as DateConstructor;
    Math.random = () => {
      throw new Error('policy called Math.random()');
    };
  });
  afterEach(() => {
    global.Date = RealDate;
    Math.random = realRandom;
  });

  test('never read the clock or randomness, and give the same answer every time', () => {
    const first = runAll();
    const second = runAll();
    expect(second).toEqual(first);
    expect(first).toHaveLength(38);
  });

  test('answer in plain JSON', () => {
    for (const value of runAll()) expect(JSON.parse(JSON.stringify(value ?? null))).toEqual(value ?? null);
  });
});

describe('policy imports', () => {
  test.each(FILES)('%s.ts imports only sibling policies, the contract, definition types and zod', (file) => {
    const source = readFileSync(join(POLICY_DIR, `${file}.ts`), 'utf8');
    const imports = [...source.matchAll(/^import\s+(type\s+)?[^'"]*from\s+'([^']+)'/gm)].map((m) => ({ typeOnly: Boolean(m[1]), from: m[2]! }));
    for (const { typeOnly, from } of imports) {
      if (from === '../definitions') expect(typeOnly).toBe(true);
      else if (from.startsWith('../../../contract/')) expect(from).toMatch(/^\.\.\/\.\.\/\.\.\/contract\/[a-z-]+$/);
      else expect(from === 'zod' || (from.startsWith('./') && FILES.includes(from.slice(2)))).toBe(true);
    }
    expect(source).not.toMatch(/require\(|process\.|Date\.now|Math\.random|new Date\(\)/);
  });
});
