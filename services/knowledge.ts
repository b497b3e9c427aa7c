/**
 * Knowledge bases (issue 11): a tenant's knowledge bases, their documents and chunks, and
 * retrieval (`search`: full text, vector and their fusion).
 *
 * Ingestion itself is `knowledgeDocumentWorkflow` (workflows/knowledge.ts) over the activities in
 * activities/knowledge/ingest.ts; this service holds what they read and write.
 *
 * - The same content (sha256) uploaded again to the same knowledge base is the existing document
 *   (no new row, no new workflow). A url document is named by its url (`url:` + url).
 * - Retrieval only compares embeddings made by the current model and dimensions
 *   (`embeddingKey`); a document indexed with another model is found by full text only until
 *   `reindex` (POST /v1/knowledge-bases/:kbId/reindex) embeds it again.
 */
import { createHash } from 'node:crypto';
import { and, asc, eq, getTableColumns, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { kbChunks, kbDocuments, knowledgeBases } from '../db/schema';
import type { VectorMode } from '../db/vector';
import { AppError } from '../lib/errors';
import { afterCursor, isUuid, keyset, rowsOf, toIso, withoutNul } from './db-util';
import type { Embedder } from './embeddings';
import { normalizedScoreFusion, reciprocalRankFusion } from './rank-fusion';

export const KB_DOCUMENT_STATUSES = ['pending', 'indexing', 'ready', 'failed'] as const;
export type KbDocumentStatus = (typeof KB_DOCUMENT_STATUSES)[number];
export const KB_SOURCE_KINDS = ['text', 'url', 'file'] as const;
export type KbSourceKind = (typeof KB_SOURCE_KINDS)[number];
/** Full-text configurations retrieval can use: `english` (stemming, stop words; the stored, indexed column) or `simple`. */
export type TextSearchConfig = 'english' | 'simple';

type KbRow = typeof knowledgeBases.$inferSelect;
type DocRow = typeof kbDocuments.$inferSelect;

function presentKb(row: KbRow & { documentCount?: number }) {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    documentCount: Number(row.documentCount ?? 0),
    createdAt: toIso(row.createdAt)!,
    updatedAt: toIso(row.updatedAt)!,
  };
}
export type KnowledgeBaseView = ReturnType<typeof presentKb>;

function presentDoc(row: Omit<DocRow, 'content'>) {
  return {
    id: row.id,
    knowledgeBaseId: row.knowledgeBaseId,
    title: row.title,
    sourceKind: row.sourceKind as KbSourceKind,
    sourceUrl: row.sourceUrl,
    mimeType: row.mimeType,
    sizeBytes: row.sizeBytes,
    contentHash: row.contentHash,
    status: row.status as KbDocumentStatus,
    error: row.error,
    chunkCount: row.chunkCount,
    embeddingModel: row.embeddingModel,
    indexedAt: toIso(row.indexedAt),
    createdAt: toIso(row.createdAt)!,
    updatedAt: toIso(row.updatedAt)!,
  };
}
export type KbDocumentView = ReturnType<typeof presentDoc>;

/** Every column but the content (lists and status reads never load the bytes). */
const docColumns = (() => {
  const { content: _content, ...rest } = getTableColumns(kbDocuments);
  return rest;
})();

export function contentHashOf(input: { sourceKind: KbSourceKind; content?: Buffer; url?: string }): string {
  const h = createHash('sha256');
  if (input.sourceKind === 'url') h.update(`url:${input.url ?? ''}`);
  else h.update(input.content ?? Buffer.alloc(0));
  return h.digest('hex');
}

/**
 * The vector list's default weight in the fused score (full text weighs 1). Measured with the
 * offline stand-in embeddings (eval/knowledge, tune half): 0.3 and 0.5 rank alike and both beat
 * equal weights; a real embedding model may deserve more (KNOWLEDGE_VECTOR_WEIGHT).
 */
export const DEFAULT_VECTOR_WEIGHT = 0.3;

/**
 * Bounds on what one tenant stores and has embedded: without them a manager key (or a leaked one)
 * could add documents without end, each one parsed, chunked (at most MAX_DOCUMENT_CHUNKS) and
 * embedded at the platform's cost. Over the limit → 409 `knowledge_quota_exceeded`.
 */
export const KNOWLEDGE_LIMITS = { documentsPerTenant: 1_000 };

/** What a retrieved chunk carries: its text, its document and how each ranking placed it. */
export interface KnowledgeHit {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  knowledgeBaseId: string;
  ordinal: number;
  text: string;
  /** The fused score (the order of `items`): see `search`. */
  score: number;
  scores: { fullText: number | null; vector: number | null; fused: number };
  ranks: { fullText: number | null; vector: number | null };
}

export interface KnowledgeSearchResult {
  items: KnowledgeHit[];
  vectorMode: VectorMode;
  /** False when the query could not be embedded (the embeddings endpoint failed): full text only. */
  vectorUsed: boolean;
}

export interface KnowledgeServiceOptions {
  /** Chosen at start-up (db/vector.ts); `array` when unknown. */
  vectorMode?: VectorMode;
  /** The embedder for queries (and the model key documents are compared with). */
  embedder?: Embedder;
  /** The array path ranks at most this many chunks per query (KNOWLEDGE_VECTOR_SCAN_LIMIT). */
  vectorScanLimit?: number;
  /** The vector list's weight in the fused score against full text's 1 (KNOWLEDGE_VECTOR_WEIGHT, default 0.3). */
  vectorWeight?: number;
}

/**
 * The query with each number glued to a unit also written apart (`5ghz` → `5ghz 5 ghz`, `10kwh`
 * → `10kwh 10 kwh`): customers type `5ghz` where a document writes `5 GHz`, and PostgreSQL's
 * parser keeps `5ghz` one word. Both forms are searched (a document may glue them too).
 */
export function withUnitsApart(query: string): string {
  const apart = query.replace(/(\p{N})(?=\p{L})/gu, '$1 ');
  return apart === query ? query : `${query} ${apart}`;
}

const vectorLiteral = (v: number[]) => `[${v.map((x) => (Number.isFinite(x) ? x : 0)).join(',')}]`;
const arrayLiteral = (v: number[]) => `{${v.map((x) => (Number.isFinite(x) ? x : 0)).join(',')}}`;
const uuidList = (ids: string[]) => sql.join(ids.map((id) => sql`${id}::uuid`), sql`, `);

export function createKnowledgeService(db: Db, opts: KnowledgeServiceOptions = {}) {
  const vectorMode: VectorMode = opts.vectorMode ?? 'array';
  const scanLimit = opts.vectorScanLimit ?? 20_000;
  const vectorWeight = opts.vectorWeight ?? DEFAULT_VECTOR_WEIGHT;

  async function kbRow(tenantId: string, kbId: string): Promise<KbRow> {
    if (!isUuid(kbId)) throw new AppError('not_found', 'knowledge base not found');
    const [row] = await db.select().from(knowledgeBases).where(and(eq(knowledgeBases.tenantId, tenantId), eq(knowledgeBases.id, kbId)));
    if (!row) throw new AppError('not_found', 'knowledge base not found');
    return row;
  }

  async function docRow(tenantId: string, kbId: string, docId: string) {
    await kbRow(tenantId, kbId);
    if (!isUuid(docId)) throw new AppError('not_found', 'document not found');
    const [row] = await db
      .select(docColumns)
      .from(kbDocuments)
      .where(and(eq(kbDocuments.tenantId, tenantId), eq(kbDocuments.knowledgeBaseId, kbId), eq(kbDocuments.id, docId)));
    if (!row) throw new AppError('not_found', 'document not found');
    return row;
  }

  const documentCount = sql<number>`(select count(*)::int from kb_documents d where d.knowledge_base_id = "knowledge_bases"."id")`;

  /**
   * Full-text ranking: the chunks holding any of the query's lexemes (OR: a question rarely holds
   * every word of its answer), ranked by BM25 (k1 1.2, b 0.75) computed in SQL: each lexeme weighs
   * its inverse document frequency over the knowledge bases' chunks (PostgreSQL's ts_rank has no
   * IDF, so common words would outweigh the rare ones that identify the answer); the document
   * length is the chunk's lexeme count against the candidates' average.
   */
  async function fullTextRanking(tenantId: string, kbIds: string[], query: string, n: number, config: TextSearchConfig): Promise<{ id: string; score: number }[]> {
    const scope = sql`c.tenant_id = ${tenantId} and c.knowledge_base_id in (${uuidList(kbIds)})`;
    // english: the stored, GIN-indexed column; simple (measured by the evaluation): computed once per query
    const chunks =
      config === 'english'
        ? sql`select c.id, c.tsv as v from kb_chunks c where ${scope}`
        : sql`select c.id, to_tsvector('simple'::regconfig, c.text) as v from kb_chunks c where ${scope}`;
    const rows = await db.execute(sql`
      with terms as (
        select distinct l as lexeme from unnest(tsvector_to_array(to_tsvector(${config}::regconfig, ${withUnitsApart(query)}))) l
      ),
      q as (
        select to_tsquery('simple'::regconfig, coalesce((select string_agg(quote_literal(lexeme), ' | ') from terms), '')) as tsq
      ),
      chunks as ${config === 'english' ? sql`not materialized` : sql`materialized`} (${chunks}),
      total as (select count(*)::float8 as n from chunks),
      df as (
        select t.lexeme, (select count(*) from chunks where chunks.v @@ to_tsquery('simple'::regconfig, quote_literal(t.lexeme)))::float8 as n from terms t
      ),
      idf as (select df.lexeme, ln(1 + (total.n - df.n + 0.5) / (df.n + 0.5)) as w from df, total where df.n > 0),
      cand as (select chunks.id, chunks.v from chunks, q where chunks.v @@ q.tsq),
      avglen as (select greatest(avg(length(v)), 1)::float8 as a from cand)
      select cand.id, sum(idf.w * (coalesce(array_length(u.positions, 1), 1) * 2.2) / (coalesce(array_length(u.positions, 1), 1) + 1.2 * (0.25 + 0.75 * length(cand.v) / avglen.a))) as score
      from cand cross join avglen cross join lateral unnest(cand.v) as u(lexeme, positions, weights) join idf on idf.lexeme = u.lexeme
      group by cand.id
      order by score desc, cand.id
      limit ${n}`);
    return rowsOf<{ id: string; score: number | string }>(rows).map((r) => ({ id: r.id, score: Number(r.score) }));
  }

  /** Vector ranking by cosine similarity (vectors are L2-normalized): pgvector's `<=>`, or the dot product in SQL. */
  async function vectorRanking(tenantId: string, kbIds: string[], embedding: number[], key: string, n: number): Promise<{ id: string; score: number }[]> {
    const dims = embedding.length;
    const where = sql`c.tenant_id = ${tenantId} and c.knowledge_base_id in (${uuidList(kbIds)}) and c.embedding_model = ${key} and c.embedding_dims = ${dims}`;
    if (vectorMode === 'pgvector') {
      const q = vectorLiteral(embedding);
      const distance = sql`(c.embedding::vector(${sql.raw(String(dims))})) <=> ${q}::vector(${sql.raw(String(dims))})`;
      return db.transaction(async (tx) => {
        // pgvector ≥ 0.8: an HNSW scan filtered by knowledge base goes on until it has enough rows
        await tx.execute(sql`select set_config('hnsw.iterative_scan', 'relaxed_order', true)`).catch(() => undefined);
        const rows = await tx.execute(sql`select c.id, 1 - (${distance}) as score from kb_chunks c where ${where} order by ${distance} limit ${n}`);
        return rowsOf<{ id: string; score: number | string }>(rows)
          .map((r) => ({ id: r.id, score: Number(r.score) }))
          .sort((a, b) => b.score - a.score);
      });
    }
    const rows = await db.execute(sql`
      select c.id, (select sum(a * b) from unnest(c.embedding, ${arrayLiteral(embedding)}::real[]) as t(a, b)) as score
      from (select c.id, c.embedding from kb_chunks c where ${where} limit ${scanLimit}) c
      order by score desc nulls last, c.id
      limit ${n}`);
    return rowsOf<{ id: string; score: number | string }>(rows).map((r) => ({ id: r.id, score: Number(r.score) }));
  }

  const service = {
    vectorMode,

    // ---------------------------------------------------------------- knowledge bases
    async createKnowledgeBase(tenantId: string, raw: { name: string; description?: string }) {
      const input = withoutNul(raw);
      const [row] = await db.insert(knowledgeBases).values({ tenantId, name: input.name, description: input.description ?? null }).returning();
      if (!row) throw new Error('knowledge base insert returned nothing');
      return presentKb(row);
    },
    async listKnowledgeBases(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select({ ...getTableColumns(knowledgeBases), documentCount })
        .from(knowledgeBases)
        .where(and(eq(knowledgeBases.tenantId, tenantId), afterCursor(knowledgeBases, opts.cursor, 'asc')))
        .orderBy(asc(knowledgeBases.createdAt), asc(knowledgeBases.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(presentKb), nextCursor };
    },
    async getKnowledgeBase(tenantId: string, kbId: string) {
      await kbRow(tenantId, kbId);
      const [row] = await db.select({ ...getTableColumns(knowledgeBases), documentCount }).from(knowledgeBases).where(eq(knowledgeBases.id, kbId));
      return presentKb(row!);
    },
    async updateKnowledgeBase(tenantId: string, kbId: string, raw: { name?: string; description?: string | null }) {
      const before = await service.getKnowledgeBase(tenantId, kbId);
      const patch = withoutNul(raw);
      await db
        .update(knowledgeBases)
        .set({ ...(patch.name !== undefined ? { name: patch.name } : {}), ...(patch.description !== undefined ? { description: patch.description } : {}), updatedAt: sql`now()` })
        .where(and(eq(knowledgeBases.tenantId, tenantId), eq(knowledgeBases.id, kbId)));
      return { before, after: await service.getKnowledgeBase(tenantId, kbId) };
    },
    /** Delete with its documents and chunks; agents that named it no longer do. */
    async deleteKnowledgeBase(tenantId: string, kbId: string) {
      const before = await service.getKnowledgeBase(tenantId, kbId);
      await db.transaction(async (tx) => {
        await tx.execute(sql`update agents set knowledge_base_ids = knowledge_base_ids - ${kbId}::text where tenant_id = ${tenantId} and knowledge_base_ids ? ${kbId}::text`);
        await tx.delete(knowledgeBases).where(and(eq(knowledgeBases.tenantId, tenantId), eq(knowledgeBases.id, kbId)));
      });
      return before;
    },
    /** Refuse ids that are not knowledge bases of this tenant (400 naming the first; another tenant's is not told apart from none). */
    async assertKnowledgeBases(tenantId: string, ids: string[]): Promise<void> {
      const unique = [...new Set(ids)];
      if (unique.length === 0) return;
      const bad = unique.find((id) => !isUuid(id));
      if (bad) throw new AppError('validation_failed', `knowledge base ${bad} not found`, [{ path: 'knowledgeBaseIds', message: `${bad} not found`, code: 'not_found' }]);
      const rows = await db
        .select({ id: knowledgeBases.id })
        .from(knowledgeBases)
        .where(and(eq(knowledgeBases.tenantId, tenantId), inArray(knowledgeBases.id, unique)));
      const found = new Set(rows.map((r) => r.id));
      const missing = unique.find((id) => !found.has(id));
      if (missing) throw new AppError('validation_failed', `knowledge base ${missing} not found`, [{ path: 'knowledgeBaseIds', message: `${missing} not found`, code: 'not_found' }]);
    },

    // ---------------------------------------------------------------- documents
    /**
     * Add a document (pending). `created: false`: the knowledge base already holds the same
     * content (or url): that document is answered and nothing new happens.
     */
    async createDocument(
      tenantId: string,
      kbId: string,
      raw: { title: string; sourceKind: KbSourceKind; sourceUrl?: string; mimeType?: string; content?: Buffer },
    ): Promise<{ document: KbDocumentView; created: boolean }> {
      await kbRow(tenantId, kbId);
      const title = withoutNul(raw.title);
      const contentHash = contentHashOf({ sourceKind: raw.sourceKind, content: raw.content, url: raw.sourceUrl });
      const existing = async (q: Pick<Db, 'select'>) => {
        const [row] = await q
          .select(docColumns)
          .from(kbDocuments)
          .where(and(eq(kbDocuments.knowledgeBaseId, kbId), eq(kbDocuments.contentHash, contentHash)));
        return row;
      };
      return db.transaction(async (tx) => {
        // one adder per tenant between the quota check and the insert
        await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`kb_documents:${tenantId}`}))`);
        const same = await existing(tx);
        if (same) return { document: presentDoc(same), created: false };
        const [usage] = await tx.select({ n: sql<number>`count(*)::int` }).from(kbDocuments).where(eq(kbDocuments.tenantId, tenantId));
        const n = Number(usage?.n ?? 0);
        if (n >= KNOWLEDGE_LIMITS.documentsPerTenant) {
          throw new AppError(
            'conflict',
            `the tenant's knowledge bases hold ${n} documents, the limit (${KNOWLEDGE_LIMITS.documentsPerTenant}): delete some first`,
            { documents: n, maxDocuments: KNOWLEDGE_LIMITS.documentsPerTenant },
            'knowledge_quota_exceeded',
          );
        }
        const [row] = await tx
          .insert(kbDocuments)
          .values({
            tenantId,
            knowledgeBaseId: kbId,
            title,
            sourceKind: raw.sourceKind,
            sourceUrl: raw.sourceUrl ?? null,
            mimeType: raw.mimeType ?? null,
            content: raw.content ?? null,
            sizeBytes: raw.content?.length ?? null,
            contentHash,
          })
          .onConflictDoNothing({ target: [kbDocuments.knowledgeBaseId, kbDocuments.contentHash] })
          .returning(docColumns);
        if (row) return { document: presentDoc(row), created: true };
        const again = await existing(tx);
        if (!again) throw new AppError('conflict', 'the document was deleted while it was added again; retry');
        return { document: presentDoc(again), created: false };
      });
    },
    async listDocuments(tenantId: string, kbId: string, opts: { limit: number; cursor?: string }) {
      await kbRow(tenantId, kbId);
      const rows = await db
        .select(docColumns)
        .from(kbDocuments)
        .where(and(eq(kbDocuments.tenantId, tenantId), eq(kbDocuments.knowledgeBaseId, kbId), afterCursor(kbDocuments, opts.cursor, 'asc')))
        .orderBy(asc(kbDocuments.createdAt), asc(kbDocuments.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(presentDoc), nextCursor };
    },
    async getDocument(tenantId: string, kbId: string, docId: string) {
      return presentDoc(await docRow(tenantId, kbId, docId));
    },
    /** Delete with its chunks (a run still indexing it finds it gone and stops). */
    async deleteDocument(tenantId: string, kbId: string, docId: string) {
      const row = await docRow(tenantId, kbId, docId);
      await db.delete(kbDocuments).where(eq(kbDocuments.id, row.id));
      return presentDoc(row);
    },
    /** Forget a document whose workflow could not be started (the upload answers 503 and may be repeated). */
    async discardDocument(docId: string): Promise<void> {
      await db.delete(kbDocuments).where(and(eq(kbDocuments.id, docId), eq(kbDocuments.status, 'pending')));
    },
    /**
     * Documents a re-index looks at: those not indexed with `embeddingKey`, the failed ones, and
     * those pending or indexing (whose workflow may be running, or may never have started: a start
     * that failed); with `all`, every document. Nothing is changed: the caller checks each one's
     * workflow and moves it on with `nextGeneration`.
     */
    async reindexCandidates(tenantId: string, kbId: string, opts: { embeddingKey: string; all: boolean }) {
      await kbRow(tenantId, kbId);
      return db
        .select({ id: kbDocuments.id, generation: kbDocuments.generation, status: kbDocuments.status, sourceKind: kbDocuments.sourceKind })
        .from(kbDocuments)
        .where(
          and(
            eq(kbDocuments.tenantId, tenantId),
            eq(kbDocuments.knowledgeBaseId, kbId),
            opts.all ? undefined : sql`(${kbDocuments.embeddingModel} is distinct from ${opts.embeddingKey} or ${kbDocuments.status} in ('failed', 'pending', 'indexing'))`,
          ),
        )
        .orderBy(asc(kbDocuments.createdAt), asc(kbDocuments.id));
    },
    /**
     * Move a document to its next generation (pending, no error), if it is still at `generation`:
     * the new generation, or undefined when another request moved it first (or it was deleted).
     * Two re-indexes racing for one document: one wins, the other starts nothing.
     */
    async nextGeneration(docId: string, generation: number): Promise<number | undefined> {
      const [row] = await db
        .update(kbDocuments)
        .set({ status: 'pending', error: null, generation: sql`${kbDocuments.generation} + 1`, updatedAt: sql`now()` })
        .where(and(eq(kbDocuments.id, docId), eq(kbDocuments.generation, generation)))
        .returning({ generation: kbDocuments.generation });
      return row?.generation;
    },

    // ---------------------------------------------------------------- ingestion (activities)
    /** The document as the indexing run `generation` sees it; undefined when deleted or superseded. */
    async documentForIndexing(docId: string, generation: number) {
      const [row] = await db.select().from(kbDocuments).where(eq(kbDocuments.id, docId));
      if (!row || row.generation !== generation) return undefined;
      return row;
    },
    /** A failed document keeps no chunks (nothing half-indexed is retrieved). False when deleted or superseded. */
    async setDocumentState(docId: string, generation: number, state: { status: KbDocumentStatus; error?: string | null; chunkCount?: number; embeddingModel?: string | null }): Promise<boolean> {
      if (state.status === 'failed') {
        return db.transaction(async (tx) => {
          const rows = await tx
            .update(kbDocuments)
            .set({ status: 'failed', error: withoutNul(state.error ?? 'indexing failed').slice(0, 1000), chunkCount: 0, embeddingModel: null, updatedAt: sql`now()` })
            .where(and(eq(kbDocuments.id, docId), eq(kbDocuments.generation, generation)))
            .returning({ id: kbDocuments.id });
          if (rows.length > 0) await tx.delete(kbChunks).where(eq(kbChunks.documentId, docId));
          return rows.length > 0;
        });
      }
      const rows = await db
        .update(kbDocuments)
        .set({
          status: state.status,
          ...(state.error !== undefined ? { error: state.error === null ? null : withoutNul(state.error).slice(0, 1000) } : {}),
          ...(state.chunkCount !== undefined ? { chunkCount: state.chunkCount } : {}),
          ...(state.embeddingModel !== undefined ? { embeddingModel: state.embeddingModel } : {}),
          ...(state.status === 'ready' ? { indexedAt: sql`now()` } : {}),
          updatedAt: sql`now()`,
        })
        .where(and(eq(kbDocuments.id, docId), eq(kbDocuments.generation, generation)))
        .returning({ id: kbDocuments.id });
      return rows.length > 0;
    },
    /** Keep a url document's fetched bytes and type (a re-index parses them again without a fetch only if the url is gone: it refetches). */
    async storeFetched(docId: string, generation: number, fetched: { content: Buffer; mimeType: string }) {
      await db
        .update(kbDocuments)
        .set({ content: fetched.content, mimeType: fetched.mimeType, sizeBytes: fetched.content.length, updatedAt: sql`now()` })
        .where(and(eq(kbDocuments.id, docId), eq(kbDocuments.generation, generation)));
    },
    /** Replace the document's chunks (no embeddings yet) in one transaction. */
    async replaceChunks(doc: { id: string; tenantId: string; knowledgeBaseId: string }, chunks: { ordinal: number; text: string }[]) {
      await db.transaction(async (tx) => {
        await tx.delete(kbChunks).where(eq(kbChunks.documentId, doc.id));
        for (let i = 0; i < chunks.length; i += 500) {
          await tx.insert(kbChunks).values(
            chunks.slice(i, i + 500).map((c) => ({ tenantId: doc.tenantId, knowledgeBaseId: doc.knowledgeBaseId, documentId: doc.id, ordinal: c.ordinal, text: withoutNul(c.text) })),
          );
        }
      });
    },
    /** The chunks with ordinals in [from, to) (one embedding batch). */
    async chunksInRange(docId: string, from: number, to: number) {
      return db
        .select({ id: kbChunks.id, ordinal: kbChunks.ordinal, text: kbChunks.text, embeddingModel: kbChunks.embeddingModel })
        .from(kbChunks)
        .where(and(eq(kbChunks.documentId, docId), sql`${kbChunks.ordinal} >= ${from} and ${kbChunks.ordinal} < ${to}`))
        .orderBy(asc(kbChunks.ordinal));
    },
    async storeEmbeddings(rows: { id: string; embedding: number[] }[], key: string) {
      if (rows.length === 0) return;
      await db.transaction(async (tx) => {
        for (const r of rows) {
          await tx.execute(sql`update kb_chunks set embedding = ${arrayLiteral(r.embedding)}::real[], embedding_model = ${key}, embedding_dims = ${r.embedding.length} where id = ${r.id}`);
        }
      });
    },

    // ---------------------------------------------------------------- retrieval
    /**
     * Hybrid retrieval over the tenant's knowledge bases `kbIds` (ids of other tenants match
     * nothing): full text and vector candidates (`candidates` each, default max(5 × limit, 30)),
     * fused by normalized score: each list's scores divided by its best one, vectors weighted
     * `vectorWeight` (0.3) against full text's 1, summed (services/rank-fusion.ts). Unlike reciprocal
     * rank fusion with equal weights (`fusion: 'rrf'`), a weak vector list cannot push a clear
     * full-text winner out of the first places. `embedding`: the query's, when the caller has it; `modes` restricts
     * the rankers (the evaluation measures each alone).
     */
    async search(input: {
      tenantId: string;
      kbIds: string[];
      query: string;
      limit: number;
      embedding?: number[];
      embeddingKey?: string;
      textConfig?: TextSearchConfig;
      candidates?: number;
      modes?: ('fullText' | 'vector')[];
      /** `score` (default): normalized scores, vectors weighted `vectorWeight`; `rrf`: reciprocal rank fusion, k = 60, equal weights (the evaluation compares them). */
      fusion?: 'score' | 'rrf';
    }): Promise<KnowledgeSearchResult> {
      const kbIds = [...new Set(input.kbIds)].filter(isUuid);
      const modes = input.modes ?? ['fullText', 'vector'];
      if (kbIds.length === 0 || input.query.trim() === '') return { items: [], vectorMode, vectorUsed: false };
      const n = input.candidates ?? Math.max(input.limit * 5, 30);
      let embedding = input.embedding;
      let key = input.embeddingKey;
      let vectorUsed = false;
      if (modes.includes('vector') && !embedding && opts.embedder) {
        try {
          [embedding] = await opts.embedder.embed([input.query]);
          key = opts.embedder.key;
        } catch {
          embedding = undefined; // the embeddings endpoint failed: full text still answers
        }
      }
      const [text, vector] = await Promise.all([
        modes.includes('fullText') ? fullTextRanking(input.tenantId, kbIds, input.query, n, input.textConfig ?? 'english') : Promise.resolve([]),
        modes.includes('vector') && embedding && key ? vectorRanking(input.tenantId, kbIds, embedding, key, n) : Promise.resolve([]),
      ]);
      vectorUsed = !!(modes.includes('vector') && embedding && key);
      const fusion = input.fusion ?? 'score';
      const fused = (fusion === 'rrf' ? reciprocalRankFusion([text.map((r) => r.id), vector.map((r) => r.id)]) : normalizedScoreFusion([text, vector], [1, vectorWeight])).slice(0, input.limit);
      if (fused.length === 0) return { items: [], vectorMode, vectorUsed };
      const textScore = new Map(text.map((r) => [r.id, r.score]));
      const vectorScore = new Map(vector.map((r) => [r.id, r.score]));
      const ids = fused.map((f) => f.id);
      const rows = await db
        .select({ id: kbChunks.id, documentId: kbChunks.documentId, knowledgeBaseId: kbChunks.knowledgeBaseId, ordinal: kbChunks.ordinal, text: kbChunks.text, documentTitle: kbDocuments.title })
        .from(kbChunks)
        .innerJoin(kbDocuments, eq(kbDocuments.id, kbChunks.documentId))
        .where(and(eq(kbChunks.tenantId, input.tenantId), inArray(kbChunks.id, ids)));
      const byId = new Map(rows.map((r) => [r.id, r]));
      const items: KnowledgeHit[] = [];
      for (const f of fused) {
        const r = byId.get(f.id);
        if (!r) continue; // deleted meanwhile
        items.push({
          chunkId: r.id,
          documentId: r.documentId,
          documentTitle: r.documentTitle,
          knowledgeBaseId: r.knowledgeBaseId,
          ordinal: r.ordinal,
          text: r.text,
          score: f.fused,
          scores: { fullText: textScore.get(f.id) ?? null, vector: vectorScore.get(f.id) ?? null, fused: f.fused },
          ranks: { fullText: f.ranks[0] ?? null, vector: f.ranks[1] ?? null },
        });
      }
      return { items, vectorMode, vectorUsed };
    },

    /**
     * What the reply turn calls (not wired yet): the passages of the agent's knowledge bases for
     * `query`, best first. Same as `search`, with the query embedded by the configured embedder.
     */
    async searchKnowledge(input: { tenantId: string; kbIds: string[]; query: string; limit: number }): Promise<KnowledgeHit[]> {
      return (await service.search(input)).items;
    },
  };
  return service;
}

export type KnowledgeService = ReturnType<typeof createKnowledgeService>;
