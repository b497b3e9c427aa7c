/**
 * `npm run eval:knowledge`: retrieval quality of the knowledge base, offline.
 *
 * Loads `docs/*` (md, markdown, txt, html, htm, pdf) and `questions.json` — an array of
 * `{ id, question, document, passage }` (document: a file name in docs/; passage: a verbatim
 * substring of the document's text, for HTML of its text without tags) — from `--dir`
 * (default eval/knowledge), ingests the documents into a fresh in-memory PGlite with the same code
 * as the worker (parse, chunk, stand-in embeddings: fakes/embeddings.ts, no network), asks each
 * question and reports recall@k (default 3) and MRR (over the first 10 results) for full text
 * (english and simple configurations), vector (pgvector and the no-pgvector array path) and
 * hybrid (as `search` fuses them: normalized scores, vectors weighted 0.3; and, for comparison,
 * reciprocal rank fusion with equal weights), on the whole set and on its two halves in file order: the first
 * half ("tune", q01–q20: the only questions to look at while tuning retrieval) and the second
 * ("held out", q21–q40: a check that a change generalises). Results go to `--out` (default
 * <dir>/results.json). `--database-url postgres://…` ingests into that (scratch) PostgreSQL database
 * instead of PGlite: without pgvector there, the vector and hybrid rows are the `real[]` path.
 *
 * A hit: a retrieved chunk of the question's document whose text holds the passage, compared as
 * lowercase word tokens (letters and digits; markup and punctuation ignored): the longest run of
 * consecutive passage tokens found in the chunk covers at least 60 % of the passage's tokens
 * (`HIT_COVERAGE`; 100 % when the passage lies inside one chunk, less when it straddles a
 * boundary and the chunk holds most of it). A question whose passage is not in its document's
 * text (≥ 90 % coverage) is reported as invalid and left out of the scores.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { createKnowledgeActivities } from '../../activities/knowledge/ingest';
import { knowledgeMimeType, parseDocument } from '../../activities/knowledge/parse';
import { migrateDatabase, openDatabase } from '../../db/client';
import { prepareVectorSearch } from '../../db/vector';
import { standInEmbedding } from '../../fakes/embeddings';
import { createLogger } from '../../lib/logger';
import { rowsOf } from '../../services/db-util';
import { createEmbedder } from '../../services/embeddings';
import { createKnowledgeService, type KnowledgeHit, type TextSearchConfig } from '../../services/knowledge';

export const HIT_COVERAGE = 0.6;
const VALID_COVERAGE = 0.9;
const MRR_DEPTH = 10;

const questionsSchema = z.array(z.strictObject({ id: z.union([z.string(), z.number()]).transform(String), question: z.string().min(1), document: z.string().min(1), passage: z.string().min(1) }));

export function tokens(text: string): string[] {
  return text.toLowerCase().normalize('NFKC').match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The share of the passage's tokens covered by its longest run found contiguously in the text (0..1). */
export function passageCoverage(passage: string, text: string): number {
  const p = tokens(passage);
  const t = tokens(text);
  if (p.length === 0) return 0;
  // longest common substring over tokens (dynamic programming, one row)
  let best = 0;
  let prev = new Array<number>(p.length + 1).fill(0);
  for (let i = 1; i <= t.length; i++) {
    const cur = new Array<number>(p.length + 1).fill(0);
    for (let j = 1; j <= p.length; j++) {
      if (t[i - 1] === p[j - 1]) {
        cur[j] = prev[j - 1]! + 1;
        if (cur[j]! > best) best = cur[j]!;
      }
    }
    prev = cur;
  }
  return best / p.length;
}

export interface EvalOptions {
  dir: string;
  k?: number;
  dimensions?: number;
  out?: string;
  quiet?: boolean;
  /** A PostgreSQL database to ingest into instead of an in-memory PGlite (`--database-url`; use a scratch database: the run adds a tenant and leaves it). */
  databaseUrl?: string;
}

type Method = 'fullText' | 'fullTextSimple' | 'vector' | 'vectorArray' | 'hybrid' | 'hybridArray' | 'hybridRrf';
const METHODS: Record<Method, { modes: ('fullText' | 'vector')[]; textConfig: TextSearchConfig; array: boolean; label: string; fusion?: 'score' | 'rrf' }> = {
  fullText: { modes: ['fullText'], textConfig: 'english', array: false, label: 'full text (english)' },
  fullTextSimple: { modes: ['fullText'], textConfig: 'simple', array: false, label: 'full text (simple)' },
  vector: { modes: ['vector'], textConfig: 'english', array: false, label: 'vector (pgvector)' },
  vectorArray: { modes: ['vector'], textConfig: 'english', array: true, label: 'vector (real[], no pgvector)' },
  hybrid: { modes: ['fullText', 'vector'], textConfig: 'english', array: false, label: 'hybrid (pgvector)' },
  hybridArray: { modes: ['fullText', 'vector'], textConfig: 'english', array: true, label: 'hybrid (real[])' },
  // the fusion before the tuning, for comparison: reciprocal rank fusion (k = 60), equal weights
  hybridRrf: { modes: ['fullText', 'vector'], textConfig: 'english', array: false, label: 'hybrid, RRF k=60 (pgvector)', fusion: 'rrf' },
};

export interface MethodScore {
  label: string;
  recallAtK: number;
  mrr: number;
  hits: number;
}

export interface EvalReport {
  k: number;
  dimensions: number;
  documents: number;
  chunks: number;
  questions: number;
  invalidQuestions: { id: string; reason: string }[];
  methods: Record<Method, { label: string; recallAtK: number; mrr: number; hits: number }>;
  /**
   * The same scores on the two halves of the question list (in file order): `tune`, the first half
   * (q01–q20 of the shipped set, the only questions looked at while tuning retrieval), and
   * `heldOut`, the second half (q21–q40, never tuned on). `methods` is the whole set.
   */
  split: { tune: { ids: string[]; methods: Record<Method, MethodScore> }; heldOut: { ids: string[]; methods: Record<Method, MethodScore> } };
  perQuestion: { id: string; document: string; ranks: Record<Method, number | null> }[];
}

export async function runKnowledgeEval(opts: EvalOptions): Promise<EvalReport> {
  const k = opts.k ?? 3;
  const dimensions = opts.dimensions ?? 512;
  const docsDir = path.join(opts.dir, 'docs');
  if (!existsSync(docsDir) || !existsSync(path.join(opts.dir, 'questions.json'))) {
    throw new Error(`no evaluation set in ${opts.dir} (docs/ and questions.json); try --dir test/fixtures/knowledge (a tiny corpus of the tests)`);
  }
  const files = readdirSync(docsDir)
    .filter((f) => /\.(md|markdown|txt|text|html?|pdf)$/i.test(f))
    .sort();
  const questions = questionsSchema.parse(JSON.parse(readFileSync(path.join(opts.dir, 'questions.json'), 'utf8')));
  const log = createLogger({ level: 'warn', name: 'eval-knowledge' });
  const database = await openDatabase(opts.databaseUrl ? { url: opts.databaseUrl, max: 4 } : { pgliteDataDir: 'memory://' });
  try {
    await migrateDatabase(database);
    const mode = await prepareVectorSearch(database, { dimensions, log });
    const embedder = createEmbedder({ model: 'stand-in', dimensions, batchSize: 64 }, async (texts) => texts.map((t) => standInEmbedding(t, dimensions)));
    const service = createKnowledgeService(database.db, { vectorMode: mode, embedder });
    const arrayService = createKnowledgeService(database.db, { vectorMode: 'array', embedder });
    const [tenant] = rowsOf<{ id: string }>(await database.db.execute(sql`insert into tenants (name) values ('Knowledge evaluation') returning id`));
    const tenantId = tenant!.id;
    const kb = await service.createKnowledgeBase(tenantId, { name: 'Evaluation' });
    const activities = createKnowledgeActivities({ knowledge: service, embedder, log, maxBytes: 50 * 1024 * 1024, fetchTimeoutMs: 1000, allowLocalUrls: false });

    const docIds = new Map<string, string>();
    const docTexts = new Map<string, string>();
    let chunks = 0;
    for (const file of files) {
      const content = readFileSync(path.join(docsDir, file));
      const mimeType = knowledgeMimeType(undefined, file, content)!;
      docTexts.set(file, await parseDocument(content, mimeType));
      const { document } = await service.createDocument(tenantId, kb.id, { title: file, sourceKind: 'file', mimeType, content });
      docIds.set(file, document.id);
      const ref = { documentId: document.id, generation: 0 };
      const prepared = await activities.prepareKnowledgeDocument(ref);
      if (prepared.gone) continue;
      for (let from = 0; from < prepared.chunkCount; from += prepared.batchSize) await activities.embedKnowledgeChunks({ ...ref, from, to: from + prepared.batchSize });
      await activities.finishKnowledgeDocument({ ...ref, status: 'ready' });
      chunks += prepared.chunkCount;
    }

    const invalidQuestions: EvalReport['invalidQuestions'] = [];
    const valid = questions.filter((q) => {
      const text = docTexts.get(q.document);
      if (text === undefined) invalidQuestions.push({ id: q.id, reason: `no document ${q.document} in docs/` });
      else if (passageCoverage(q.passage, text) < VALID_COVERAGE) invalidQuestions.push({ id: q.id, reason: `the passage is not in ${q.document}'s text` });
      else return true;
      return false;
    });

    const perQuestion: EvalReport['perQuestion'] = [];
    for (const q of valid) {
      const ranks = {} as Record<Method, number | null>;
      const embedding = (await embedder.embed([q.question]))[0]!;
      for (const [method, m] of Object.entries(METHODS) as [Method, (typeof METHODS)[Method]][]) {
        const svc = m.array ? arrayService : service;
        const res = await svc.search({ tenantId, kbIds: [kb.id], query: q.question, limit: MRR_DEPTH, embedding, embeddingKey: embedder.key, textConfig: m.textConfig, modes: m.modes, fusion: m.fusion });
        const at = res.items.findIndex((h: KnowledgeHit) => h.documentId === docIds.get(q.document) && passageCoverage(q.passage, h.text) >= HIT_COVERAGE);
        ranks[method] = at >= 0 ? at + 1 : null;
      }
      perQuestion.push({ id: q.id, document: q.document, ranks });
    }
    const score = (subset: EvalReport['perQuestion']) => {
      const out = {} as Record<Method, MethodScore>;
      for (const [method, m] of Object.entries(METHODS) as [Method, (typeof METHODS)[Method]][]) {
        const rs = subset.map((p) => p.ranks[method]);
        const hits = rs.filter((r) => r !== null && r <= k).length;
        const n = Math.max(1, rs.length);
        out[method] = { label: m.label, recallAtK: round(hits / n), mrr: round(rs.reduce((s: number, r) => s + (r ? 1 / r : 0), 0) / n), hits };
      }
      return out;
    };
    // the halves of the question list as written (invalid questions keep their place, and are left out of both)
    const half = Math.ceil(questions.length / 2);
    const tuneIds = new Set(questions.slice(0, half).map((q) => q.id));
    const tuneRows = perQuestion.filter((p) => tuneIds.has(p.id));
    const heldOutRows = perQuestion.filter((p) => !tuneIds.has(p.id));
    const methods = score(perQuestion);
    const split: EvalReport['split'] = {
      tune: { ids: tuneRows.map((p) => p.id), methods: score(tuneRows) },
      heldOut: { ids: heldOutRows.map((p) => p.id), methods: score(heldOutRows) },
    };
    const report: EvalReport = { k, dimensions, documents: files.length, chunks, questions: valid.length, invalidQuestions, methods, split, perQuestion };
    if (opts.out) {
      mkdirSync(path.dirname(opts.out), { recursive: true });
      writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
    }
    if (!opts.quiet) {
      console.log(`knowledge eval: ${files.length} documents, ${chunks} chunks, ${valid.length} questions (${invalidQuestions.length} invalid), stand-in embeddings ${dimensions}d, vector path ${mode}`);
      for (const inv of invalidQuestions) console.log(`  invalid question ${inv.id}: ${inv.reason}`);
      const span = (ids: string[]) => (ids.length === 0 ? 'none' : `${ids[0]}–${ids[ids.length - 1]}, ${ids.length}`);
      console.log(`  recall@${k} / MRR@${MRR_DEPTH}; tune: ${span(split.tune.ids)} (the questions looked at while tuning); held out: ${span(split.heldOut.ids)}`);
      console.log(`  ${'method'.padEnd(30)} ${'all'.padStart(13)}   ${'tune'.padStart(13)}   ${'held out'.padStart(13)}`);
      const cell = (m: MethodScore) => `${m.recallAtK.toFixed(3)} / ${m.mrr.toFixed(3)}`;
      for (const [method, m] of Object.entries(methods) as [Method, MethodScore][]) {
        console.log(`  ${m.label.padEnd(30)} ${cell(m).padStart(13)}   ${cell(split.tune.methods[method]).padStart(13)}   ${cell(split.heldOut.methods[method]).padStart(13)}`);
      }
      if (opts.out) console.log(`  results: ${opts.out}`);
    }
    return report;
  } finally {
    await database.close();
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  const dir = path.resolve(arg('dir') ?? path.join(__dirname));
  runKnowledgeEval({ dir, k: Number(arg('k') ?? 3), dimensions: Number(arg('dimensions') ?? 512), out: path.resolve(arg('out') ?? path.join(dir, 'results.json')), databaseUrl: arg('database-url') }).catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
