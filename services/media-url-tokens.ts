/**
 * Signed, expiring public urls for library media (`GET /media/:token`): what Instagram's servers
 * and the web chat widget fetch, since neither can send a bearer. The token names the tenant and
 * the file and when it expires, and carries an HMAC-SHA256 over exactly that:
 *
 *   mu1.<base64url(tenantId 16 bytes | mediaId 16 bytes | expiry seconds, 8 bytes BE)>.<base64url(hmac)>
 *
 * Verification is a length check, a base64 decode and one HMAC (constant-time compare): a
 * tampered, foreign or expired token is refused before any database work. Nothing secret is in
 * the token (ids only); the key is MEDIA_URL_SECRET or derived from PARLEY_ENCRYPTION_KEY.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { parseEncryptionKey } from '../lib/crypto';

const PREFIX = 'mu1';
/** The longest token accepted (a real one is 4 + 54 + 1 + 43 = 102 characters). */
export const MAX_MEDIA_TOKEN_LENGTH = 160;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type MediaTokenCheck = { ok: true; tenantId: string; mediaId: string; expiresAt: Date } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' };

export interface MediaUrlTokens {
  sign(input: { tenantId: string; mediaId: string; expiresAt: Date }): string;
  verify(token: string, now?: Date): MediaTokenCheck;
}

/** The signing key: MEDIA_URL_SECRET, else one derived from the encryption key (its own label). */
export function mediaUrlSecret(config: { MEDIA_URL_SECRET?: string; PARLEY_ENCRYPTION_KEY?: string }): Buffer {
  if (config.MEDIA_URL_SECRET) return Buffer.from(config.MEDIA_URL_SECRET, 'utf8');
  if (!config.PARLEY_ENCRYPTION_KEY) throw new Error('signed media urls need MEDIA_URL_SECRET or PARLEY_ENCRYPTION_KEY');
  return Buffer.from(hkdfSync('sha256', parseEncryptionKey(config.PARLEY_ENCRYPTION_KEY), Buffer.alloc(0), 'parley media url tokens v1', 32));
}

const uuidBytes = (id: string): Buffer => Buffer.from(id.replace(/-/g, ''), 'hex');
const uuidOf = (b: Buffer): string => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export function createMediaUrlTokens(secret: Buffer): MediaUrlTokens {
  if (secret.length < 32) throw new Error('the media url key must be at least 32 bytes');
  const mac = (payload: string) => createHmac('sha256', secret).update(`${PREFIX}.${payload}`).digest();
  return {
    sign({ tenantId, mediaId, expiresAt }) {
      if (!UUID.test(tenantId) || !UUID.test(mediaId)) throw new Error('media url tokens name uuids only');
      const exp = Buffer.alloc(8);
      exp.writeBigUInt64BE(BigInt(Math.floor(expiresAt.getTime() / 1000)));
      const payload = Buffer.concat([uuidBytes(tenantId), uuidBytes(mediaId), exp]).toString('base64url');
      return `${PREFIX}.${payload}.${mac(payload).toString('base64url')}`;
    },
    verify(token, now = new Date()) {
      if (typeof token !== 'string' || token.length > MAX_MEDIA_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
      const parts = token.split('.');
      if (parts.length !== 3 || parts[0] !== PREFIX || !/^[A-Za-z0-9_-]{54}$/.test(parts[1]!) || !/^[A-Za-z0-9_-]{43}$/.test(parts[2]!)) return { ok: false, reason: 'malformed' };
      const given = Buffer.from(parts[2]!, 'base64url');
      // one spelling per token: 43 characters carry two padding bits, which the decoder ignores
      if (given.toString('base64url') !== parts[2]) return { ok: false, reason: 'malformed' };
      const expected = mac(parts[1]!);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
      const raw = Buffer.from(parts[1]!, 'base64url');
      if (raw.length !== 40) return { ok: false, reason: 'malformed' };
      const expiresAt = new Date(Number(raw.readBigUInt64BE(32)) * 1000);
      if (expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
      return { ok: true, tenantId: uuidOf(raw.subarray(0, 16)), mediaId: uuidOf(raw.subarray(16, 32)), expiresAt };
    },
  };
}
