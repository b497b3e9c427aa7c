/**
 * Retrieval before the reply's LLM call (issue 11): the passages of the agent's knowledge bases
 * that match what the lead just wrote, as a system-prompt section with numbered sources, and
 * what the reply records about them. The reply writer (activities/llm/reply.ts) calls it for
 * both the reply turn and the step-by-step generateReply activity.
 *
 * Why before the call rather than a `search_knowledge` tool: one LLM round trip instead of two,
 * the same question always meets the same passages (testable, replay-friendly), and every answer
 * is grounded without relying on the model to decide to look.
 *
 * Why a `search_knowledge` tool as well (`toolSearch`, for agents that declare it): the automatic
 * query is the lead's own words, which miss when the question only makes sense with the
 * conversation ("and how much is the bigger one?"). The tool lets the model search with its own
 * query (the product and the detail asked about). Its passages are recorded on the reply like the
 * automatic ones.
 */
import type { KnowledgeFallback } from '../../contract/vocabulary';
import type { KnowledgeHit, KnowledgeService } from '../../services/knowledge';

/** Passages put into the prompt, at most. */
export const KNOWLEDGE_MAX_CHUNKS = 4;
/** Characters of passage text in the prompt, at most (the last passage is cut to fit). */
export const KNOWLEDGE_MAX_CHARS = 6_000;
/** Characters of the lead's latest messages used as the query, at most (the most recent kept). */
export const KNOWLEDGE_QUERY_MAX_CHARS = 1_000;
/**
 * A passage is relevant when it matched the query's words (full text) or its embedding's cosine
 * similarity with the query's reaches this. Fused (RRF) scores only order, they say nothing of
 * relevance; without a threshold every question would get the nearest vectors, however far.
 */
export const KNOWLEDGE_MIN_VECTOR_SCORE = 0.35;
/** Candidates asked of the search before the relevance filter. */
const CANDIDATES = KNOWLEDGE_MAX_CHUNKS * 2;

/** What the outbound message records of a passage it was written from (`details.knowledge`). */
export interface KnowledgeUsed {
  chunkId: string;
  documentId: string;
  title: string;
  /** The fused (reciprocal rank) score the passage was ranked by. */
  score: number;
}

export interface KnowledgeContext {
  /** The system-prompt section (passages, or the fallback instruction); absent: nothing to add. */
  prompt?: string;
  /** The passages the prompt carries (empty when none was relevant). */
  used: KnowledgeUsed[];
}

/**
 * The query: the lead's messages after the last outbound one (the batch being answered), oldest
 * first, bounded to the last KNOWLEDGE_QUERY_MAX_CHARS characters. Empty when the transcript ends
 * with an outbound message (a bump-up, a sequence step with no new question).
 */
export function knowledgeQuery(transcript: readonly { direction: string; body: string }[]): string {
  const tail: string[] = [];
  for (let i = transcript.length - 1; i >= 0; i--) {
    const m = transcript[i];
    if (!m || m.direction !== 'inbound') break;
    if (m.body.trim()) tail.unshift(m.body.trim());
  }
  const query = tail.join('\n');
  return query.length > KNOWLEDGE_QUERY_MAX_CHARS ? query.slice(query.length - KNOWLEDGE_QUERY_MAX_CHARS) : query;
}

export function isRelevant(hit: Pick<KnowledgeHit, 'scores'>, minVectorScore = KNOWLEDGE_MIN_VECTOR_SCORE): boolean {
  return hit.scores.fullText !== null || (hit.scores.vector !== null && hit.scores.vector >= minVectorScore);
}

const FALLBACK_INSTRUCTIONS: Record<Exclude<KnowledgeFallback, 'answer_anyway'>, string> = {
  say_unknown:
    "The business's knowledge base has nothing about the lead's latest question. Do not guess or make up facts (prices, stock, policies, dates): say plainly that you do not know, and keep helping with what you do know.",
  offer_human:
    "The business's knowledge base has nothing about the lead's latest question. Do not guess or make up facts (prices, stock, policies, dates): say plainly that you do not know, and offer to have a person from the team follow up.",
};

/** The prompt section for passages found, numbered [1]..[n] with their document's title. */
export function sourcesPrompt(hits: readonly Pick<KnowledgeHit, 'documentTitle' | 'text'>[]): string {
  const blocks = hits.map((h, i) => `[${i + 1}] ${h.documentTitle}\n${h.text}`);
  return [
    "Knowledge base passages for the lead's latest message (numbered sources, with their document's title):",
    ...blocks,
    'Answer from these passages. State nothing as fact that they do not support; if they do not answer the question, say you do not know rather than guess. Do not mention the passages or their numbers to the lead.',
  ].join('\n\n');
}

/**
 * Retrieve for one reply. No knowledge bases, or no new lead message to answer: nothing, and no
 * database work. Otherwise the top relevant passages (at most KNOWLEDGE_MAX_CHUNKS and
 * KNOWLEDGE_MAX_CHARS), or, when none is relevant, the agent's fallback instruction
 * (`answer_anyway`: nothing).
 */
export async function knowledgeContext(
  deps: { knowledge?: Pick<KnowledgeService, 'searchKnowledge'> },
  input: { tenantId: string; agent: { knowledgeBaseIds?: string[]; knowledgeFallback?: KnowledgeFallback }; transcript: readonly { direction: string; body: string }[] },
): Promise<KnowledgeContext> {
  const kbIds = input.agent.knowledgeBaseIds ?? [];
  if (kbIds.length === 0 || !deps.knowledge) return { used: [] };
  const query = knowledgeQuery(input.transcript);
  if (!query) return { used: [] };
  const chosen = await relevantPassages(deps.knowledge, { tenantId: input.tenantId, kbIds, query }, KNOWLEDGE_MAX_CHARS);
  if (chosen.length === 0) {
    const fallback = input.agent.knowledgeFallback ?? 'say_unknown';
    return fallback === 'answer_anyway' ? { used: [] } : { prompt: FALLBACK_INSTRUCTIONS[fallback], used: [] };
  }
  return {
    prompt: sourcesPrompt(chosen),
    used: chosen.map((h) => ({ chunkId: h.chunkId, documentId: h.documentId, title: h.documentTitle, score: h.score })),
  };
}

/** Characters of passage text one search_knowledge result carries, at most. */
export const KNOWLEDGE_TOOL_MAX_CHARS = 4_000;

/**
 * The search_knowledge tool: the agent's knowledge bases searched with the model's query, the top
 * relevant passages (at most KNOWLEDGE_MAX_CHUNKS and KNOWLEDGE_TOOL_MAX_CHARS) as the tool
 * result, numbered with their document's title, and what the reply records of them.
 */
export async function toolSearch(
  deps: { knowledge?: Pick<KnowledgeService, 'searchKnowledge'> },
  input: { tenantId: string; kbIds: readonly string[]; query: string },
): Promise<{ content: string; used: KnowledgeUsed[] }> {
  if (input.kbIds.length === 0 || !deps.knowledge) return { content: 'The knowledge base is not available. Answer without it.', used: [] };
  const chosen = await relevantPassages(deps.knowledge, { tenantId: input.tenantId, kbIds: [...input.kbIds], query: input.query }, KNOWLEDGE_TOOL_MAX_CHARS);
  if (chosen.length === 0) {
    return { content: 'No passage of the knowledge base matches this query. Do not guess: say you do not know if nothing else answers the lead.', used: [] };
  }
  return {
    content: [
      'Knowledge base passages (numbered, with their document\'s title). Answer from them; do not mention them or their numbers to the lead.',
      ...chosen.map((h, i) => `[${i + 1}] ${h.documentTitle}\n${h.text}`),
    ].join('\n\n'),
    used: chosen.map((h) => ({ chunkId: h.chunkId, documentId: h.documentId, title: h.documentTitle, score: h.score })),
  };
}

/** `a` then the passages of `b` it does not have (by chunk). */
export function mergeKnowledgeUsed(a: readonly KnowledgeUsed[], b: readonly KnowledgeUsed[]): KnowledgeUsed[] {
  const seen = new Set(a.map((k) => k.chunkId));
  const out = [...a];
  for (const k of b) {
    if (seen.has(k.chunkId)) continue;
    seen.add(k.chunkId);
    out.push(k);
  }
  return out;
}

/** The relevant hits of one search, best first: at most KNOWLEDGE_MAX_CHUNKS, their text cut to `maxChars` together. */
async function relevantPassages(knowledge: Pick<KnowledgeService, 'searchKnowledge'>, search: { tenantId: string; kbIds: string[]; query: string }, maxChars: number): Promise<KnowledgeHit[]> {
  const hits = (await knowledge.searchKnowledge({ ...search, limit: CANDIDATES })).filter((h) => isRelevant(h));
  const chosen: KnowledgeHit[] = [];
  let room = maxChars;
  for (const h of hits) {
    if (chosen.length >= KNOWLEDGE_MAX_CHUNKS || room <= 0) break;
    const text = h.text.length > room ? `${h.text.slice(0, room)}…` : h.text;
    chosen.push({ ...h, text });
    room -= text.length;
  }
  return chosen;
}
