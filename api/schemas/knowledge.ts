/** Response schemas of the knowledge-base routes (api/routes/knowledge-bases.ts): the wire form of services/knowledge.ts. */
import { z } from 'zod';
import { KB_DOCUMENT_STATUSES, KB_SOURCE_KINDS } from '../../services/knowledge';
import { timestamp, uuid } from './common';

export const knowledgeBaseSchema = z
  .strictObject({
    id: uuid,
    name: z.string(),
    description: z.string().nullable(),
    documentCount: z.number().int().min(0),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'KnowledgeBase', description: "A tenant's knowledge base: documents an agent retrieves passages from" });

export const kbDocumentSchema = z
  .strictObject({
    id: uuid,
    knowledgeBaseId: uuid,
    title: z.string(),
    sourceKind: z.enum(KB_SOURCE_KINDS),
    sourceUrl: z.string().nullable(),
    mimeType: z.string().nullable().meta({ description: 'text/plain, text/markdown, text/html or application/pdf (a url document: known once fetched)' }),
    sizeBytes: z.number().int().nullable(),
    contentHash: z.string().meta({ description: 'sha256 (hex) of the content (a url document: of `url:` + its url); the same hash in one knowledge base is the same document' }),
    status: z.enum(KB_DOCUMENT_STATUSES).meta({ description: 'pending → indexing → ready | failed' }),
    error: z.string().nullable().meta({ description: 'Why indexing failed (status failed)' }),
    chunkCount: z.number().int().min(0),
    embeddingModel: z.string().nullable().meta({ description: '`model@dimensions` of its chunks\' embeddings; another than the configured one: re-index' }),
    indexedAt: timestamp.nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'KnowledgeDocument', description: 'A document of a knowledge base and its indexing state' });

export const knowledgeHitSchema = z
  .strictObject({
    chunkId: uuid,
    documentId: uuid,
    documentTitle: z.string(),
    knowledgeBaseId: uuid,
    ordinal: z.number().int().min(0).meta({ description: "The chunk's position in its document (0 = first)" }),
    text: z.string(),
    score: z.number().meta({ description: 'The fused score (the score of each list divided by its best, vectors weighted KNOWLEDGE_VECTOR_WEIGHT, default 0.3, against 1 for full text, summed): the order of the items' }),
    scores: z.strictObject({
      fullText: z.number().nullable().meta({ description: 'ts_rank_cd of the full-text match; null: not among the full-text candidates' }),
      vector: z.number().nullable().meta({ description: 'Cosine similarity to the query; null: not among the vector candidates' }),
      fused: z.number(),
    }),
    ranks: z.strictObject({ fullText: z.number().int().nullable(), vector: z.number().int().nullable() }),
  })
  .meta({ id: 'KnowledgeHit', description: 'A retrieved passage, its document and how each ranking placed it' });

export const knowledgeSearchSchema = z
  .strictObject({
    items: z.array(knowledgeHitSchema),
    vectorMode: z.enum(['pgvector', 'array']).meta({ description: 'How vectors were ranked: pgvector, or cosine over real[] in SQL (a database without pgvector)' }),
    vectorUsed: z.boolean().meta({ description: 'false: the query could not be embedded (the embeddings endpoint failed); full text only' }),
  })
  .meta({ id: 'KnowledgeSearchResult' });

export const reindexSchema = z
  .strictObject({
    started: z.number().int().min(0).meta({ description: 'Documents whose indexing this request started (set back to pending under a new generation, or pending ones whose indexing had never started)' }),
    alreadyRunning: z.number().int().min(0).meta({ description: 'Documents whose indexing workflow was already running (an earlier upload or re-index): not started again' }),
    failed: z.number().int().min(0).meta({ description: 'Documents whose indexing could not be started (Temporal or the database failed for them): each is left as it was or `pending` without a workflow, and the next re-index (without `all`) starts the pending ones' }),
    failedDocumentIds: z.array(z.string()).meta({ description: 'The ids of the failed ones (at most 100)' }),
    queued: z.number().int().min(0).meta({ description: 'The same as `started` (kept for older clients)', deprecated: true }),
    embeddingModel: z.string().meta({ description: 'The configured `model@dimensions` they are indexed with' }),
  })
  .meta({ id: 'KnowledgeReindex' });
