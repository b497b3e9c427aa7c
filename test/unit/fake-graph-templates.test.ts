/**
 * The fake Graph API's message templates: Meta's paging shape, the token/owner checks, and the
 * control endpoints that change a template and emit (and deliver, signed) its webhook.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeGraphApi, type FakeGraphApi } from '../../fakes/graph-api';
import { verifyMetaSignature } from '../../lib/crypto';

const WABA = '102290129340398';
const TOKEN = 'EAAtesttoken';
const template = (name: string) => ({ name, language: 'en_US', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: `Hi {{1}} from ${name}` }] });

let graph: FakeGraphApi;
beforeEach(async () => {
  graph = await startFakeGraphApi();
});
afterEach(async () => {
  await graph.close();
});

async function list(query: string, token = TOKEN) {
  const res = await fetch(`${graph.url}/v21.0/${WABA}/message_templates${query}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, json: (await res.json()) as { data?: { name: string; id: string }[]; paging?: { cursors: { after: string }; next?: string }; error?: { code: number } } };
}

test('pages by cursor like Meta: paging.next only while more remain', async () => {
  graph.setTemplates(WABA, ['a', 'b', 'c', 'd', 'e'].map(template));
  const names: string[] = [];
  let query = '?limit=2';
  let pages = 0;
  for (;;) {
    const { status, json } = await list(query);
    expect(status).toBe(200);
    pages += 1;
    names.push(...json.data!.map((t) => t.name));
    if (!json.paging?.next) break;
    expect(json.paging.next).toContain('https://graph.facebook.com/');
    query = `?limit=2&after=${json.paging.cursors.after}`;
  }
  expect(pages).toBe(3);
  expect(names).toEqual(['a', 'b', 'c', 'd', 'e']);
  expect(graph.templates(WABA).every((t) => /^\d+$/.test(t.id))).toBe(true);
  expect(graph.templateRequests).toHaveLength(3);
});

test('an unknown account, an account the token does not own, and a bad token are Graph errors', async () => {
  expect((await list('')).json.error?.code).toBe(100);
  graph.setTemplates(WABA, [template('a')]);
  graph.setAccountOwner(WABA, ['someone-else']);
  expect(await list('')).toMatchObject({ status: 400, json: { error: { code: 100 } } });
  graph.setAccountOwner(WABA, null);
  graph.setValidTokens(['other']);
  expect(await list('')).toMatchObject({ status: 401, json: { error: { code: 190 } } });
});

test('control endpoints: set templates, change one, and deliver its webhook signed', async () => {
  const put = await fetch(`${graph.url}/__fake/templates/${WABA}`, { method: 'PUT', body: JSON.stringify({ templates: [template('promo')], maxPageSize: 1 }) });
  expect(put.status).toBe(200);
  const received: { body: string; signature?: string }[] = [];
  const sink = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ body, signature: req.headers['x-hub-signature-256'] as string | undefined });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  try {
    const deliverTo = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/webhooks/whatsapp`;
    const ev = await fetch(`${graph.url}/__fake/templates/${WABA}/events`, {
      method: 'POST',
      body: JSON.stringify({ name: 'promo', language: 'en_US', event: 'PAUSED', reason: 'Low quality', deliverTo, appSecret: 'secret-123' }),
    });
    const json = (await ev.json()) as { webhook: { entry: { id: string; changes: { field: string; value: Record<string, unknown> }[] }[] }; delivered: number };
    expect(json.delivered).toBe(200);
    expect(json.webhook.entry[0]).toMatchObject({ id: WABA, changes: [{ field: 'message_template_status_update', value: { event: 'PAUSED', message_template_name: 'promo', reason: 'Low quality' } }] });
    expect(graph.templates(WABA)[0]!.status).toBe('PAUSED');
    expect(received).toHaveLength(1);
    expect(verifyMetaSignature(Buffer.from(received[0]!.body), received[0]!.signature, 'secret-123')).toBe(true);
    const bad = await fetch(`${graph.url}/__fake/templates/${WABA}/events`, { method: 'POST', body: JSON.stringify({ name: 'nope', language: 'en_US', event: 'PAUSED' }) });
    expect(bad.status).toBe(400);
    const quality = await fetch(`${graph.url}/__fake/templates/${WABA}/events`, { method: 'POST', body: JSON.stringify({ name: 'promo', language: 'en_US', quality: 'RED' }) });
    expect(((await quality.json()) as { webhook: { entry: { changes: { value: unknown }[] }[] } }).webhook.entry[0]!.changes[0]!.value).toMatchObject({ previous_quality_score: 'UNKNOWN', new_quality_score: 'RED' });
  } finally {
    await new Promise((r) => sink.close(r));
  }
});
