import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets at rest: AES-256-GCM with 32-byte keys from config. Stored form:
 * `v2:<key id>:<iv b64>:<tag b64>:<ciphertext b64>`.
 *
 * - The tag is always 16 bytes: a shorter one is refused (GCM would otherwise verify a
 *   truncated tag, and a 4-byte tag can be forged by trial).
 * - Every value is bound to where it lives by associated data (`context`, e.g. the row id and
 *   column): a ciphertext copied to another row or column does not decrypt.
 * - The key id (a hash of the key, never the key) says which key wrote a value, so keys rotate:
 *   the current key writes, previous keys still read, and `needsRewrap` finds what to re-encrypt.
 *
 * Values of the first format, `v1:<iv>:<tag>:<ciphertext>` (no key id, no associated data),
 * stay readable with any configured key (still with a full 16-byte tag) until re-encrypted.
 */
export interface SecretBox {
  /** The id of the current key (`keyIdOf`), which writes. */
  readonly keyId: string;
  encrypt(plain: string, context: string): string;
  decrypt(stored: string, context: string): string;
  /** True when `stored` is not in the current format under the current key (rotation left to do). */
  needsRewrap(stored: string): boolean;
}

const TAG_BYTES = 16;
const IV_BYTES = 12;

export function parseEncryptionKey(raw: string): Buffer {
  const trimmed = raw.trim();
  const asHex = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : undefined;
  const key = asHex ?? Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new Error('PARLEY_ENCRYPTION_KEY must be 32 bytes, as 64 hex characters or base64');
  return key;
}

/** `PARLEY_ENCRYPTION_KEYS_OLD`: previous keys, comma-separated, each 32 bytes as hex or base64. */
export function parseEncryptionKeys(raw: string | undefined): Buffer[] {
  return (raw ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k) => {
      try {
        return parseEncryptionKey(k);
      } catch {
        throw new Error('every key of PARLEY_ENCRYPTION_KEYS_OLD must be 32 bytes, as 64 hex characters or base64');
      }
    });
}

/** A short public name of a key: the first 9 bytes of SHA-256 over a label and the key, base64url. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('parley-secret-box-key-id\0').update(key).digest().subarray(0, 9).toString('base64url');
}

function open(key: Buffer, iv: Buffer, tag: Buffer, ct: Buffer, aad: Buffer | undefined): string {
  if (iv.length !== IV_BYTES) throw new Error('encrypted secret: bad IV length');
  if (tag.length !== TAG_BYTES) throw new Error('encrypted secret: the authentication tag must be 16 bytes');
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
}

export function createSecretBox(current: Buffer, previous: Buffer[] = []): SecretBox {
  for (const k of [current, ...previous]) if (k.length !== 32) throw new Error('encryption key must be 32 bytes');
  const currentId = keyIdOf(current);
  const keys = new Map<string, Buffer>();
  for (const k of [current, ...previous]) if (!keys.has(keyIdOf(k))) keys.set(keyIdOf(k), k);
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return {
    keyId: currentId,
    encrypt(plain, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return ['v2', currentId, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
    },
    decrypt(stored, context) {
      const p = stored.split(':');
      if (p[0] === 'v2' && p.length === 5) {
        const [, kid, iv, tag, ct] = p as [string, string, string, string, string];
        const key = keys.get(kid);
        if (!key) throw new Error(`encrypted secret: no configured key has key id ${kid} (add it to PARLEY_ENCRYPTION_KEYS_OLD)`);
        return open(key, b64(iv), b64(tag), b64(ct), Buffer.from(context, 'utf8'));
      }
      if (p[0] === 'v1' && p.length === 4) {
        // legacy: no key id (try each key), no associated data
        const [, iv, tag, ct] = p as [string, string, string, string];
        let last: unknown;
        for (const key of keys.values()) {
          try {
            return open(key, b64(iv), b64(tag), b64(ct), undefined);
          } catch (err) {
            last = err;
          }
        }
        throw last instanceof Error ? last : new Error('encrypted secret: no configured key opens it');
      }
      throw new Error('unrecognized encrypted secret format');
    },
    needsRewrap(stored) {
      const p = stored.split(':');
      return !(p[0] === 'v2' && p[1] === currentId);
    },
  };
}

export function generateEncryptionKey(): string {
  return randomBytes(32).toString('base64');
}

/** API keys are stored only as their SHA-256. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateApiKey(): string {
  return `pk_${randomBytes(24).toString('base64url')}`;
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  // compare against itself on length mismatch so timing does not depend on where they differ
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** Meta's `X-Hub-Signature-256`: `sha256=` + hex HMAC-SHA256 of the exact raw body. */
export function signMetaBody(raw: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(raw).digest('hex')}`;
}

export function verifyMetaSignature(raw: Buffer, header: string | undefined, appSecret: string): boolean {
  if (!header || !/^sha256=[0-9a-fA-F]{64}$/.test(header)) return false;
  const expected = Buffer.from(createHmac('sha256', appSecret).update(raw).digest('hex'), 'hex');
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  if (given.length !== expected.length) return false;
  return timingSafeEqual(given, expected);
}
