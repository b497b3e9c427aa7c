import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets at rest: AES-256-GCM with a 32-byte key from config. Stored form:
 * `v1:<iv b64>:<tag b64>:<ciphertext b64>` so the scheme can change later.
 */
export interface SecretBox {
  encrypt(plain: string): string;
  decrypt(stored: string): string;
}

export function parseEncryptionKey(raw: string): Buffer {
  const trimmed = raw.trim();
  const asHex = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : undefined;
  const key = asHex ?? Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new Error('PARLEY_ENCRYPTION_KEY must be 32 bytes, as 64 hex characters or base64');
  return key;
}

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('encryption key must be 32 bytes');
  return {
    encrypt(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
    },
    decrypt(stored) {
      const [version, iv, tag, ct] = stored.split(':');
      if (version !== 'v1' || !iv || !tag || ct === undefined) throw new Error('unrecognized encrypted secret format');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
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
