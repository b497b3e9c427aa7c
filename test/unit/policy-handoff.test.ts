import { aiMayReply, matchHandoffKeyword, sequencesMayRun, transitionMode, type ModeRequest, type TransitionModeInput } from '../../workflows/lead/policy/handoff';
import type { LeadMode } from '../../workflows/lead/definitions';

const NOW = '2026-03-06T12:00:00.000Z';
const MIN = 60_000;
const base = { source: 'api', now: NOW, autoHandoffCooldownMs: 30 * MIN } as const;

describe('transitionMode', () => {
  const MODES: LeadMode[] = ['ai', 'human', 'paused', 'closed'];
  const REQUESTS: ModeRequest[] = ['handoff', 'handback', 'pause', 'resume', 'close', 'reopen'];
  // request → mode it may be made from → resulting mode
  const ALLOWED: Record<ModeRequest, Partial<Record<LeadMode, LeadMode>>> = {
    handoff: { ai: 'human' },
    handback: { human: 'ai' },
    pause: { ai: 'paused' },
    resume: { paused: 'ai' },
    close: { ai: 'closed', human: 'closed', paused: 'closed' },
    reopen: { closed: 'ai' },
  };
  const cases = REQUESTS.flatMap((request) => MODES.map((mode) => [request, mode, ALLOWED[request][mode]] as const));

  test.each(cases)('%s from %s → %s', (request, mode, expected) => {
    const r = transitionMode({ ...base, mode, request });
    if (expected) expect(r).toEqual({ ok: true, mode: expected });
    else {
      expect(r.ok).toBe(false);
      expect(!r.ok && r.reason.length).toBeGreaterThan(5);
    }
  });

  test('refusals say why', () => {
    const reason = (mode: LeadMode, request: ModeRequest) => {
      const r = transitionMode({ ...base, mode, request });
      return r.ok ? undefined : r.reason;
    };
    expect(reason('human', 'handoff')).toBe('lead is already with a human');
    expect(reason('ai', 'handback')).toBe('lead is not with a human');
    expect(reason('paused', 'pause')).toBe('lead is already paused');
    expect(reason('ai', 'resume')).toBe('lead is not paused');
    expect(reason('closed', 'close')).toBe('lead is already closed');
    expect(reason('ai', 'reopen')).toBe('lead is not closed');
    expect(reason('closed', 'handoff')).toBe('lead is closed; reopen it first');
    expect(reason('paused', 'handoff')).toMatch(/paused; resume it/);
  });

  describe('no handoff loops', () => {
    const justHandedBack: TransitionModeInput = { ...base, mode: 'ai', request: 'handoff', lastHandbackAt: '2026-03-06T11:50:00Z' };
    test.each(['keyword', 'llm_tool'] as const)('an automatic handoff (%s) soon after a handback is refused', (source) => {
      const r = transitionMode({ ...justHandedBack, source });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.reason).toBe('automatic handoff refused: the lead was handed back to the AI 10 min ago (cooldown 30 min)');
    });
    test('an API handoff is always allowed', () => expect(transitionMode(justHandedBack)).toEqual({ ok: true, mode: 'human' }));
    test('after the cooldown, automatic handoffs are allowed again (at exactly the cooldown too)', () => {
      expect(transitionMode({ ...justHandedBack, source: 'keyword', lastHandbackAt: '2026-03-06T11:30:00Z' })).toEqual({ ok: true, mode: 'human' });
      expect(transitionMode({ ...justHandedBack, source: 'keyword', lastHandbackAt: '2026-03-06T11:30:00.001Z' }).ok).toBe(false);
    });
    test('without a handback, or with no cooldown, automatic handoffs go through', () => {
      expect(transitionMode({ ...justHandedBack, source: 'llm_tool', lastHandbackAt: undefined })).toEqual({ ok: true, mode: 'human' });
      expect(transitionMode({ ...justHandedBack, source: 'llm_tool', autoHandoffCooldownMs: 0 })).toEqual({ ok: true, mode: 'human' });
    });
    test('the cooldown only concerns handoffs', () => {
      expect(transitionMode({ ...justHandedBack, source: 'keyword', request: 'close' })).toEqual({ ok: true, mode: 'closed' });
    });
    test('the mode check comes first', () => {
      const r = transitionMode({ ...justHandedBack, source: 'keyword', mode: 'human' });
      expect(!r.ok && r.reason).toBe('lead is already with a human');
    });
  });

  test('rejects malformed times', () => {
    expect(() => transitionMode({ ...base, mode: 'ai', request: 'pause', now: 'now' })).toThrow(/now must be/);
    expect(() => transitionMode({ ...base, mode: 'ai', request: 'handoff', source: 'keyword', lastHandbackAt: '2026-03-06' })).toThrow(/lastHandbackAt must be/);
  });
});

describe('matchHandoffKeyword', () => {
  const KEYWORDS = ['human', 'talk to a person', 'agent'];
  test('matches a whole word, whatever the case and punctuation', () => {
    expect(matchHandoffKeyword('HUMAN please!!', KEYWORDS)).toBe('human');
    expect(matchHandoffKeyword('Can I get an agent?', KEYWORDS)).toBe('agent');
    expect(matchHandoffKeyword('human.', KEYWORDS)).toBe('human');
    expect(matchHandoffKeyword('"Agent"', KEYWORDS)).toBe('agent');
  });
  test('does not match inside longer words', () => {
    expect(matchHandoffKeyword('are you humans?', KEYWORDS)).toBeUndefined();
    expect(matchHandoffKeyword('inhuman pricing', KEYWORDS)).toBeUndefined();
    expect(matchHandoffKeyword('my real-estate agents said', KEYWORDS)).toBeUndefined();
    expect(matchHandoffKeyword('agentic AI', KEYWORDS)).toBeUndefined();
  });
  test('matches phrases across any spacing and punctuation, not scattered words', () => {
    expect(matchHandoffKeyword('I want to TALK  to a\nperson.', KEYWORDS)).toBe('talk to a person');
    expect(matchHandoffKeyword('talk to a... person', KEYWORDS)).toBe('talk to a person');
    expect(matchHandoffKeyword('talk to a real person', KEYWORDS)).toBeUndefined();
    expect(matchHandoffKeyword('talk to a personal shopper', KEYWORDS)).toBeUndefined();
  });
  test('returns the first keyword of the list that matches', () => {
    expect(matchHandoffKeyword('agent or human, anyone', KEYWORDS)).toBe('human');
  });
  test('handles Unicode letters', () => {
    expect(matchHandoffKeyword('¿Puedo hablar con un AGENTE?', ['agente'])).toBe('agente');
    expect(matchHandoffKeyword('Ich möchte einen Menschen sprechen', ['mensch'])).toBeUndefined();
    expect(matchHandoffKeyword('Ich möchte mit einem Menschen sprechen', ['menschen'])).toBe('menschen');
    expect(matchHandoffKeyword('मुझे इंसान से बात करनी है', ['इंसान'])).toBe('इंसान');
    expect(matchHandoffKeyword('मुझे इंसानों से बात करनी है', ['इंसान'])).toBeUndefined();
    expect(matchHandoffKeyword('ＡＧＥＮＴ', ['agent'])).toBe('agent');
    expect(matchHandoffKeyword('Führungskraft', ['führung'])).toBeUndefined();
  });
  test('nothing to match', () => {
    expect(matchHandoffKeyword('', KEYWORDS)).toBeUndefined();
    expect(matchHandoffKeyword('human', [])).toBeUndefined();
    expect(matchHandoffKeyword('?!', ['?!', ' '])).toBeUndefined();
  });
});

describe('who may act in each mode', () => {
  test.each([
    ['ai', true],
    ['human', false],
    ['paused', false],
    ['closed', false],
  ] as const)('%s: AI replies and sequences run = %s', (mode, expected) => {
    expect(aiMayReply(mode)).toBe(expected);
    expect(sequencesMayRun(mode)).toBe(expected);
  });
});
