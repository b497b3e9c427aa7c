import {
  DEFAULT_OPT_OUT,
  DEFAULT_OPT_KEYWORDS,
  mayContact,
  matchOptKeyword,
  needsConsent,
  normalizeKeyword,
  optOutConfig,
  optTurn,
  pendingOptOut,
  sendCategory,
  type SendCategory,
} from '../../workflows/lead/policy/opt-out';

const K = DEFAULT_OPT_OUT;
const msgs = (...texts: string[]) => texts.map((text, i) => ({ text, providerMessageId: `m${i}` }));

describe('matchOptKeyword: the whole trimmed message, case and Latin accents ignored', () => {
  test.each([
    ['STOP', 'opt_out'],
    ['  stop  ', 'opt_out'],
    ['Stop!', 'opt_out'],
    ['unsubscribe.', 'opt_out'],
    ['stop   all', 'opt_out'],
    ['रोकें', 'opt_out'],
    ['बंद करो', 'opt_out'],
    ['अनसब्सक्राइब', 'opt_out'],
    ['baja', 'opt_out'],
    ['Cancelar suscripcion', 'opt_out'],
    ['CANCELAR SUSCRIPCIÓN', 'opt_out'],
    ['parar', 'opt_out'],
    ['Sair', 'opt_out'],
    ['START', 'opt_in'],
    ['começar', 'opt_in'],
    ['comecar', 'opt_in'],
    ['Alta', 'opt_in'],
    ['शुरू करें', 'opt_in'],
  ])('%j → %s', (text, action) => {
    expect(matchOptKeyword(text, K)?.action).toBe(action);
  });

  test.each(['please stop sending me offers', 'stop it, what is the price?', 'stopping by tomorrow', 'startup', 'no', 'ok', '', '   ', 'बंद'])('%j is not a phrase', (text) => {
    expect(matchOptKeyword(text, K)).toBeUndefined();
  });

  test('undefined text (media) never matches', () => {
    expect(matchOptKeyword(undefined, K)).toBeUndefined();
  });

  test('Devanagari vowel signs are kept: a different word does not match', () => {
    expect(normalizeKeyword('रोकें')).not.toBe(normalizeKeyword('रक'));
    expect(matchOptKeyword('रक', K)).toBeUndefined();
  });
});

describe('optOutConfig: defaults per language, agent extras, the settings', () => {
  test('no settings: every default language, replies continue, no confirmation', () => {
    expect(K.replyAfterOptOut).toBe(true);
    expect(K.confirmationText).toBeUndefined();
    for (const lang of Object.values(DEFAULT_OPT_KEYWORDS)) for (const k of lang.stop) expect(K.stop).toContain(normalizeKeyword(k));
  });

  test('only the languages the agent names; extras of any language are added', () => {
    const c = optOutConfig({ languages: ['en'], keywords: { fr: { stop: ['ARRÊT'], start: ['Commencer'] } }, confirmationText: ' You are unsubscribed. ', replyAfterOptOut: false });
    expect(matchOptKeyword('stop', c)?.action).toBe('opt_out');
    expect(matchOptKeyword('baja', c)).toBeUndefined();
    expect(matchOptKeyword('arret', c)?.action).toBe('opt_out');
    expect(matchOptKeyword('COMMENCER', c)?.action).toBe('opt_in');
    expect(c.confirmationText).toBe('You are unsubscribed.');
    expect(c.replyAfterOptOut).toBe(false);
  });

  test('a phrase in both lists is a stop phrase (the safe side)', () => {
    const c = optOutConfig({ languages: [], keywords: { en: { stop: ['halt'], start: ['HALT', 'go'] } } });
    expect(matchOptKeyword('halt', c)?.action).toBe('opt_out');
    expect(c.start).toEqual(['go']);
  });
});

describe('optTurn: the last phrase of a batch decides; the AI answers only what came after it', () => {
  test('STOP alone: opt out, nothing to answer', () => {
    expect(optTurn({ messages: msgs('STOP'), keywords: K })).toEqual({ last: { action: 'opt_out', keyword: 'stop', providerMessageId: 'm0' }, writesAfter: false });
  });
  test('a question before STOP is not answered', () => {
    expect(optTurn({ messages: msgs('what is the price?', 'STOP'), keywords: K }).writesAfter).toBe(false);
  });
  test('a question after STOP is (if the agent replies after opt-out)', () => {
    expect(optTurn({ messages: msgs('STOP', 'actually, what is the price?'), keywords: K })).toMatchObject({ last: { action: 'opt_out' }, writesAfter: true });
  });
  test('STOP then START: subscribed', () => {
    expect(optTurn({ messages: msgs('STOP', 'START'), keywords: K }).last).toMatchObject({ action: 'opt_in', providerMessageId: 'm1' });
  });
  test('no phrase: nothing', () => {
    expect(optTurn({ messages: msgs('hello'), keywords: K })).toEqual({ writesAfter: false });
  });
  test('pendingOptOut: buffered messages that end in an opt-out', () => {
    expect(pendingOptOut(msgs('hi', 'stop'), K)).toBe(true);
    expect(pendingOptOut(msgs('stop', 'start'), K)).toBe(false);
    expect(pendingOptOut([], K)).toBe(false);
  });
});

describe('what a suppressed contact may get', () => {
  test('categories from what and purpose', () => {
    expect(sendCategory({ kind: 'text' }, 'sequence step 3')).toBe('sequence_step');
    expect(sendCategory({ kind: 'ai', llmPurpose: 'sequence_step' }, 'sequence step 1')).toBe('sequence_step');
    expect(sendCategory({ kind: 'template' }, 'sequence step 2')).toBe('sequence_step');
    expect(sendCategory({ kind: 'ai', llmPurpose: 'bump_up' }, 'bump-up 1')).toBe('bump_up');
    expect(sendCategory({ kind: 'template' }, 'api message')).toBe('template');
    expect(sendCategory({ kind: 'template' }, 'manual reply')).toBe('template');
    expect(sendCategory({ kind: 'ai', llmPurpose: 'reply' }, 'reply')).toBe('ai_reply');
    expect(sendCategory({ kind: 'text' }, 'manual reply')).toBe('manual');
    expect(sendCategory({ kind: 'text' }, 'opt-out confirmation')).toBe('confirmation');
  });

  const ALL: SendCategory[] = ['sequence_step', 'bump_up', 'template', 'ai_reply', 'manual', 'confirmation'];
  test.each(ALL)('%s: always to a subscribed contact', (c) => {
    expect(mayContact(c, { suppressed: false, replyAfterOptOut: false })).toBe(true);
  });
  test.each(ALL)('%s: to a suppressed contact', (c) => {
    const expected = !needsConsent(c);
    expect(mayContact(c, { suppressed: true, replyAfterOptOut: true })).toBe(expected);
    expect(mayContact(c, { suppressed: true, replyAfterOptOut: false })).toBe(expected && c !== 'ai_reply');
  });
  test('steps, bump-ups and templates need consent; replies, manual messages and the confirmation do not', () => {
    expect(ALL.filter(needsConsent)).toEqual(['sequence_step', 'bump_up', 'template']);
  });
});
