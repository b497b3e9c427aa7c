/**
 * The fake Graph API's media upload (`POST /{phone-number-id}/media`, multipart): Meta's `{ id }`
 * answer, its refusals (no messaging_product, no file, an unsupported type, too big, a bad
 * token), the uploaded bytes behind the id, and an id Meta has dropped.
 */
import { createHash } from 'node:crypto';
import { startFakeGraphApi, type FakeGraphApi } from '../../fakes/graph-api';

const PHONE = '106540352242922';
let graph: FakeGraphApi;
beforeEach(async () => {
  graph = await startFakeGraphApi();
});
afterEach(async () => {
  await graph.close();
});

async function uploadForm(parts: { product?: string; type?: string; file?: Buffer; fileType?: string }, token = 'EAAtest') {
  const form = new FormData();
  if (parts.product !== undefined) form.append('messaging_product', parts.product);
  if (parts.type !== undefined) form.append('type', parts.type);
  if (parts.file) form.append('file', new Blob([new Uint8Array(parts.file)], { type: parts.fileType ?? parts.type ?? 'application/octet-stream' }), 'photo.jpg');
  const res = await fetch(`${graph.url}/v21.0/${PHONE}/media`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  return { status: res.status, json: (await res.json()) as { id?: string; error?: { code: number; message: string } } };
}

test('an upload answers { id }; the id then serves the same bytes through the media lookup', async () => {
  const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]);
  const r = await uploadForm({ product: 'whatsapp', type: 'image/jpeg', file: bytes });
  expect(r).toEqual({ status: 200, json: { id: expect.stringMatching(/^\d{16,}$/) } });
  expect(graph.uploadRequests[0]).toMatchObject({
    phoneNumberId: PHONE,
    authorization: 'Bearer EAAtest',
    body: { messaging_product: 'whatsapp', type: 'image/jpeg', filename: 'photo.jpg', size: 8, sha256: createHash('sha256').update(bytes).digest('hex') },
  });
  const info = (await (await fetch(`${graph.url}/v21.0/${r.json.id}`, { headers: { authorization: 'Bearer EAAtest' } })).json()) as { url: string; mime_type: string; file_size: number };
  expect(info).toMatchObject({ mime_type: 'image/jpeg', file_size: 8 });
  const data = Buffer.from(await (await fetch(info.url, { headers: { authorization: 'Bearer EAAtest' } })).arrayBuffer());
  expect(data.equals(bytes)).toBe(true);

  expect(graph.hasUploadedMedia(r.json.id!)).toBe(true);
  graph.expireMedia(r.json.id!);
  expect(graph.hasUploadedMedia(r.json.id!)).toBe(false);
  const gone = await fetch(`${graph.url}/v21.0/${r.json.id}`, { headers: { authorization: 'Bearer EAAtest' } });
  expect(gone.status).toBe(400);
  expect(((await gone.json()) as { error: { code: number } }).error.code).toBe(100);
});

test("Meta's refusals: messaging_product, file, type, size, token, an injected error", async () => {
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);
  expect(await uploadForm({ type: 'image/jpeg', file: jpeg })).toMatchObject({ status: 400, json: { error: { code: 100, message: expect.stringContaining('messaging_product') } } });
  expect(await uploadForm({ product: 'whatsapp', type: 'image/jpeg' })).toMatchObject({ status: 400, json: { error: { code: 100, message: expect.stringContaining('file') } } });
  expect(await uploadForm({ product: 'whatsapp', type: 'image/gif', file: jpeg })).toMatchObject({ status: 400, json: { error: { code: 100, message: expect.stringContaining("'image/gif'") } } });
  expect(await uploadForm({ product: 'whatsapp', type: 'image/png', file: Buffer.alloc(5 * 1024 * 1024 + 1) })).toMatchObject({ status: 400, json: { error: { code: 131053 } } });
  graph.setValidTokens(['EAAgood']);
  expect(await uploadForm({ product: 'whatsapp', type: 'image/jpeg', file: jpeg })).toMatchObject({ status: 401, json: { error: { code: 190 } } });
  graph.setValidTokens(null);
  graph.failNext({ kind: 'upload', code: 131000, httpStatus: 500 });
  expect(await uploadForm({ product: 'whatsapp', type: 'image/jpeg', file: jpeg })).toMatchObject({ status: 500, json: { error: { code: 131000 } } });
  // an upload rule never hits a message send, and is used up
  expect(await uploadForm({ product: 'whatsapp', type: 'image/jpeg', file: jpeg })).toMatchObject({ status: 200 });
  expect(graph.uploadRequests).toHaveLength(7);
});
