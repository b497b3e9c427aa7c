import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { pipelines, stages } from '../db/schema';
import { AppError } from '../lib/errors';
import { afterCursor, keyset, PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

export const DEFAULT_PIPELINE = { name: 'Sales', stages: ['New', 'Qualified', 'Nurture', 'Converted', 'Lost'] } as const;

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** Pipelines and their stages; every tenant gets the default pipeline when it is created. */
export function createPipelineService(db: Db) {
  async function withStages(ps: (typeof pipelines.$inferSelect)[]) {
    const ss = ps.length === 0 ? [] : await db.select().from(stages).where(inArray(stages.pipelineId, ps.map((p) => p.id))).orderBy(asc(stages.position));
    return ps.map((p) => ({
      id: p.id,
      name: p.name,
      isDefault: p.isDefault,
      stages: ss.filter((s) => s.pipelineId === p.id).map((s) => ({ id: s.id, name: s.name, position: s.position })),
      createdAt: toIso(p.createdAt),
    }));
  }

  return {
    async createDefault(tenantId: string, tx: Tx | Db = db): Promise<void> {
      const [p] = await tx.insert(pipelines).values({ tenantId, name: DEFAULT_PIPELINE.name, isDefault: true }).returning({ id: pipelines.id });
      if (!p) throw new Error('pipeline insert returned nothing');
      await tx.insert(stages).values(DEFAULT_PIPELINE.stages.map((name, position) => ({ tenantId, pipelineId: p.id, name, position })));
    },

    /** A custom pipeline with its ordered stages. */
    async create(tenantId: string, input: { name: string; stages: string[] }) {
      try {
        await db.transaction(async (tx) => {
          const [p] = await tx.insert(pipelines).values({ tenantId, name: input.name }).returning({ id: pipelines.id });
          if (!p) throw new Error('pipeline insert returned nothing');
          await tx.insert(stages).values(input.stages.map((name, position) => ({ tenantId, pipelineId: p.id, name, position })));
        });
      } catch (err) {
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) throw new AppError('conflict', `a pipeline named ${input.name} already exists`);
        throw err;
      }
      const ps = await db.select().from(pipelines).where(and(eq(pipelines.tenantId, tenantId), eq(pipelines.name, input.name)));
      return (await withStages(ps))[0]!;
    },

    /** Oldest first with their stages, one keyset page. */
    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(pipelines)
        .where(and(eq(pipelines.tenantId, tenantId), afterCursor(pipelines, opts.cursor, 'asc')))
        .orderBy(asc(pipelines.createdAt), asc(pipelines.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: await withStages(page), nextCursor };
    },

    /** Whether `name` is a stage of one of the tenant's pipelines. */
    async stageExists(tenantId: string, name: string): Promise<boolean> {
      const [s] = await db.select({ id: stages.id }).from(stages).where(and(eq(stages.tenantId, tenantId), eq(stages.name, name))).limit(1);
      return Boolean(s);
    },
  };
}

export type PipelineService = ReturnType<typeof createPipelineService>;
