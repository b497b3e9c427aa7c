import { KNOWLEDGE_MAX_CHARS, KNOWLEDGE_MAX_CHUNKS, KNOWLEDGE_QUERY_MAX_CHARS, isRelevant, knowledgeContext, knowledgeQuery } from '../../activities/llm/knowledge-context';
import type { KnowledgeHit } from '../../services/knowledge';

function hit(i: number, over: Partial<KnowledgeHit> = {}): KnowledgeHit {
  return {
    chunkId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    documentId: `10000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    documentTitle: `Doc ${i}`,
    knowledgeBaseId: '20000000-0000-4000-8000-000000000000',
    ordinal: 0,
    text: `Passage ${i}.`,
    score: 1 / (60 + i),
    scores: { fullText: 1, vector: 0.5, fused: 1 / (60 + i) },
    ranks: { fullText: i, vector: i },
    ...over,
  };
}

const transcript = [
  { direction: 'inbound', body: 'Hello' },
  { direction: 'outbound', body: 'Hi! How can I help?' },
  { direction: 'inbound', body: 'Can I return boots?' },
  { direction: 'inbound', body: 'Bought last week.' },
];

describe('knowledgeQuery', () => {
  test("the lead's messages after the last outbound one, oldest first", () => {
    expect(knowledgeQuery(transcript)).toBe('Can I return boots?\nBought last week.');
  });
  test('nothing when the transcript ends with our message (a bump-up, a sequence step)', () => {
    expect(knowledgeQuery([...transcript, { direction: 'outbound', body: 'Anything else?' }])).toBe('');
    expect(knowledgeQuery([])).toBe('');
  });
  test('bounded: the most recent characters are kept', () => {
    const q = knowledgeQuery([{ direction: 'inbound', body: 'a'.repeat(5000) }, { direction: 'inbound', body: 'the question' }]);
    expect(q.length).toBe(KNOWLEDGE_QUERY_MAX_CHARS);
    expect(q.endsWith('\nthe question')).toBe(true);
  });
});

describe('isRelevant', () => {
  test('a full-text match, or a vector score at the threshold', () => {
    expect(isRelevant({ scores: { fullText: 0.1, vector: null, fused: 0 } })).toBe(true);
    expect(isRelevant({ scores: { fullText: null, vector: 0.35, fused: 0 } })).toBe(true);
    expect(isRelevant({ scores: { fullText: null, vector: 0.2, fused: 0 } })).toBe(false);
    expect(isRelevant({ scores: { fullText: null, vector: null, fused: 0 } })).toBe(false);
  });
});

describe('knowledgeContext', () => {
  const agent = { knowledgeBaseIds: ['20000000-0000-4000-8000-000000000000'] };
  const calls: unknown[] = [];
  const knowledge = (hits: KnowledgeHit[]) => ({
    searchKnowledge: async (input: unknown) => {
      calls.push(input);
      return hits;
    },
  });
  beforeEach(() => (calls.length = 0));

  test('no knowledge bases, or nothing new to answer: no search at all', async () => {
    expect(await knowledgeContext({ knowledge: knowledge([hit(1)]) }, { tenantId: 't', agent: { knowledgeBaseIds: [] }, transcript })).toEqual({ used: [] });
    expect(await knowledgeContext({ knowledge: knowledge([hit(1)]) }, { tenantId: 't', agent, transcript: [{ direction: 'outbound', body: 'x' }] })).toEqual({ used: [] });
    expect(calls).toHaveLength(0);
  });

  test('the top relevant passages, numbered with their titles, at most KNOWLEDGE_MAX_CHUNKS', async () => {
    const hits = [hit(1), hit(2, { scores: { fullText: null, vector: 0.1, fused: 0.01 } }), hit(3), hit(4), hit(5), hit(6)];
    const out = await knowledgeContext({ knowledge: knowledge(hits) }, { tenantId: 't', agent, transcript });
    expect(calls).toEqual([{ tenantId: 't', kbIds: agent.knowledgeBaseIds, query: 'Can I return boots?\nBought last week.', limit: KNOWLEDGE_MAX_CHUNKS * 2 }]);
    expect(out.used.map((u) => u.title)).toEqual(['Doc 1', 'Doc 3', 'Doc 4', 'Doc 5']);
    expect(out.used[0]).toEqual({ chunkId: hits[0]!.chunkId, documentId: hits[0]!.documentId, title: 'Doc 1', score: hits[0]!.score });
    expect(out.prompt).toContain('[1] Doc 1\nPassage 1.');
    expect(out.prompt).toContain('[4] Doc 5\nPassage 5.');
    expect(out.prompt).not.toContain('Doc 2');
  });

  test('bounded total characters: the passage that overflows is cut, later ones left out', async () => {
    const long = 'x'.repeat(KNOWLEDGE_MAX_CHARS - 100);
    const out = await knowledgeContext({ knowledge: knowledge([hit(1, { text: long }), hit(2, { text: 'y'.repeat(500) }), hit(3)]) }, { tenantId: 't', agent, transcript });
    expect(out.used).toHaveLength(2);
    expect(out.prompt).toContain(`${'y'.repeat(100)}…`);
    expect(out.prompt).not.toContain('y'.repeat(101));
    expect(out.prompt).not.toContain('Passage 3');
  });

  test('nothing relevant: the fallback the agent chose (say_unknown by default)', async () => {
    const irrelevant = [hit(1, { scores: { fullText: null, vector: 0.1, fused: 0.01 } })];
    const deps = { knowledge: knowledge(irrelevant) };
    const unknown = await knowledgeContext(deps, { tenantId: 't', agent, transcript });
    expect(unknown.used).toEqual([]);
    expect(unknown.prompt).toMatch(/say plainly that you do not know/);
    expect(unknown.prompt).not.toMatch(/person/);
    const human = await knowledgeContext(deps, { tenantId: 't', agent: { ...agent, knowledgeFallback: 'offer_human' }, transcript });
    expect(human.prompt).toMatch(/offer to have a person from the team follow up/);
    expect(await knowledgeContext(deps, { tenantId: 't', agent: { ...agent, knowledgeFallback: 'answer_anyway' }, transcript })).toEqual({ used: [] });
  });
});
