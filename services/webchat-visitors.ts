/**
 * Web chat visitor credentials. The server creates a visitor (POST /webchat/:key/visitors) and
 * hands its browser a token; the token is the ONLY credential of the conversation and travels
 * in the Authorization header, never in a URL, a workflow id or a log line.
 *
 *   token     = "vt1." + nonce + "." + HMAC-SHA256(key, "webchat-visitor:v1:" + channelId + ":" + nonce)
 *   contactId = "wv_" + HMAC-SHA256(key, "webchat-contact:v1:" + channelId + ":" + nonce)  (first 24 bytes, base64url)
 *
 * nonce = 16 random bytes (base64url). The token is bound to its channel (a token of one
 * widget is refused by another) and checked without a database read, so a forged or rotated
 * token costs nothing and a fresh conversation needs a fresh POST /visitors (rate limited).
 * The contact id (lead contact, whose keyed digest names the lead workflow, dedup ids, logs) is
 * derived one way from the nonce: knowing it does not give the token.
 *
 * The key is WEBCHAT_VISITOR_SECRET, or derived (HKDF-SHA256) from PARLEY_ENCRYPTION_KEY.
 * Changing it invalidates every visitor token (visitors start new conversations).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseEncryptionKey } from '../lib/crypto';

const TOKEN_RE = /^vt1\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
export const WEBCHAT_CONTACT_ID_RE = /^wv_[A-Za-z0-9_-]{32}$/;

export interface VisitorTokens {
  /** A new visitor of `channelId`: its token (secret, for the browser) and contact id (not secret). */
  issue(channelId: string): { token: string; contactId: string };
  /** The contact id of a valid token of `channelId`, or undefined (malformed, forged, other channel). */
  verify(channelId: string, token: string): { contactId: string } | undefined;
}

/** The signing key: WEBCHAT_VISITOR_SECRET, else derived from the encryption key (never the key itself). */
export function webChatVisitorSecret(config: { WEBCHAT_VISITOR_SECRET?: string; PARLEY_ENCRYPTION_KEY?: string }): Buffer {
  if (config.WEBCHAT_VISITOR_SECRET) return Buffer.from(config.WEBCHAT_VISITOR_SECRET, 'utf8');
  if (!config.PARLEY_ENCRYPTION_KEY) throw new Error('web chat visitor tokens need WEBCHAT_VISITOR_SECRET or PARLEY_ENCRYPTION_KEY');
  return Buffer.from(hkdfSync('sha256', parseEncryptionKey(config.PARLEY_ENCRYPTION_KEY), Buffer.alloc(0), 'parley webchat visitor tokens v1', 32));
}

export function createVisitorTokens(secret: Buffer): VisitorTokens {
  if (secret.length < 32) throw new Error('the web chat visitor key must be at least 32 bytes');
  const mac = (label: string, channelId: string, nonce: string) => createHmac('sha256', secret).update(`${label}:v1:${channelId}:${nonce}`).digest();
  const contactOf = (channelId: string, nonce: string) => `wv_${mac('webchat-contact', channelId, nonce).subarray(0, 24).toString('base64url')}`;
  return {
    issue(channelId) {
      const nonce = randomBytes(16).toString('base64url');
      const sig = mac('webchat-visitor', channelId, nonce).toString('base64url');
      return { token: `vt1.${nonce}.${sig}`, contactId: contactOf(channelId, nonce) };
    },
    verify(channelId, token) {
      const m = TOKEN_RE.exec(token);
      if (!m) return undefined;
      const [, nonce, sig] = m as unknown as [string, string, string];
      const expected = mac('webchat-visitor', channelId, nonce);
      const given = Buffer.from(sig, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      return { contactId: contactOf(channelId, nonce) };
    },
  };
}
