import { randomBytes } from 'node:crypto';
import { createVisitorTokens, webChatVisitorSecret, WEBCHAT_CONTACT_ID_RE } from '../../services/webchat-visitors';

describe('web chat visitor tokens', () => {
  const key = randomBytes(32);
  const t = createVisitorTokens(key);
  const channel = '7c4a1d2e-0000-4000-8000-000000000001';

  test('a token verifies for its channel only and names a stable, opaque contact id', () => {
    const v = t.issue(channel);
    expect(v.token).toMatch(/^vt1\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(v.contactId).toMatch(WEBCHAT_CONTACT_ID_RE);
    expect(t.verify(channel, v.token)).toEqual({ contactId: v.contactId });
    expect(t.verify('7c4a1d2e-0000-4000-8000-000000000002', v.token)).toBeUndefined();
    // the contact id shares nothing with the token
    const [, nonce, sig] = v.token.split('.') as [string, string, string];
    expect(v.contactId).not.toContain(nonce.slice(0, 8));
    expect(v.contactId).not.toContain(sig.slice(0, 8));
    // two visitors never share a contact
    expect(t.issue(channel).contactId).not.toBe(v.contactId);
  });

  test('forged, truncated and other-key tokens are refused', () => {
    const v = t.issue(channel);
    const [, nonce, sig] = v.token.split('.') as [string, string, string];
    const flipped = sig[0] === 'A' ? `B${sig.slice(1)}` : `A${sig.slice(1)}`;
    for (const bad of [`vt1.${nonce}.${flipped}`, `vt1.${nonce}`, `vt2.${nonce}.${sig}`, v.contactId, '', `vt1.${nonce}.${sig}x`, `Bearer ${v.token}`]) {
      expect(t.verify(channel, bad)).toBeUndefined();
    }
    expect(createVisitorTokens(randomBytes(32)).verify(channel, v.token)).toBeUndefined();
    // a new instance with the same key (another API process) accepts it, with the same contact id
    expect(createVisitorTokens(key).verify(channel, v.token)).toEqual({ contactId: v.contactId });
  });

  test('the key: WEBCHAT_VISITOR_SECRET, else derived from the encryption key (never the key itself)', () => {
    const enc = randomBytes(32);
    const derived = webChatVisitorSecret({ PARLEY_ENCRYPTION_KEY: enc.toString('base64') });
    expect(derived).toHaveLength(32);
    expect(derived.equals(enc)).toBe(false);
    expect(webChatVisitorSecret({ PARLEY_ENCRYPTION_KEY: enc.toString('hex') }).equals(derived)).toBe(true);
    const own = 'x'.repeat(40);
    expect(webChatVisitorSecret({ WEBCHAT_VISITOR_SECRET: own, PARLEY_ENCRYPTION_KEY: enc.toString('base64') }).toString()).toBe(own);
    expect(() => webChatVisitorSecret({})).toThrow(/WEBCHAT_VISITOR_SECRET/);
    expect(() => createVisitorTokens(Buffer.alloc(16))).toThrow(/32 bytes/);
  });
});
