import { and, asc, count, eq, inArray, ne, sql } from 'drizzle-orm';
import type { Db, DbTransaction } from '../db/client';
import { leads, pipelines, stages } from '../db/schema';
import { AppError } from '../lib/errors';
import { afterCursor, forDatabase, keyset, PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

export const DEFAULT_PIPELINE = { name: 'Sales', stages: ['New', 'Qualified', 'Nurture', 'Converted', 'Lost'] } as const;

/** The stage every new lead starts in (the lead workflow and the leads table start there): the default pipeline keeps it. */
export const ENTRY_STAGE = 'New';

/** At most this many stages in one pipeline. */
export const MAX_STAGES = 30;

/** Leads whose stage changed in the database: their workflows are told next (the route does it). */
export interface MovedLeads {
  from: string;
  to: string;
  leads: { id: string; workflowId: string }[];
}

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

    /** One pipeline with its stages; undefined when the tenant has no such pipeline. */
    async get(tenantId: string, pipelineId: string) {
      const ps = await db.select().from(pipelines).where(and(eq(pipelines.tenantId, tenantId), eq(pipelines.id, pipelineId)));
      return (await withStages(ps))[0];
    },

    /**
     * Rename the pipeline and/or reorder its stages (`stageOrder`: every stage id of the pipeline,
     * once each, in the new order). Undefined when the tenant has no such pipeline.
     */
    async update(tenantId: string, pipelineId: string, input: { name?: string; stageOrder?: string[] }) {
      const before = await this.get(tenantId, pipelineId);
      if (!before) return undefined;
      try {
        await db.transaction(async (tx) => {
          if (input.name !== undefined && input.name !== before.name) await tx.update(pipelines).set(forDatabase({ name: input.name })).where(eq(pipelines.id, pipelineId));
          if (input.stageOrder) {
            const ids = new Set(before.stages.map((st) => st.id));
            const given = new Set(input.stageOrder);
            if (given.size !== input.stageOrder.length || given.size !== ids.size || [...given].some((id) => !ids.has(id))) {
              throw new AppError('validation_failed', 'stageOrder must list every stage id of this pipeline once', [
                { path: 'stageOrder', message: `this pipeline's stages: ${before.stages.map((st) => st.id).join(', ')}` },
              ]);
            }
            await renumber(tx, pipelineId, input.stageOrder);
          }
        });
      } catch (err) {
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) throw new AppError('conflict', `a pipeline named ${input.name ?? ''} already exists`, undefined, 'pipeline_name_taken');
        throw err;
      }
      return { before, after: (await this.get(tenantId, pipelineId))! };
    },

    /** Add a stage at `position` (0 = first; default last). Undefined when the tenant has no such pipeline. */
    async addStage(tenantId: string, pipelineId: string, input: { name: string; position?: number }) {
      const before = await this.get(tenantId, pipelineId);
      if (!before) return undefined;
      if (before.stages.length >= MAX_STAGES) throw new AppError('conflict', `a pipeline has at most ${MAX_STAGES} stages`, undefined, 'too_many_stages');
      const name = forDatabase(input.name);
      if (before.stages.some((st) => st.name === name)) throw stageNameTaken(name);
      try {
        await db.transaction(async (tx) => {
          const [added] = await tx.insert(stages).values({ tenantId, pipelineId, name, position: before.stages.length }).returning({ id: stages.id });
          const order = before.stages.map((st) => st.id);
          order.splice(Math.min(input.position ?? order.length, order.length), 0, added!.id);
          await renumber(tx, pipelineId, order);
        });
      } catch (err) {
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) throw stageNameTaken(name);
        throw err;
      }
      const after = (await this.get(tenantId, pipelineId))!;
      return { before, after, stage: after.stages.find((st) => st.name === name)! };
    },

    /**
     * Rename a stage and/or move it to `position`. Leads in the stage (leads.stage holds the
     * name) follow the new name in the database, unless another pipeline of the tenant still
     * has a stage of the old name; `moved` lists them for their workflows. Undefined when the
     * tenant has no such pipeline or stage.
     */
    async updateStage(tenantId: string, pipelineId: string, stageId: string, input: { name?: string; position?: number }) {
      const before = await this.get(tenantId, pipelineId);
      const stage = before?.stages.find((st) => st.id === stageId);
      if (!before || !stage) return undefined;
      const name = input.name === undefined ? undefined : forDatabase(input.name);
      const renamed = name !== undefined && name !== stage.name;
      if (renamed && before.isDefault && stage.name === ENTRY_STAGE) throw entryStage('renamed');
      if (renamed && before.stages.some((st) => st.name === name)) throw stageNameTaken(name);
      let moved: MovedLeads | undefined;
      try {
        moved = await db.transaction(async (tx) => {
          if (input.position !== undefined) {
            const order = before.stages.map((st) => st.id).filter((id) => id !== stageId);
            order.splice(Math.min(input.position, order.length), 0, stageId);
            await renumber(tx, pipelineId, order);
          }
          if (!renamed) return undefined;
          await tx.update(stages).set({ name }).where(eq(stages.id, stageId));
          return moveLeads(tx, tenantId, pipelineId, stage.name, name);
        });
      } catch (err) {
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) throw stageNameTaken(name ?? '');
        throw err;
      }
      const after = (await this.get(tenantId, pipelineId))!;
      return { before, after, stage: after.stages.find((st) => st.id === stageId)!, moved };
    },

    /**
     * Remove a stage. Leads in it (when no other pipeline of the tenant has a stage of that
     * name) need `moveTo`, another stage name of the tenant: they move there in the same
     * transaction; without it the answer is 409 `stage_has_leads` with their number. The last
     * stage of a pipeline, and the default pipeline's entry stage, cannot be removed.
     */
    async removeStage(tenantId: string, pipelineId: string, stageId: string, moveTo?: string) {
      const before = await this.get(tenantId, pipelineId);
      const stage = before?.stages.find((st) => st.id === stageId);
      if (!before || !stage) return undefined;
      if (before.isDefault && stage.name === ENTRY_STAGE) throw entryStage('removed');
      if (before.stages.length === 1) throw new AppError('conflict', 'a pipeline keeps at least one stage', undefined, 'last_stage');
      const target = moveTo === undefined ? undefined : forDatabase(moveTo);
      const moved = await db.transaction(async (tx) => {
        const stranded = await strandedLeads(tx, tenantId, pipelineId, stage.name);
        if (stranded > 0 && target === undefined) {
          throw new AppError('conflict', `${stranded} lead(s) are in stage ${stage.name}: give moveTo, another stage of this tenant to move them to`, [{ path: 'moveTo', message: 'required while leads are in the stage' }], 'stage_has_leads');
        }
        if (target !== undefined) {
          const exists = await tx
            .select({ id: stages.id })
            .from(stages)
            .where(and(eq(stages.tenantId, tenantId), eq(stages.name, target), ne(stages.id, stageId)))
            .limit(1);
          if (exists.length === 0) throw new AppError('validation_failed', `moveTo: no other stage of this tenant is named ${target}`, [{ path: 'moveTo', message: 'unknown stage' }]);
        }
        await tx.delete(stages).where(eq(stages.id, stageId));
        await renumber(tx, pipelineId, before.stages.map((st) => st.id).filter((id) => id !== stageId));
        return stranded > 0 && target !== undefined ? moveLeads(tx, tenantId, pipelineId, stage.name, target) : undefined;
      });
      return { before, after: (await this.get(tenantId, pipelineId))!, removed: stage, moved };
    },

    /** Every stage name of the tenant's pipelines, once each (the set_stage tool's choices). */
    async stageNames(tenantId: string): Promise<string[]> {
      const rows = await db.selectDistinct({ name: stages.name }).from(stages).where(eq(stages.tenantId, tenantId)).orderBy(asc(stages.name));
      return rows.map((r) => r.name);
    },

    /** Whether `name` is a stage of one of the tenant's pipelines. */
    async stageExists(tenantId: string, name: string): Promise<boolean> {
      const [s] = await db.select({ id: stages.id }).from(stages).where(and(eq(stages.tenantId, tenantId), eq(stages.name, name))).limit(1);
      return Boolean(s);
    },
  };
}

/** Positions 0..n-1 in this order. */
async function renumber(tx: DbTransaction, pipelineId: string, order: string[]): Promise<void> {
  if (order.length === 0) return;
  const cases = sql.join(
    order.map((id, i) => sql`when ${id}::uuid then ${i}::integer`),
    sql` `,
  );
  await tx.update(stages).set({ position: sql`case ${stages.id} ${cases} end` }).where(and(eq(stages.pipelineId, pipelineId), inArray(stages.id, order)));
}

/** Leads in stage `name` that no other pipeline of the tenant accounts for (leads.stage holds a name, not a pipeline). */
async function strandedLeads(tx: DbTransaction, tenantId: string, pipelineId: string, name: string): Promise<number> {
  const [other] = await tx.select({ id: stages.id }).from(stages).where(and(eq(stages.tenantId, tenantId), eq(stages.name, name), ne(stages.pipelineId, pipelineId))).limit(1);
  if (other) return 0;
  const [n] = await tx.select({ n: count() }).from(leads).where(and(eq(leads.tenantId, tenantId), eq(leads.stage, name)));
  return Number(n?.n ?? 0);
}

/** Move the stranded leads of stage `from` to `to` in the database; the ones moved, for their workflows. */
async function moveLeads(tx: DbTransaction, tenantId: string, pipelineId: string, from: string, to: string): Promise<MovedLeads | undefined> {
  if ((await strandedLeads(tx, tenantId, pipelineId, from)) === 0) return undefined;
  const rows = await tx
    .update(leads)
    .set({ stage: to, updatedAt: sql`now()` })
    .where(and(eq(leads.tenantId, tenantId), eq(leads.stage, from)))
    .returning({ id: leads.id, workflowId: leads.workflowId });
  return { from, to, leads: rows };
}

function stageNameTaken(name: string): AppError {
  return new AppError('conflict', `this pipeline already has a stage named ${name}`, undefined, 'stage_name_taken');
}

function entryStage(what: string): AppError {
  return new AppError('conflict', `stage ${ENTRY_STAGE} of the default pipeline cannot be ${what}: every new lead starts in it`, undefined, 'entry_stage');
}

export type PipelineService = ReturnType<typeof createPipelineService>;
