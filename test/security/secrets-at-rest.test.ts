/**
 * Channel secrets at rest (AES-256-GCM): a truncated tag is refused, a ciphertext only opens in
 * the row and column it was written for, and keys rotate by id (current + previous keys).
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { agents, channelAccounts } from '../../db/schema';
import { createSecretBox, keyIdOf, parseEncryptionKeys } from '../../lib/crypto';
import { createServices, type Services } from '../../services';
import { channelSecretContext, rewrapChannelSecrets } from '../../services/channels';

jest.setTimeout(120_000);

/** The stored format: `v2:<key id>:<iv>:<tag>:<ciphertext>` (base64 parts). */
function parts(stored: string) {
  const [version, kid, iv, tag, ct] = stored.split(':');
  return { version, kid, iv: iv!, tag: tag!, ct: ct! };
}

describe('secret box', () => {
  const key = randomBytes(32);
  const box = createSecretBox(key);

  test('a tag shorter than 16 bytes is refused, even a true prefix of the real tag (truncated-tag forgery)', () => {
    const stored = box.encrypt('EAAG-token', 'ctx');
    const p = parts(stored);
    for (const len of [4, 8, 12, 15]) {
      const short = Buffer.from(p.tag, 'base64').subarray(0, len).toString('base64');
      expect(() => box.decrypt([p.version, p.kid, p.iv, short, p.ct].join(':'), 'ctx')).toThrow();
    }
    expect(box.decrypt(stored, 'ctx')).toBe('EAAG-token');
  });

  test('a legacy v1 value (no key id, no context) with a truncated tag is refused too', () => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([cipher.update('legacy-token', 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    const v1 = (t: Buffer) => ['v1', iv.toString('base64'), t.toString('base64'), ct.toString('base64')].join(':');
    // old rows stay readable (legacy path) ...
    expect(box.decrypt(v1(tag), 'any context')).toBe('legacy-token');
    // ... but not with a 4-byte tag
    expect(() => box.decrypt(v1(tag.subarray(0, 4)), 'any context')).toThrow();
  });

  test('the context (associated data) binds a value: another context fails', () => {
    const stored = box.encrypt('secret', 'channel_accounts:a:access_token_enc');
    expect(() => box.decrypt(stored, 'channel_accounts:b:access_token_enc')).toThrow();
    expect(() => box.decrypt(stored, 'channel_accounts:a:app_secret_enc')).toThrow();
    expect(box.decrypt(stored, 'channel_accounts:a:access_token_enc')).toBe('secret');
  });

  test('keys rotate: the current key writes, previous keys still read, chosen by key id', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const before = createSecretBox(oldKey).encrypt('token-1', 'ctx');
    expect(parts(before).kid).toBe(keyIdOf(oldKey));

    const rotated = createSecretBox(newKey, [oldKey]);
    expect(rotated.decrypt(before, 'ctx')).toBe('token-1');
    expect(rotated.needsRewrap(before)).toBe(true);
    const after = rotated.encrypt('token-2', 'ctx');
    expect(parts(after).kid).toBe(keyIdOf(newKey));
    expect(rotated.needsRewrap(after)).toBe(false);
    // once the old key is dropped, what it wrote no longer opens (with a clear reason)
    expect(() => createSecretBox(newKey).decrypt(before, 'ctx')).toThrow(/key id/);
    // a key id never reveals the key
    expect(keyIdOf(newKey)).not.toContain(newKey.toString('hex').slice(0, 8));
  });

  test('PARLEY_ENCRYPTION_KEYS_OLD: a comma-separated list of 32-byte keys', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    expect(parseEncryptionKeys(`${a.toString('base64')}, ${b.toString('hex')}`)).toEqual([a, b]);
    expect(parseEncryptionKeys('')).toEqual([]);
    expect(() => parseEncryptionKeys('short')).toThrow(/32 bytes/);
  });
});

describe('channel secrets in the database', () => {
  let database: Database;
  let services: Services;
  const key = randomBytes(32);

  beforeAll(async () => {
    database = await openDatabase({ url: process.env.DATABASE_URL });
    await migrateDatabase(database);
    services = createServices(database.db, createSecretBox(key), { defaultCreditsPerReply: 1 });
  });
  afterAll(async () => {
    await database?.close();
  });

  async function channel(tenantId: string, agentId: string, accessToken: string, appSecret: string) {
    const phoneNumberId = String(10_000_000 + Math.floor(Math.random() * 89_999_999)) + String(Date.now()).slice(-6);
    return services.channels.create(tenantId, { platform: 'whatsapp', phoneNumberId, accessToken, appSecret, verifyToken: `verify-${phoneNumberId}`, agentId });
  }

  test('a ciphertext copied to another row or column does not decrypt', async () => {
    const t = await services.tenants.create({ name: 'secrets' });
    const [agent] = await database.db.insert(agents).values({ tenantId: t.id, name: 'a', systemPrompt: 'p', model: 'gpt-4o-mini' }).returning();
    const a = await channel(t.id, agent!.id, 'EAAG-token-of-a', 'app-secret-of-a');
    const b = await channel(t.id, agent!.id, 'EAAG-token-of-b', 'app-secret-of-b');
    const [rowA] = await database.db.select().from(channelAccounts).where(eq(channelAccounts.id, a.id));
    expect(rowA!.accessTokenEnc).toMatch(/^v2:/);
    expect((await services.channels.sendCredentials(a.id))?.accessToken).toBe('EAAG-token-of-a');

    // row A's token copied into row B: B's sends must not go out with A's token
    await database.db.update(channelAccounts).set({ accessTokenEnc: rowA!.accessTokenEnc }).where(eq(channelAccounts.id, b.id));
    await expect(services.channels.sendCredentials(b.id)).rejects.toThrow();
    // row A's access token copied into its own app secret column
    await database.db.update(channelAccounts).set({ appSecretEnc: rowA!.accessTokenEnc }).where(eq(channelAccounts.id, a.id));
    await expect(services.channels.routingByPhoneNumberId('whatsapp', a.phoneNumberId)).rejects.toThrow();
  });

  test('rewrap: every value moves to the current key and format; legacy v1 values migrate', async () => {
    const t = await services.tenants.create({ name: 'rotation' });
    const [agent] = await database.db.insert(agents).values({ tenantId: t.id, name: 'a', systemPrompt: 'p', model: 'gpt-4o-mini' }).returning();
    const c = await channel(t.id, agent!.id, 'EAAG-rotating-token', 'rotating-app-secret');
    // a value written by the old code: v1, no key id, no associated data
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([cipher.update('rotating-app-secret', 'utf8'), cipher.final()]);
    const legacy = ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
    await database.db.update(channelAccounts).set({ appSecretEnc: legacy }).where(eq(channelAccounts.id, c.id));

    const newKey = randomBytes(32);
    const rotatedBox = createSecretBox(newKey, [key]);
    const rotated = createServices(database.db, rotatedBox, { defaultCreditsPerReply: 1 });
    expect((await rotated.channels.sendCredentials(c.id))?.accessToken).toBe('EAAG-rotating-token');

    const result = await rewrapChannelSecrets(database.db, rotatedBox);
    expect(result.rewrapped).toBeGreaterThanOrEqual(1); // rows
    const [row] = await database.db.select().from(channelAccounts).where(eq(channelAccounts.id, c.id));
    for (const v of [row!.accessTokenEnc, row!.appSecretEnc!]) {
      expect(parts(v).version).toBe('v2');
      expect(parts(v).kid).toBe(keyIdOf(newKey));
    }
    expect(rotatedBox.decrypt(row!.appSecretEnc!, channelSecretContext(c.id, 'app_secret'))).toBe('rotating-app-secret');
    // the old key can go now
    const onlyNew = createServices(database.db, createSecretBox(newKey), { defaultCreditsPerReply: 1 });
    expect((await onlyNew.channels.sendCredentials(c.id))?.accessToken).toBe('EAAG-rotating-token');
    expect((await onlyNew.channels.routingByPhoneNumberId('whatsapp', c.phoneNumberId))?.appSecret).toBe('rotating-app-secret');
    // a second run has nothing left to do
    expect((await rewrapChannelSecrets(database.db, rotatedBox)).rewrapped).toBe(0);
  });
});
