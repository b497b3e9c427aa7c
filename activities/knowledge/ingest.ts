/**
 * The activities of `knowledgeDocumentWorkflow` (workflows/knowledge.ts). The document's bytes and
 * text never cross Temporal: each activity reads and writes the database (services/knowledge.ts)
 * and returns counts. Each takes the run's `generation`: a run superseded by a re-index, or whose
 * document was deleted, finds nothing and stops (`gone`).
 */
import { ApplicationFailure } from '@temporalio/common';
import OpenAI from 'openai';
import { FailureType } from '../../contract/failures';
import type { Logger } from '../../lib/logger';
import type { Embedder } from '../../services/embeddings';
import type { KnowledgeService } from '../../services/knowledge';
import type { ResolveHost } from '../media/url-guard';
import { chunkText, type ChunkOptions } from './chunk';
import { fetchDocumentUrl } from './fetch-url';
import { DEFAULT_PARSE_LIMITS, DocumentRejected, knowledgeMimeType, ParseLimitExceeded, parseDocumentWithHeadings, type ParseLimits } from './parse';

export interface KnowledgeDocumentRef {
  documentId: string;
  generation: number;
}

export interface KnowledgeActivityDeps {
  knowledge: KnowledgeService;
  /** Absent: the worker has no embeddings endpoint configured (a non-retryable llm_config failure). */
  embedder?: Embedder;
  log: Logger;
  /** KNOWLEDGE_MAX_FILE_BYTES */
  maxBytes: number;
  /** KNOWLEDGE_FETCH_TIMEOUT_MS */
  fetchTimeoutMs: number;
  /** Outside production: http and loopback urls (a local server). */
  allowLocalUrls: boolean;
  resolveHost?: ResolveHost;
  chunking?: ChunkOptions;
  /** The most chunks one document may have (default MAX_DOCUMENT_CHUNKS): more is refused, not embedded. */
  maxChunks?: number;
  /**
   * PDF and HTML parsing bounds (KNOWLEDGE_PARSE_MEMORY_MB, KNOWLEDGE_PARSE_TIMEOUT_MS,
   * KNOWLEDGE_PDF_MAX_PAGES, KNOWLEDGE_PARSE_CONCURRENCY; default DEFAULT_PARSE_LIMITS). The text
   * limit is the chunk limit's.
   */
  parseLimits?: Partial<Omit<ParseLimits, 'maxChars'>>;
}

/**
 * The most chunks one document is cut into. Each chunk is one embedding input (cost) and one row:
 * without a bound a 10 MB text file (~12,000 chunks) or a small PDF whose compressed streams
 * inflate to far more text would be embedded whole. 2,000 chunks is ~1.6 M characters, more than
 * the 1,000,000-character JSON text document.
 */
export const MAX_DOCUMENT_CHUNKS = 2_000;
/** Parsed text longer than this many characters per allowed chunk is refused before chunking (a chunk holds at most its maxChars, 1,200 by default; twice that for whitespace chunking drops). */
const TEXT_CHARS_PER_CHUNK = 2 * 1_200;

/** API keys as providers echo them in errors (OpenAI: `Incorrect API key provided: sk-proj-****abcd`), and bearer tokens, removed. */
export function redactKeys(message: string): string {
  return message.replace(/\b(sk|pk|rk)-[A-Za-z0-9_*.-]{4,}/g, '[redacted key]').replace(/\b(Bearer)\s+[A-Za-z0-9_*.~+/=-]{8,}/gi, '$1 [redacted]');
}

function rejected(err: DocumentRejected): ApplicationFailure {
  const type = err instanceof ParseLimitExceeded ? FailureType.KnowledgeParseLimit : FailureType.KnowledgeDocumentRejected;
  return ApplicationFailure.create({ type, message: err.message, nonRetryable: true });
}

export function createKnowledgeActivities(deps: KnowledgeActivityDeps) {
  const log = deps.log.child({ module: 'knowledge.ingest' });
  const embedder = () => {
    if (!deps.embedder) throw ApplicationFailure.create({ type: FailureType.LlmConfig, message: 'no embeddings endpoint is configured on this worker', nonRetryable: true });
    return deps.embedder;
  };
  return {
    /** Fetch (url documents), parse and chunk; the chunks are stored without embeddings. */
    async prepareKnowledgeDocument(input: KnowledgeDocumentRef): Promise<{ gone: true } | { gone: false; chunkCount: number; batchSize: number }> {
      const doc = await deps.knowledge.documentForIndexing(input.documentId, input.generation);
      if (!doc) return { gone: true };
      await deps.knowledge.setDocumentState(doc.id, input.generation, { status: 'indexing', error: null });
      try {
        let content = doc.content ?? undefined;
        let mimeType = knowledgeMimeType(doc.mimeType ?? undefined);
        if (doc.sourceKind === 'url') {
          const fetched = await fetchDocumentUrl(doc.sourceUrl ?? '', { allowLocal: deps.allowLocalUrls, maxBytes: deps.maxBytes, timeoutMs: deps.fetchTimeoutMs, resolveHost: deps.resolveHost });
          content = fetched.content;
          mimeType = fetched.mimeType;
          await deps.knowledge.storeFetched(doc.id, input.generation, fetched);
        }
        if (!content) throw new DocumentRejected('the document has no content');
        if (!mimeType) throw new DocumentRejected(`unsupported type ${doc.mimeType ?? '(none)'}`);
        const maxChunks = deps.maxChunks ?? MAX_DOCUMENT_CHUNKS;
        const maxChars = maxChunks * Math.max(TEXT_CHARS_PER_CHUNK, 2 * (deps.chunking?.maxChars ?? 0));
        const { text, headings } = await parseDocumentWithHeadings(content, mimeType, { ...DEFAULT_PARSE_LIMITS, ...deps.parseLimits, maxChars });
        const tooLong = () => new DocumentRejected(`the document's text is too long: over ${maxChunks} chunks (split it into smaller documents)`);
        if (text.length > maxChars) throw tooLong();
        const chunks = chunkText(text, { ...deps.chunking, headings });
        if (chunks.length === 0) throw new DocumentRejected('the document has no text to index');
        if (chunks.length > maxChunks) throw tooLong();
        await deps.knowledge.replaceChunks(doc, chunks);
        await deps.knowledge.setDocumentState(doc.id, input.generation, { status: 'indexing', chunkCount: chunks.length });
        log.info({ documentId: doc.id, knowledgeBaseId: doc.knowledgeBaseId, chunks: chunks.length, chars: text.length, mimeType }, 'knowledge document chunked');
        return { gone: false, chunkCount: chunks.length, batchSize: deps.embedder?.batchSize ?? 64 };
      } catch (err) {
        if (err instanceof DocumentRejected) throw rejected(err);
        throw err;
      }
    },

    /** Embed the chunks with ordinals in [from, to) (one batch, one request); chunks already embedded with this model are skipped (a retry). */
    async embedKnowledgeChunks(input: KnowledgeDocumentRef & { from: number; to: number }): Promise<{ gone: boolean; embedded: number }> {
      const e = embedder();
      const doc = await deps.knowledge.documentForIndexing(input.documentId, input.generation);
      if (!doc) return { gone: true, embedded: 0 };
      const chunks = (await deps.knowledge.chunksInRange(doc.id, input.from, input.to)).filter((c) => c.embeddingModel !== e.key);
      if (chunks.length === 0) return { gone: false, embedded: 0 };
      let vectors: number[][];
      try {
        vectors = await e.embed(chunks.map((c) => c.text));
      } catch (err) {
        const config = err instanceof OpenAI.APIError && [400, 401, 403, 404, 422].includes(err.status ?? 0);
        // the message becomes the document's `error`, which the tenant reads: no part of the platform's key
        const message = redactKeys(err instanceof OpenAI.APIError ? `embeddings endpoint: ${err.status ?? 'no status'} ${err.message}` : `embeddings endpoint: ${(err as Error).message}`);
        throw ApplicationFailure.create({ type: config ? FailureType.LlmConfig : FailureType.LlmTransient, message, nonRetryable: config });
      }
      const wrong = vectors.find((v) => v.length !== e.dimensions);
      if (wrong) {
        throw ApplicationFailure.create({
          type: FailureType.LlmConfig,
          message: `the embeddings model ${e.model} answered ${wrong.length} dimensions; OPENAI_EMBEDDING_DIMENSIONS is ${e.dimensions}`,
          nonRetryable: true,
        });
      }
      await deps.knowledge.storeEmbeddings(
        chunks.map((c, i) => ({ id: c.id, embedding: vectors[i]! })),
        e.key,
      );
      return { gone: false, embedded: chunks.length };
    },

    /** The run's outcome on the document: ready (with the embedding model) or failed (with the error). */
    async finishKnowledgeDocument(input: KnowledgeDocumentRef & { status: 'ready' | 'failed'; error?: string }): Promise<{ updated: boolean }> {
      const updated = await deps.knowledge.setDocumentState(
        input.documentId,
        input.generation,
        input.status === 'ready' ? { status: 'ready', error: null, embeddingModel: embedder().key } : { status: 'failed', error: input.error ?? 'indexing failed' },
      );
      if (input.status === 'failed') log.info({ documentId: input.documentId, error: input.error }, 'knowledge document failed');
      return { updated };
    },
  };
}
