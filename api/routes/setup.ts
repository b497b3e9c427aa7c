import { Router, type Response } from 'express';
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import type { SequenceStep } from '../../contract/messages';
import { libraryMediaRefs } from '../../contract/rich';
import { STOP_CONDITIONS } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import type { ApiKeyPrincipal } from '../../services/api-keys';
import { MAX_STAGES, type MovedLeads } from '../../services/pipelines';
import { LeadUpdateRejected, type ParleyTemporal } from '../../temporal/client';
import { sequenceStepSchema } from '../../workflows/lead/policy/schemas';
import { MANAGERS, SETUP_READERS, allow } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { createAgentBody } from './tenant';
import { doc } from '../openapi';
import { pageOf } from '../schemas/common';
import { agent, agentVersion, pipeline, sequence, sequenceVersion, setupDeleted, stageAdded, stageChanged, stageRemoved } from '../schemas/setup';

const nonEmpty = (b: object) => Object.values(b).some((v) => v !== undefined);
const GIVE_ONE = 'give at least one field to change';

const agentPatch = createAgentBody
  .partial()
  .extend({
    fallbackModel: createAgentBody.shape.fallbackModel.unwrap().nullable().optional(),
    /** null: back to the default opt-out settings. */
    optOut: createAgentBody.shape.optOut.unwrap().nullable().optional(),
    /** null: no qualification threshold. */
    qualifiedScore: createAgentBody.shape.qualifiedScore.unwrap().nullable().optional(),
    /** null: back to the default tools (handoff_to_human). */
    tools: createAgentBody.shape.tools.unwrap().nullable().optional(),
    /** null: no follow-up template (a follow-up outside the window is refused). */
    followUpTemplate: createAgentBody.shape.followUpTemplate.unwrap().nullable().optional(),
  })
  .refine(nonEmpty, GIVE_ONE);
const sequencePatch = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    steps: z.array(sequenceStepSchema).min(1).max(50).optional(),
    stopOn: z
      .array(z.enum(STOP_CONDITIONS))
      .max(STOP_CONDITIONS.length)
      .refine((s) => new Set(s).size === s.length, 'stop conditions must be unique')
      .optional(),
  })
  .refine(nonEmpty, GIVE_ONE);
const stageName = z.string().trim().min(1).max(100);
const position = z.number().int().min(0).max(MAX_STAGES - 1);
const pipelinePatch = z
  .strictObject({
    name: z.string().trim().min(1).max(100).optional(),
    /** Every stage id of the pipeline, once each, in the new order. */
    stageOrder: z.array(z.uuid()).min(1).max(MAX_STAGES).optional().meta({ description: 'Every stage id of the pipeline, once each, in the new order' }),
  })
  .refine(nonEmpty, GIVE_ONE);
const addStageBody = z.strictObject({ name: stageName, position: position.optional().meta({ description: '0 = first; absent: last' }) });
const stagePatch = z.strictObject({ name: stageName.optional(), position: position.optional() }).refine(nonEmpty, GIVE_ONE);
const removeStageQuery = z.strictObject({ moveTo: stageName.optional().meta({ description: 'Another stage name of the tenant to move the leads of the removed stage to (required while leads are in it)' }) });

/** A path id that is not a uuid names nothing of this tenant: 404, like another tenant's id. */
function idOr404(raw: unknown, what: string): string {
  const r = z.uuid().safeParse(raw);
  if (!r.success) throw new AppError('not_found', `${what} not found`);
  return r.data;
}
function versionOr404(raw: unknown): number {
  const r = z.coerce.number().int().min(1).max(1_000_000_000).safeParse(raw);
  if (!r.success || !/^\d+$/.test(String(raw))) throw new AppError('not_found', 'agent version not found');
  return r.data;
}
const keyOf = (res: Response) => (res.locals.apiKey as ApiKeyPrincipal).keyId;

/**
 * Changing the setup after it was made: agents (versions and rollback, delete), sequences
 * (versions, archive), enrolment rules (delete), pipelines and their stages (rename, add,
 * reorder, remove with a move of the leads in it). Every PATCH leaves before/after in the audit log.
 */
export function createSetupRouter(deps: { services: Services; temporal: ParleyTemporal }): Router {
  const { services, temporal } = deps;
  const r = Router();
  const auth = tenantAuth(services); // tenant key, then the tenant's API rate limit
  for (const p of ['/v1/agents/:agentId', '/v1/sequences/:sequenceId', '/v1/enrollment-rules/:ruleId', '/v1/pipelines/:pipelineId']) r.use(p, auth);

  // ---- agents
  r.get('/v1/agents/:agentId', allow(...SETUP_READERS), doc({ summary: 'Get an agent', responses: { 200: agent } }), async (req, res) => {
    const agent = await services.agents.get(res.locals.tenantId, idOr404(req.params.agentId, 'agent'));
    if (!agent) throw new AppError('not_found', 'agent not found');
    res.json(agent);
  });
  r.patch('/v1/agents/:agentId', allow(...MANAGERS), validate({ body: agentPatch }), doc({ summary: 'Change an agent', description: 'A new version when a field differs (the same values make none); `fallbackModel: null` removes the fallback, `optOut: null` goes back to the default opt-out settings. Conversations use it from their next turn. The audit log keeps before and after.', responses: { 200: agent } }), async (req, res) => {
    if (res.locals.body.knowledgeBaseIds) {
      res.locals.body.knowledgeBaseIds = [...new Set(res.locals.body.knowledgeBaseIds as string[])];
      await services.knowledge.assertKnowledgeBases(res.locals.tenantId, res.locals.body.knowledgeBaseIds);
    }
    const out = await services.agents.update(res.locals.tenantId, idOr404(req.params.agentId, 'agent'), res.locals.body, { createdBy: keyOf(res) });
    if (!out) throw new AppError('not_found', 'agent not found');
    res.locals.audit = { before: out.before, after: out.after };
    res.json(out.after);
  });
  r.delete('/v1/agents/:agentId', allow(...MANAGERS), validate({ body: z.strictObject({}) }), doc({ summary: 'Delete an agent', description: 'Deletes the agent with its version history and the enrolment rules that name it (recorded LLM calls keep its id and version). 409 `agent_in_use` while a channel is assigned to it (move or delete the channels first).', responses: { 200: setupDeleted } }), async (req, res) => {
    const out = await services.agents.delete(res.locals.tenantId, idOr404(req.params.agentId, 'agent'));
    if (!out) throw new AppError('not_found', 'agent not found');
    res.locals.audit = { before: out.deleted, after: null };
    res.json({ id: out.deleted.id, deleted: true });
  });
  r.get('/v1/agents/:agentId/versions', allow(...SETUP_READERS), validate({ query: pageQuery }), doc({ summary: "List an agent's versions", description: 'Newest first.', responses: { 200: pageOf(agentVersion) } }), async (req, res) => {
    const page = await services.agents.versions(res.locals.tenantId, idOr404(req.params.agentId, 'agent'), res.locals.query);
    if (!page) throw new AppError('not_found', 'agent not found');
    res.json(page);
  });
  r.post('/v1/agents/:agentId/versions/:version/restore', allow(...MANAGERS), validate({ body: z.strictObject({}) }), doc({ summary: 'Restore an agent version', description: 'Roll back: the fields of version `version` become a new version (current + 1, `restoredFrom`), so the history only grows; restoring the current fields makes no version.', responses: { 200: agent } }), async (req, res) => {
    const agentId = idOr404(req.params.agentId, 'agent');
    const out = await services.agents.restore(res.locals.tenantId, agentId, versionOr404(req.params.version), { createdBy: keyOf(res) });
    if (!out) throw new AppError('not_found', (await services.agents.get(res.locals.tenantId, agentId)) ? 'agent version not found' : 'agent not found');
    res.locals.audit = { before: out.before, after: out.after };
    res.json(out.after);
  });

  // ---- sequences and enrolment rules
  r.get('/v1/sequences/:sequenceId', allow(...SETUP_READERS), doc({ summary: 'Get a sequence', responses: { 200: sequence } }), async (req, res) => {
    const seq = await services.sequences.get(res.locals.tenantId, idOr404(req.params.sequenceId, 'sequence'));
    if (!seq) throw new AppError('not_found', 'sequence not found');
    res.json(seq);
  });
  r.patch('/v1/sequences/:sequenceId', allow(...MANAGERS), validate({ body: sequencePatch }), doc({ summary: 'Change a sequence', description: 'A new version (same id) when a field differs. Leads already enrolled keep the definition they were enrolled with until they finish or are reset; new enrolments get this one. 409 `sequence_archived` for an archived sequence.', responses: { 200: sequence } }), async (req, res) => {
    // media library files the rich steps name: this tenant's, of the step's kind (as at creation)
    for (const [n, step] of ((res.locals.body as { steps?: SequenceStep[] }).steps ?? []).entries()) if (step.message) await services.mediaLibrary.checkForMessage(res.locals.tenantId, libraryMediaRefs(step.message), `steps.${n}.message.`);
    const out = await services.sequences.update(res.locals.tenantId, idOr404(req.params.sequenceId, 'sequence'), res.locals.body, { createdBy: keyOf(res) });
    if (!out) throw new AppError('not_found', 'sequence not found');
    res.locals.audit = { before: out.before, after: out.after };
    res.json(out.after);
  });
  r.delete('/v1/sequences/:sequenceId', allow(...MANAGERS), validate({ body: z.strictObject({}) }), doc({ summary: 'Archive a sequence', description: 'No new enrolments (a manual one is a 409, rules skip it); enrolled leads go on, and it stays readable. Idempotent.', responses: { 200: sequence } }), async (req, res) => {
    const out = await services.sequences.archive(res.locals.tenantId, idOr404(req.params.sequenceId, 'sequence'));
    if (!out) throw new AppError('not_found', 'sequence not found');
    res.locals.audit = { before: out.before, after: out.after };
    res.json(out.after);
  });
  r.get('/v1/sequences/:sequenceId/versions', allow(...SETUP_READERS), validate({ query: pageQuery }), doc({ summary: "List a sequence's versions", description: 'Newest first.', responses: { 200: pageOf(sequenceVersion) } }), async (req, res) => {
    const page = await services.sequences.versions(res.locals.tenantId, idOr404(req.params.sequenceId, 'sequence'), res.locals.query);
    if (!page) throw new AppError('not_found', 'sequence not found');
    res.json(page);
  });
  r.delete('/v1/enrollment-rules/:ruleId', allow(...MANAGERS), validate({ body: z.strictObject({}) }), doc({ summary: 'Delete an enrolment rule', description: 'Leads it enrolled stay enrolled.', responses: { 200: setupDeleted } }), async (req, res) => {
    const rule = await services.sequences.deleteRule(res.locals.tenantId, idOr404(req.params.ruleId, 'enrollment rule'));
    if (!rule) throw new AppError('not_found', 'enrollment rule not found');
    res.locals.audit = { before: rule, after: null };
    res.json({ id: rule.id, deleted: true });
  });

  // ---- pipelines and stages
  /** Tell the moved leads' workflows (the existing stage update), a few at a time; what happened to each. */
  async function syncWorkflows(moved: MovedLeads | undefined) {
    if (!moved) return undefined;
    const failed: { leadId: string; reason: string }[] = [];
    let updated = 0;
    let notRunning = 0;
    const queue = [...moved.leads];
    await Promise.all(
      Array.from({ length: Math.min(8, queue.length) }, async () => {
        for (let lead = queue.shift(); lead; lead = queue.shift()) {
          try {
            await temporal.setStage(lead.workflowId, moved.to);
            updated++;
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) notRunning++; // a new run reads its stage from the database
            else if (err instanceof LeadUpdateRejected && /already in stage/.test(err.reason)) updated++;
            else failed.push({ leadId: lead.id, reason: err instanceof Error ? err.message.slice(0, 300) : String(err) });
          }
        }
      }),
    );
    return { from: moved.from, to: moved.to, leads: moved.leads.length, workflowsUpdated: updated, workflowsNotRunning: notRunning, workflowsFailed: failed };
  }

  r.get('/v1/pipelines/:pipelineId', allow(...SETUP_READERS), doc({ summary: 'Get a pipeline', responses: { 200: pipeline } }), async (req, res) => {
    const p = await services.pipelines.get(res.locals.tenantId, idOr404(req.params.pipelineId, 'pipeline'));
    if (!p) throw new AppError('not_found', 'pipeline not found');
    res.json(p);
  });
  r.patch('/v1/pipelines/:pipelineId', allow(...MANAGERS), validate({ body: pipelinePatch }), doc({ summary: 'Rename a pipeline or reorder its stages', description: '`stageOrder` lists every stage id of the pipeline once, in the new order. 409 `pipeline_name_taken` when another pipeline has the name.', responses: { 200: pipeline } }), async (req, res) => {
    const out = await services.pipelines.update(res.locals.tenantId, idOr404(req.params.pipelineId, 'pipeline'), res.locals.body);
    if (!out) throw new AppError('not_found', 'pipeline not found');
    res.locals.audit = { before: out.before, after: out.after };
    res.json(out.after);
  });
  r.post('/v1/pipelines/:pipelineId/stages', allow(...MANAGERS), validate({ body: addStageBody }), doc({ summary: 'Add a stage', description: 'At `position` (0 = first; absent: last). 409 `too_many_stages` beyond 30 stages, `stage_name_taken` for a name the pipeline has.', responses: { 201: stageAdded } }), async (req, res) => {
    const out = await services.pipelines.addStage(res.locals.tenantId, idOr404(req.params.pipelineId, 'pipeline'), res.locals.body);
    if (!out) throw new AppError('not_found', 'pipeline not found');
    res.locals.audit = { before: out.before, after: out.after };
    res.status(201).json({ pipeline: out.after, stage: out.stage });
  });
  r.patch('/v1/pipelines/:pipelineId/stages/:stageId', allow(...MANAGERS), validate({ body: stagePatch }), doc({ summary: 'Rename or move a stage', description: "Leads in a renamed stage follow the new name (unless another pipeline of the tenant still has a stage of the old name), their conversation workflows too: `moved` says how many and what happened to each workflow. The default pipeline's stage New cannot be renamed (409 `entry_stage`).", responses: { 200: stageChanged } }), async (req, res) => {
    const out = await services.pipelines.updateStage(res.locals.tenantId, idOr404(req.params.pipelineId, 'pipeline'), idOr404(req.params.stageId, 'stage'), res.locals.body);
    if (!out) throw new AppError('not_found', 'stage not found');
    const moved = await syncWorkflows(out.moved);
    res.locals.audit = { before: out.before, after: out.after };
    res.json({ pipeline: out.after, stage: out.stage, ...(moved ? { moved } : {}) });
  });
  r.delete('/v1/pipelines/:pipelineId/stages/:stageId', allow(...MANAGERS), validate({ query: removeStageQuery, body: removeStageQuery }), doc({ summary: 'Remove a stage', description: "Leads in the stage (when no other pipeline of the tenant has a stage of that name) need `moveTo`, another stage name of the tenant, in the query or the body: they move there, their workflows too (`moved`); without it 409 `stage_has_leads`. A pipeline keeps at least one stage (409 `last_stage`); the default pipeline's stage New cannot be removed (409 `entry_stage`).", responses: { 200: stageRemoved } }), async (req, res) => {
    // moveTo in the query (`?moveTo=Qualified`) or, for clients that send DELETE bodies, in the body
    const { moveTo: inQuery } = res.locals.query as z.infer<typeof removeStageQuery>;
    const { moveTo: inBody } = res.locals.body as z.infer<typeof removeStageQuery>;
    if (inQuery !== undefined && inBody !== undefined && inQuery !== inBody) {
      throw new AppError('validation_failed', 'moveTo is given twice with two values (query and body)', [{ path: 'moveTo', message: 'give it once' }]);
    }
    const out = await services.pipelines.removeStage(res.locals.tenantId, idOr404(req.params.pipelineId, 'pipeline'), idOr404(req.params.stageId, 'stage'), inQuery ?? inBody);
    if (!out) throw new AppError('not_found', 'stage not found');
    const moved = await syncWorkflows(out.moved);
    res.locals.audit = { before: out.before, after: out.after };
    res.json({ pipeline: out.after, removed: out.removed, ...(moved ? { moved } : {}) });
  });
  return r;
}
