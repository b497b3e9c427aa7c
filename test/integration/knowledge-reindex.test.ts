/**
 * Re-indexing a knowledge base (POST /v1/knowledge-bases/:kbId/reindex) on the dev server:
 * repeated while earlier runs are still in flight it starts nothing twice (`all: true` included),
 * and a start that fails partway leaves the other documents started, reports the failures, and the
 * next re-index starts the documents left pending.
 */
import { connectTemporalClient } from '../../temporal/connect';
import { knowledgeDocumentWorkflowId } from '../../workflows/knowledge';
import { ADMIN_TOKEN, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(180_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ OPENAI_EMBEDDING_DIMENSIONS: '256' });
});
afterAll(async () => {
  await stack?.stop();
});
afterEach(() => stack.llm.setDelay(0));

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
type Doc = { id: string; status: string; embeddingModel: string | null };
type Reindex = { started: number; alreadyRunning: number; failed: number; failedDocumentIds: string[]; queued: number; embeddingModel: string };

/** A tenant with a knowledge base of `n` one-chunk text documents, all ready. */
async function knowledgeBase(n: number): Promise<{ key: string; kbId: string; docIds: string[] }> {
  const t = await stack.api.post('/v1/tenants').set(auth(ADMIN_TOKEN)).send({ name: 'Reindex Co' }).expect(201);
  const key = t.body.apiKey as string;
  const kbId = (await stack.api.post('/v1/knowledge-bases').set(auth(key)).send({ name: 'Help centre' }).expect(201)).body.id as string;
  const docIds: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).send({ title: `Doc ${i}`, text: `Fact number ${i}: the ${['red', 'blue', 'green', 'amber', 'violet'][i % 5]} kettle boils in ${i + 2} minutes.` }).expect(202);
    docIds.push(d.body.id as string);
  }
  await waitForStatus(key, kbId, docIds, 'ready');
  return { key, kbId, docIds };
}

async function documents(key: string, kbId: string): Promise<Doc[]> {
  return (await stack.api.get(`/v1/knowledge-bases/${kbId}/documents?limit=100`).set(auth(key)).expect(200)).body.items as Doc[];
}

async function waitForStatus(key: string, kbId: string, ids: string[], status: string): Promise<void> {
  await waitFor(async () => (await documents(key, kbId)).filter((d) => ids.includes(d.id)).every((d) => d.status === status), { timeoutMs: 90_000, what: `documents ${status}` });
}

const reindex = async (key: string, kbId: string, body: { all?: boolean } = {}): Promise<Reindex> => (await stack.api.post(`/v1/knowledge-bases/${kbId}/reindex`).set(auth(key)).send(body).expect(202)).body as Reindex;

describe('re-index', () => {
  test('repeated while the runs are in flight, `all: true` included, it starts nothing twice', async () => {
    const { key, kbId, docIds } = await knowledgeBase(3);
    // every embeddings request takes 4 s: the runs stay in flight while we call again
    stack.llm.setDelay(4_000);
    const embeddingsBefore = stack.llm.embeddingRequests.length;
    const first = await reindex(key, kbId, { all: true });
    expect(first).toEqual({ started: 3, alreadyRunning: 0, failed: 0, failedDocumentIds: [], queued: 3, embeddingModel: 'text-embedding-3-small@256' });
    const again = await reindex(key, kbId, { all: true });
    expect(again).toMatchObject({ started: 0, alreadyRunning: 3, failed: 0, failedDocumentIds: [], queued: 0 });
    const plain = await reindex(key, kbId);
    expect(plain).toMatchObject({ started: 0, alreadyRunning: 3, failed: 0 });
    // the runs of generation 1 exist, none of generation 2
    for (const id of docIds) {
      expect(await stack.temporal.knowledgeDocumentRun(id, 1)).toBe('running');
      expect(await stack.temporal.knowledgeDocumentRun(id, 2)).toBe('none');
    }
    stack.llm.setDelay(0);
    await waitForStatus(key, kbId, docIds, 'ready');
    // one embeddings request per document (one chunk each): nothing was embedded twice
    expect(stack.llm.embeddingRequests.length - embeddingsBefore).toBe(3);
    // done: `all: true` indexes every document again (generation 2), without it nothing is left to do
    expect(await reindex(key, kbId)).toMatchObject({ started: 0, alreadyRunning: 0, failed: 0 });
    expect(await reindex(key, kbId, { all: true })).toMatchObject({ started: 3, alreadyRunning: 0, failed: 0 });
    for (const id of docIds) expect(await stack.temporal.knowledgeDocumentRun(id, 2)).not.toBe('none');
    await waitForStatus(key, kbId, docIds, 'ready');
  });

  test('concurrent `all: true` requests start each document once between them', async () => {
    const { key, kbId, docIds } = await knowledgeBase(4);
    stack.llm.setDelay(3_000);
    const results = await Promise.all([reindex(key, kbId, { all: true }), reindex(key, kbId, { all: true }), reindex(key, kbId, { all: true })]);
    expect(results.reduce((n, r) => n + r.started, 0)).toBe(4);
    for (const r of results) expect(r.started + r.alreadyRunning).toBe(4);
    for (const id of docIds) expect(await stack.temporal.knowledgeDocumentRun(id, 2)).toBe('none');
    stack.llm.setDelay(0);
    await waitForStatus(key, kbId, docIds, 'ready');
  });

  test('a start that fails partway: the others are started, the failures reported, and the next re-index starts the ones left pending', async () => {
    const { key, kbId, docIds } = await knowledgeBase(4);
    const broken = new Set([docIds[1]!, docIds[2]!]);
    const original = stack.temporal.startKnowledgeDocument;
    stack.temporal.startKnowledgeDocument = async (input, sourceKind) => {
      if (broken.has(input.documentId)) throw new Error('Temporal unavailable (test)');
      return original(input, sourceKind);
    };
    stack.llm.setDelay(3_000);
    let first: Reindex;
    try {
      first = await reindex(key, kbId, { all: true });
    } finally {
      stack.temporal.startKnowledgeDocument = original;
    }
    expect(first.started).toBe(2);
    expect(first.failed).toBe(2);
    expect([...first.failedDocumentIds].sort()).toEqual([...broken].sort());
    // the failed ones: pending under generation 1, no workflow
    const docs = await documents(key, kbId);
    for (const id of broken) {
      expect(docs.find((d) => d.id === id)!.status).toBe('pending');
      expect(await stack.temporal.knowledgeDocumentRun(id, 1)).toBe('none');
    }
    for (const id of docIds.filter((i) => !broken.has(i))) expect(await stack.temporal.knowledgeDocumentRun(id, 1)).not.toBe('none');

    // the next plain re-index starts exactly the ones left pending, under the same generation
    const next = await reindex(key, kbId);
    expect(next).toMatchObject({ started: 2, alreadyRunning: 2, failed: 0, failedDocumentIds: [] });
    for (const id of broken) {
      expect(await stack.temporal.knowledgeDocumentRun(id, 1)).not.toBe('none');
      expect(await stack.temporal.knowledgeDocumentRun(id, 2)).toBe('none');
    }
    stack.llm.setDelay(0);
    await waitForStatus(key, kbId, docIds, 'ready');
    const { client, connection } = await connectTemporalClient(stack.config.temporal, { payloadCodec: stack.core.payloadCodec });
    try {
      for (const id of docIds) expect(await client.workflow.getHandle(knowledgeDocumentWorkflowId(id, 1)).result()).toEqual({ status: 'ready', chunkCount: 1 });
    } finally {
      await connection.close();
    }
  });
});
