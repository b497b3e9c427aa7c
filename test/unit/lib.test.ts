import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { classifyGraphError, isRetryableGraphError } from '../../lib/graph-errors';
import { ConfigError, loadConfig } from '../../config';
import { createSecretBox, hashApiKey, parseEncryptionKey, safeEqual, signMetaBody, verifyMetaSignature } from '../../lib/crypto';
import { createLogger } from '../../lib/logger';

describe('secret box', () => {
  const box = createSecretBox(randomBytes(32));
  test('round-trips and never stores the plain text', () => {
    const enc = box.encrypt('EAAG-super-secret', 'ctx');
    expect(enc).not.toContain('EAAG');
    expect(box.decrypt(enc, 'ctx')).toBe('EAAG-super-secret');
  });
  test('two encryptions of one secret differ (random IV)', () => {
    expect(box.encrypt('x', 'ctx')).not.toBe(box.encrypt('x', 'ctx'));
  });
  test('a tampered ciphertext or another key fails', () => {
    const enc = box.encrypt('secret', 'ctx');
    const parts = enc.split(':');
    parts[4] = Buffer.from('garbage').toString('base64');
    expect(() => box.decrypt(parts.join(':'), 'ctx')).toThrow();
    expect(() => createSecretBox(randomBytes(32)).decrypt(enc, 'ctx')).toThrow();
  });
  test('keys are 32 bytes as hex or base64', () => {
    expect(parseEncryptionKey('a'.repeat(64))).toHaveLength(32);
    expect(parseEncryptionKey(randomBytes(32).toString('base64'))).toHaveLength(32);
    expect(() => parseEncryptionKey('short')).toThrow(/32 bytes/);
  });
});

describe('Meta signatures', () => {
  const raw = Buffer.from('{"object":"whatsapp_business_account"}');
  test('verify what was signed with the same secret', () => {
    expect(verifyMetaSignature(raw, signMetaBody(raw, 's3cret'), 's3cret')).toBe(true);
  });
  test('reject another secret, another body, a missing or malformed header', () => {
    expect(verifyMetaSignature(raw, signMetaBody(raw, 'other'), 's3cret')).toBe(false);
    expect(verifyMetaSignature(Buffer.from('{}'), signMetaBody(raw, 's3cret'), 's3cret')).toBe(false);
    expect(verifyMetaSignature(raw, undefined, 's3cret')).toBe(false);
    expect(verifyMetaSignature(raw, 'sha1=abc', 's3cret')).toBe(false);
    expect(verifyMetaSignature(raw, 'sha256=zz', 's3cret')).toBe(false);
    expect(verifyMetaSignature(raw, `${signMetaBody(raw, 's3cret')}zz`, 's3cret')).toBe(false);
    expect(verifyMetaSignature(raw, `${signMetaBody(raw, 's3cret')}0`, 's3cret')).toBe(false);
  });
  test('safeEqual', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
  test('api key hashes are stable and not the key', () => {
    expect(hashApiKey('pk_x')).toBe(hashApiKey('pk_x'));
    expect(hashApiKey('pk_x')).not.toContain('pk_x');
  });
});

describe('Graph API error taxonomy', () => {
  test.each([
    [130429, 'rate_limited', true],
    [4, 'rate_limited', true],
    [131000, 'transient', true],
    [131047, 'reengagement', false],
    [131049, 'spam_limited', false],
    [131026, 'permanent', false],
    [132005, 'permanent', false],
    [190, 'auth', false],
    [250, 'auth', false],
    [368, 'auth', false],
  ] as const)('code %s is %s', (code, cls, retry) => {
    expect(classifyGraphError(code)).toBe(cls);
    expect(isRetryableGraphError(classifyGraphError(code), 400)).toBe(retry);
  });
  test('unknown codes retry only on 5xx and 429', () => {
    expect(isRetryableGraphError(classifyGraphError(999999), 500)).toBe(true);
    expect(isRetryableGraphError(classifyGraphError(999999), 400)).toBe(false);
  });
});

describe('config', () => {
  test('defaults', () => {
    const c = loadConfig({});
    expect(c.PORT).toBe(3000);
    expect(c.GRAPH_API_URL).toBe('https://graph.facebook.com');
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.PARLEY_SIMULATE).toBe(false);
  });
  test('lists every problem at once', () => {
    try {
      loadConfig({ PORT: 'abc', GRAPH_API_VERSION: '21', PARLEY_SIMULATE: 'yes' });
      throw new Error('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });
  test('production requires its secrets', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PARLEY_ADMIN_TOKEN/);
  });
  test('in production each process requires only what it reads: the worker needs neither the admin token nor the Meta app secret', () => {
    const shared = { NODE_ENV: 'production', PARLEY_ENCRYPTION_KEY: 'k'.repeat(64), DATABASE_URL: 'postgres://p@db:5432/parley', TEMPORAL_ADDRESS: 'temporal:7233' };
    expect(loadConfig(shared, { reader: 'worker' }).TEMPORAL_ADDRESS).toBe('temporal:7233');
    const problems = (env: Record<string, string>, reader: 'api' | 'worker' | 'all') => {
      try {
        loadConfig(env, { reader });
        return [];
      } catch (err) {
        return (err as ConfigError).problems.map((p) => p.split(':')[0]);
      }
    };
    expect(problems(shared, 'api')).toEqual(['PARLEY_ADMIN_TOKEN', 'META_APP_SECRET']);
    expect(problems(shared, 'all')).toEqual(['PARLEY_ADMIN_TOKEN', 'META_APP_SECRET']);
    expect(problems({ NODE_ENV: 'production' }, 'worker')).toEqual(['PARLEY_ENCRYPTION_KEY', 'DATABASE_URL', 'TEMPORAL_ADDRESS']);
    // the response check is a test setting: refused in production, allowed elsewhere
    expect(problems({ ...shared, PARLEY_CHECK_RESPONSES: 'true' }, 'worker')).toEqual(['PARLEY_CHECK_RESPONSES']);
    expect(loadConfig({ PARLEY_CHECK_RESPONSES: 'true' }).PARLEY_CHECK_RESPONSES).toBe(true);
  });
  test('empty strings are unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }).DATABASE_URL).toBeUndefined();
  });
});

describe('logger redaction', () => {
  test('tokens, secrets and auth headers never reach the output', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
    const log = createLogger({ destination: sink });
    log.info({ accessToken: 'CANARY-1', headers: { authorization: 'Bearer CANARY-2' }, channel: { appSecret: 'CANARY-3', apiKey: 'CANARY-4' } }, 'hello');
    const out = lines.join('');
    expect(out).toContain('hello');
    for (const c of ['CANARY-1', 'CANARY-2', 'CANARY-3', 'CANARY-4']) expect(out).not.toContain(c);
  });
});
