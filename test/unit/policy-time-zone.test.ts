import { guessTimeZone } from '../../workflows/lead/policy/time-zone';

describe('guessTimeZone', () => {
  it('guesses from a phone number’s calling code', () => {
    expect(guessTimeZone('919876543210')).toBe('Asia/Kolkata');
    expect(guessTimeZone('5511987654321')).toBe('America/Sao_Paulo');
  });
  it('guesses from the country a business-scoped user id starts with (a user without a phone number)', () => {
    expect(guessTimeZone('IN.1648738043044942')).toBe('Asia/Kolkata');
    expect(guessTimeZone('BR.1502576394655843')).toBe('America/Sao_Paulo');
    expect(guessTimeZone('US.ENT.11815799212886844830')).toBe('America/New_York');
  });
  it('falls back to UTC', () => {
    expect(guessTimeZone('ZZ.123')).toBe('UTC');
    expect(guessTimeZone('v_abcdefghijklmnop')).toBe('UTC');
  });
});
