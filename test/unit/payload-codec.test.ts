/**
 * The payload codec (temporal/payload-codec.ts) over the real key store (services/payload-keys.ts)
 * on an in-memory database: round trip, its metadata, unencrypted payloads passing through, a
 * payload under another key or tampered failing, a destroyed key failing, master key rotation.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { eq, inArray, sql } from 'drizzle-orm';
import { configSchema } from '../../config';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { payloadKeys } from '../../db/schema';
import { createSecretBox } from '../../lib/crypto';
import { createPayloadKeyService, platformKeyWorkflowId, PayloadKeyUnavailable, type PayloadKeyService } from '../../services/payload-keys';
import { createPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../temporal/payload-codec';

jest.setTimeout(60_000);

let database: Database;
const master = randomBytes(32);
let keys: PayloadKeyService;

beforeAll(async () => {
  database = await openDatabase({ pgliteDataDir: 'memory://' });
  await migrateDatabase(database);
  keys = createPayloadKeyService(database.db, createSecretBox(master));
});
afterAll(async () => {
  await database.close();
});

const meta = (p: Payload, k: string) => Buffer.from(p.metadata?.[k] ?? []).toString('utf8');
const leadId = () => `lead:${randomUUID()}:91${Math.floor(Math.random() * 1e10)}`;
const ctx = (workflowId: string) => ({ type: 'workflow' as const, namespace: 'default', workflowId });

test('a payload round-trips; the encoded one says binary/encrypted and its key id, and holds nothing in clear', async () => {
  const codec = createPayloadCodec(keys);
  const plain = defaultPayloadConverter.toPayload({ text: 'Call me at +91 98765 43210', name: 'Asha' });
  const wf = leadId();
  const [enc] = await codec.encode([plain], ctx(wf));
  expect(meta(enc!, 'encoding')).toBe(ENCRYPTED_ENCODING);
  const keyId = meta(enc!, KEY_ID_METADATA);
  expect(keyId).toBe((await keys.forWorkflow(wf)).id);
  expect(Object.keys(enc!.metadata!).sort()).toEqual(['encoding', KEY_ID_METADATA].sort());
  const bytes = Buffer.from(enc!.data!).toString('latin1');
  for (const secret of ['98765', 'Asha', 'json/plain']) expect(bytes).not.toContain(secret);
  const [dec] = await codec.decode([enc!]);
  expect(defaultPayloadConverter.fromPayload(dec!)).toEqual({ text: 'Call me at +91 98765 43210', name: 'Asha' });
  expect(meta(dec!, 'encoding')).toBe('json/plain');
  // encoding twice is encoding once
  expect(await codec.encode([enc!], ctx(wf))).toEqual([enc]);
});

test('a lead key row is named by a hash of its workflow id: no contact number stored, and any workflow id is storable', async () => {
  const contact = `9198765${String(Date.now()).slice(-5)}`;
  const wf = `lead:${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}:${contact}`;
  const odd = `lead:${'1'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}:\u0000\uFFFF\ud800x`;
  const [k, k2] = await Promise.all([keys.forWorkflow(wf), keys.forWorkflow(odd)]);
  expect(k.id).not.toBe(k2.id);
  const rows = await database.db.select({ id: payloadKeys.id, workflowId: payloadKeys.workflowId }).from(payloadKeys).where(inArray(payloadKeys.id, [k.id, k2.id]));
  expect(rows).toHaveLength(2);
  for (const r of rows) expect(r.workflowId).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(JSON.stringify(rows)).not.toContain(contact);
  // and destroy finds it by the same name
  expect(await keys.destroy([wf])).toBe(1);
});

test('one key per lead workflow; other workflows and calls without a context share the platform key', async () => {
  const a = leadId();
  const b = leadId();
  const [ka, kb, kc, kd, ka2] = await Promise.all([keys.forWorkflow(a), keys.forWorkflow(b), keys.forWorkflow('circuit:x:y'), keys.forWorkflow(undefined), keys.forWorkflow(a)]);
  expect(ka.id).not.toBe(kb.id);
  expect(ka2.id).toBe(ka.id);
  expect(kc.id).toBe(kd.id);
  const rows = await database.db.select().from(payloadKeys).where(eq(payloadKeys.workflowId, platformKeyWorkflowId(createSecretBox(master))));
  expect(rows).toHaveLength(1);
  expect(rows[0]!.tenantId).toBeNull();
  // a lead whose channel is unknown has its own key, without a tenant
  expect(ka.tenantId).toBeNull();
  expect(ka.id).not.toBe(kc.id);
  // the key is stored wrapped, never in clear
  const [row] = await database.db.select().from(payloadKeys).where(eq(payloadKeys.id, kc.id));
  expect(row!.wrappedKey).toMatch(/^v2:/);
  expect(row!.wrappedKey).not.toContain(kc.key.toString('base64'));
});

test('a lead key is created in one statement with its channel\'s tenant; processes racing on a new lead all get the one stored key', async () => {
  const tenantId = randomUUID();
  const channelId = randomUUID();
  await database.db.execute(sql`insert into tenants (id, name) values (${tenantId}, 'key race')`);
  await database.db.execute(
    sql`insert into channel_accounts (id, tenant_id, platform, phone_number_id, access_token_enc, verify_token_hash, deleted_at) values (${channelId}, ${tenantId}, 'whatsapp', ${`pk-${channelId}`}, 'x', 'x', now())`,
  );
  const wf = `lead:${channelId}:9190${Math.floor(Math.random() * 1e8)}`;
  // four processes (own caches, no shared in-flight map) create the same lead's key at once
  const services = Array.from({ length: 4 }, () => createPayloadKeyService(database.db, createSecretBox(master)));
  const got = await Promise.all(services.map((s) => s.forWorkflow(wf)));
  expect(new Set(got.map((k) => k.id)).size).toBe(1);
  expect(new Set(got.map((k) => k.key.toString('hex'))).size).toBe(1);
  expect(got[0]!.tenantId).toBe(tenantId);
  const rows = await database.db.select().from(payloadKeys).where(eq(payloadKeys.id, got[0]!.id));
  expect(rows).toHaveLength(1);
  expect(rows[0]!.tenantId).toBe(tenantId);
  // what one process encrypts, another decodes with the stored key
  const [enc] = await createPayloadCodec(services[0]!).encode([defaultPayloadConverter.toPayload('hi')], ctx(wf));
  const [dec] = await createPayloadCodec(createPayloadKeyService(database.db, createSecretBox(master))).decode([enc!]);
  expect(defaultPayloadConverter.fromPayload(dec!)).toBe('hi');
});

test('a process that first decodes a lead\'s payload (a worker) encrypts that lead\'s next payloads with the same key, without another query', async () => {
  const wf = leadId();
  const [enc] = await createPayloadCodec(keys).encode([defaultPayloadConverter.toPayload('first message')], ctx(wf));
  let queries = 0;
  const counted = new Proxy(database.db, {
    get(target, prop, receiver) {
      if (prop === 'select' || prop === 'execute' || prop === 'insert' || prop === 'update') queries += 1;
      return Reflect.get(target, prop, receiver);
    },
  });
  const worker = createPayloadKeyService(counted, createSecretBox(master));
  const codec = createPayloadCodec(worker);
  await codec.decode([enc!]);
  expect(queries).toBe(1);
  const [reply] = await codec.encode([defaultPayloadConverter.toPayload('the reply')], ctx(wf));
  expect(queries).toBe(1);
  expect(meta(reply!, KEY_ID_METADATA)).toBe(meta(enc!, KEY_ID_METADATA));
});

test('unencrypted payloads (recorded histories) pass through decode unchanged', async () => {
  const codec = createPayloadCodec(keys);
  const plain = defaultPayloadConverter.toPayload('hello');
  expect(await codec.decode([plain])).toEqual([plain]);
  expect(await codec.encode([])).toEqual([]);
});

test('a payload under the wrong key, tampered, or naming an unknown key does not decode', async () => {
  const codec = createPayloadCodec(keys);
  const [enc] = await codec.encode([defaultPayloadConverter.toPayload('secret')], ctx(leadId()));
  const other = await keys.forWorkflow(leadId());
  const swapped: Payload = { ...enc!, metadata: { ...enc!.metadata, [KEY_ID_METADATA]: Buffer.from(other.id) } };
  await expect(codec.decode([swapped])).rejects.toThrow(/unable to authenticate|auth/i);
  const data = Buffer.from(enc!.data!);
  data[20] = data[20]! ^ 1;
  await expect(codec.decode([{ ...enc!, data }])).rejects.toThrow(/unable to authenticate|auth/i);
  const unknown: Payload = { ...enc!, metadata: { ...enc!.metadata, [KEY_ID_METADATA]: Buffer.from(randomUUID()) } };
  await expect(codec.decode([unknown])).rejects.toThrow(PayloadKeyUnavailable);
  await expect(codec.decode([unknown])).rejects.toThrow(/unknown/);
  // another master key cannot unwrap the stored data keys
  const stranger = createPayloadCodec(createPayloadKeyService(database.db, createSecretBox(randomBytes(32))));
  await expect(stranger.decode([enc!])).rejects.toThrow(/no configured key/);
});

test('a destroyed key (crypto-shredded) fails with a clear error, here and in another process; the workflow id gets a new key', async () => {
  const codec = createPayloadCodec(keys);
  const wf = leadId();
  const [enc] = await codec.encode([defaultPayloadConverter.toPayload('to be forgotten')], ctx(wf));
  const before = await keys.forWorkflow(wf);
  // another process (the worker) that had the key cached: a fresh store stands for it after its cache expired
  const elsewhere = createPayloadCodec(createPayloadKeyService(database.db, createSecretBox(master)));
  expect(defaultPayloadConverter.fromPayload(await elsewhere.decode([enc!]).then((d) => d[0]!))).toBe('to be forgotten');
  expect(await keys.destroy([wf, platformKeyWorkflowId(createSecretBox(master))])).toBe(1);
  await expect(codec.decode([enc!])).rejects.toThrow(/destroyed/);
  await expect(createPayloadCodec(createPayloadKeyService(database.db, createSecretBox(master))).decode([enc!])).rejects.toThrow(/destroyed/);
  const [row] = await database.db.select().from(payloadKeys).where(eq(payloadKeys.id, before.id));
  expect(row!.wrappedKey).toBeNull();
  expect(row!.destroyedAt).not.toBeNull();
  const after = await keys.forWorkflow(wf);
  expect(after.id).not.toBe(before.id);
  expect(await keys.destroy([wf])).toBe(1);
});

test('after a master key rotation the data keys still unwrap (the old master in PARLEY_ENCRYPTION_KEYS_OLD)', async () => {
  const codec = createPayloadCodec(keys);
  const [enc] = await codec.encode([defaultPayloadConverter.toPayload('kept')], ctx(leadId()));
  const [platformEnc] = await codec.encode([defaultPayloadConverter.toPayload('platform')]);
  const rotatedKeys = createPayloadKeyService(database.db, createSecretBox(randomBytes(32), [master]));
  const rotated = createPayloadCodec(rotatedKeys);
  expect(defaultPayloadConverter.fromPayload((await rotated.decode([enc!]))[0]!)).toBe('kept');
  expect(defaultPayloadConverter.fromPayload((await rotated.decode([platformEnc!]))[0]!)).toBe('platform');
  // the new master key writes under a platform key of its own; a stranger's master (another stack on this database) too
  expect((await rotatedKeys.forWorkflow(undefined)).id).not.toBe((await keys.forWorkflow(undefined)).id);
  const stranger = createPayloadKeyService(database.db, createSecretBox(randomBytes(32)));
  const [fromStranger] = await createPayloadCodec(stranger).encode([defaultPayloadConverter.toPayload('other stack')]);
  expect(defaultPayloadConverter.fromPayload((await createPayloadCodec(stranger).decode([fromStranger!]))[0]!)).toBe('other stack');
});

describe('configuration', () => {
  const root = path.join(__dirname, '..', '..');
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const envExample = readFileSync(path.join(root, '.env.example'), 'utf8');

  test('PARLEY_PAYLOAD_CODEC and TEMPORAL_UI_ORIGINS are in the config schema, .env.example and the README table, in step', () => {
    for (const name of ['PARLEY_PAYLOAD_CODEC', 'TEMPORAL_UI_ORIGINS']) {
      expect(Object.keys(configSchema.shape)).toContain(name);
      expect(envExample).toMatch(new RegExp(`^${name}=`, 'm'));
      expect(readme).toMatch(new RegExp(`^\\| \`${name}\``, 'm'));
    }
    const defaults = configSchema.parse({});
    expect(defaults.PARLEY_PAYLOAD_CODEC).toBe(true);
    expect(envExample).toMatch(/^PARLEY_PAYLOAD_CODEC=true\b/m);
    expect(readme).toMatch(/^\| `PARLEY_PAYLOAD_CODEC` \| both \| `true` \|/m);
    expect(defaults.TEMPORAL_UI_ORIGINS).toEqual(['http://localhost:8233', 'http://127.0.0.1:8233']);
    expect(envExample).toContain(`TEMPORAL_UI_ORIGINS=${defaults.TEMPORAL_UI_ORIGINS.join(',')}`);
    expect(readme).toContain(`| \`TEMPORAL_UI_ORIGINS\` | api | \`${defaults.TEMPORAL_UI_ORIGINS.join(',')}\` |`);
    expect(configSchema.parse({ PARLEY_PAYLOAD_CODEC: 'false', TEMPORAL_UI_ORIGINS: ' https://ui.example.com , ' })).toMatchObject({ PARLEY_PAYLOAD_CODEC: false, TEMPORAL_UI_ORIGINS: ['https://ui.example.com'] });
  });
});
