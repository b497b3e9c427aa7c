/**
 * Where knowledge-base embeddings are ranked, chosen once at start-up (`prepareVectorSearch`) and logged:
 *
 * - `pgvector`: the database has the `vector` extension (PGlite always; PostgreSQL where the
 *   package is installed, e.g. the compose image). `create extension if not exists vector`, then an
 *   HNSW index over `embedding::vector(<dims>)` for the configured dimensions (a partial expression
 *   index: chunks of other sizes are not in it). Queries rank with `<=>` (cosine distance) and
 *   pgvector 0.8's iterative index scan, so a filter on the knowledge bases still fills the page.
 * - `array`: no pgvector (this machine's PostgreSQL 15). The same `real[]` column, ranked by the dot
 *   product of L2-normalized vectors (= cosine) computed in SQL over the knowledge bases' chunks,
 *   at most KNOWLEDGE_VECTOR_SCAN_LIMIT of them per query.
 *
 * The storage is the same on both paths (`kb_chunks.embedding real[]`), so a database moved
 * between them needs no re-index.
 */
import { sql } from 'drizzle-orm';
import type { Database } from './client';
import type { Logger } from '../lib/logger';

export type VectorMode = 'pgvector' | 'array';

/** Create the extension and the index where possible; answer which path retrieval takes. Never throws. */
export async function prepareVectorSearch(database: Pick<Database, 'db' | 'describe'>, opts: { dimensions: number; log: Logger }): Promise<VectorMode> {
  const log = opts.log.child({ module: 'knowledge.vector' });
  let mode: VectorMode = 'array';
  try {
    await database.db.execute(sql.raw('create extension if not exists vector'));
    mode = 'pgvector';
  } catch (err) {
    // an installed extension a less privileged role cannot create is still usable
    try {
      await database.db.execute(sql.raw(`select '[1]'::vector`));
      mode = 'pgvector';
    } catch {
      log.info({ database: database.describe, reason: causeOf(err) }, 'knowledge base: no pgvector in this database; vectors ranked by cosine in SQL over real[] (array path)');
      return 'array';
    }
  }
  const dims = Math.trunc(opts.dimensions);
  if (dims >= 1 && dims <= 2000) {
    try {
      await database.db.execute(
        sql.raw(`create index if not exists kb_chunks_embedding_hnsw_${dims} on kb_chunks using hnsw ((embedding::vector(${dims})) vector_cosine_ops) where embedding_dims = ${dims}`),
      );
    } catch (err) {
      // not migrated yet (a worker that starts before the migration), or a concurrent creation: exact ranking still works
      log.warn({ reason: causeOf(err) }, 'knowledge base: could not create the HNSW index; vectors ranked exactly');
    }
  }
  log.info({ database: database.describe, dimensions: dims }, 'knowledge base: pgvector available; vectors ranked by pgvector (cosine distance)');
  return mode;
}

/**
 * The database's own reason, not the driver's wrapper: drizzle's "Failed query: <sql> params: <values>"
 * must never reach the logs (test/integration/lifeline.test.ts), only the server's message.
 */
function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const reason = e.cause?.message ?? e.message ?? String(err);
  return `${e.cause?.code ? `${e.cause.code}: ` : ''}${reason.startsWith('Failed query') ? 'query refused' : reason}`.slice(0, 200);
}
