/**
 * Fuzzing the WhatsApp webhook: random mutations of valid bodies and random bytes, signed and
 * unsigned, get only 2xx/4xx answers; the server stays up; the valid items of a partly broken
 * batch are never lost.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { messages } from '../../db/schema';
import { signMetaBody } from '../../lib/crypto';
import { seededRandom } from '../support/random';
import { APP_SECRET, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const JUNK: unknown[] = [null, 0, -1, 1e308, '', 'x'.repeat(5000), true, [], {}, [null], { id: 1 }, '\u0000', '💥', '__proto__'];

/** One random structural mutation somewhere in a JSON value. */
function mutate(value: unknown, r: () => number): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || r() < 0.2) return r() < 0.5 ? JUNK[Math.floor(r() * JUNK.length)] : [...value, JUNK[Math.floor(r() * JUNK.length)]];
    const i = Math.floor(r() * value.length);
    const copy = value.slice();
    copy[i] = mutate(copy[i], r);
    return copy;
  }
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    if (keys.length === 0 || r() < 0.25) {
      const op = r();
      if (op < 0.4 && keys.length) delete copy[keys[Math.floor(r() * keys.length)]!];
      else if (op < 0.7) copy[`k${Math.floor(r() * 100)}`] = JUNK[Math.floor(r() * JUNK.length)];
      else return JUNK[Math.floor(r() * JUNK.length)];
      return copy;
    }
    const k = keys[Math.floor(r() * keys.length)]!;
    copy[k] = mutate(copy[k], r);
    return copy;
  }
  return JUNK[Math.floor(r() * JUNK.length)];
}

test('mutated bodies and random bytes, signed or not, only ever get 2xx/4xx', async () => {
  const fixtures = (JSON.parse(readFileSync(path.join(__dirname, '../fixtures/meta-webhooks.json'), 'utf8')) as { body: unknown }[]).map((f) => f.body);
  const r = seededRandom(42);
  const statuses = new Map<number, number>();
  for (let i = 0; i < 300; i++) {
    let raw: string | Buffer;
    if (i % 10 === 9) raw = randomBytes(1 + Math.floor(r() * 2000));
    else {
      let body = fixtures[Math.floor(r() * fixtures.length)];
      for (let m = 0; m < 1 + Math.floor(r() * 3); m++) body = mutate(body, r);
      raw = JSON.stringify(body) ?? 'null';
      if (r() < 0.1) raw = raw.slice(0, Math.floor(raw.length * r())); // truncated JSON
    }
    const req = stack.api.post('/webhooks/whatsapp').set('content-type', 'application/json');
    if (r() < 0.8) req.set('x-hub-signature-256', signMetaBody(raw, APP_SECRET));
    const res = await req.send(raw);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status >= 500) {
      // what the stack logged as the cause (pino level 50 = error)
      const errors = stack.logLines.filter((l) => l.includes('"level":50')).slice(-2);
      throw new Error(`5xx for input ${i}: ${res.status} ${JSON.stringify(res.body)} body=${raw.toString().slice(0, 300)}\nlogged: ${errors.join('\n')}`);
    }
  }
  expect([...statuses.keys()].every((s) => s >= 200 && s < 500)).toBe(true);
  expect(statuses.get(400)).toBeGreaterThan(0);
  expect(statuses.get(401)).toBeGreaterThan(0);
  // still up and healthy
  await stack.api.get('/healthz').expect(200);
});

test('a batch where some messages are broken keeps every valid one', async () => {
  const t = await createTenant(stack, { credits: 50 });
  const r = seededRandom(7);
  const valid: string[] = [];
  for (let round = 0; round < 5; round++) {
    const from = randomWaId();
    const body = textWebhook(t.phoneNumberId, from, `valid message ${round}`);
    const value = body.entry[0]!.changes[0]!.value as { messages: unknown[] };
    const good = value.messages[0] as { id: string };
    valid.push(good.id);
    // add broken siblings: a mutated copy with another id, and junk items
    const broken = mutate({ ...good, id: `${good.id}.broken` }, r) as Record<string, unknown>;
    value.messages = [JUNK[round % JUNK.length], broken, good, { id: 42 }].sort(() => r() - 0.5);
    const res = await postWebhook(stack, body);
    expect(res.status).toBe(200);
  }
  const stored = await waitFor(async () => {
    const rows = await stack.core.database.db
      .select({ id: messages.providerMessageId })
      .from(messages)
      .where(and(eq(messages.tenantId, t.tenantId), eq(messages.direction, 'inbound')));
    const ids = new Set(rows.map((x) => x.id));
    return valid.every((v) => ids.has(v)) ? ids : undefined;
  }, { what: 'every valid message recorded' });
  for (const v of valid) expect(stored.has(v)).toBe(true);
});
