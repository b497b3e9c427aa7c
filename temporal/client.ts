import type { Tracer } from '@opentelemetry/api';
import { type Client, type Connection, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { TypedSearchAttributes, type PayloadCodec } from '@temporalio/common';
import type { DeliveryStatus, InboundMessage, OutboundRequest, OutboundResult, SequenceCursor } from '../contract/messages';
import type { Channel, ModeRequest } from '../contract/vocabulary';
import { LEAD_WORKFLOW_TYPE } from '../contract/workflow-names';
import type { LeadIds } from '../lib/lead-ids';
import {
  cancelFollowUpUpdate,
  deliveryStatusSignal,
  discardDeadLetterUpdate,
  extractNowUpdate,
  inboundSignal,
  replayDeadLetterUpdate,
  sendMessageUpdate,
  sequenceUpdate,
  setModeUpdate,
  setStageUpdate,
  stateQuery,
  type CancelFollowUpResult,
  type LeadStateSnapshot,
  type LeadWorkflowInput,
  type SequenceCommand,
} from '../workflows/lead/definitions';
import { leadSummary } from '../workflows/lead/policy/summary';
import { RESUME_CIRCUIT_WORKFLOW_TYPE, resumeCircuitWorkflowId, type resumeCircuitWaitersWorkflow } from '../workflows/circuit';
import { CLOSE_CHANNEL_LEADS_WORKFLOW_TYPE, closeChannelLeadsWorkflowId, type closeChannelLeadsWorkflow } from '../workflows/channel-delete';
import { KNOWLEDGE_DOCUMENT_WORKFLOW_TYPE, knowledgeDocumentWorkflowId, type KnowledgeDocumentInput, type knowledgeDocumentWorkflow } from '../workflows/knowledge';
import { FETCH_MEDIA_WORKFLOW_TYPE, mediaWorkflowId, type fetchMediaWorkflow } from '../workflows/media';
import type { FetchMediaInput, FetchMediaResult } from '../activities/media/fetch';
import { SA } from './search-attributes';
import { connectTemporalClient } from './connect';
import { currentRequestId, currentTraceparent } from '../lib/trace-context';
import { plainTemporalSettings } from './connection-config';

export interface TemporalConnectionOptions {
  address: string;
  namespace: string;
}

/**
 * A plain-text client connection to a server Parley started itself (dev server, benches, chaos).
 * The API and anything configured by the environment use `connectTemporalClient(config.temporal)`
 * (TLS, mTLS, API key, profiles).
 */
export async function connectClient(opts: TemporalConnectionOptions & { payloadCodec?: PayloadCodec; tracer?: Tracer }): Promise<{ client: Client; connection: Connection }> {
  return connectTemporalClient(plainTemporalSettings(opts.address, opts.namespace), { payloadCodec: opts.payloadCodec, tracer: opts.tracer });
}

/** The message with the request id and trace it arrives in (the reply turn's logs and span name them: workers/tracing.ts). */
function withMessageTrace(message: InboundMessage): InboundMessage {
  const requestId = currentRequestId();
  const traceparent = currentTraceparent();
  if (!requestId && !traceparent) return message;
  return { ...message, trace: { ...(requestId ? { requestId } : {}), ...(traceparent ? { traceparent } : {}) } };
}

/** The lead workflow refused an update (its validator or handler said why). */
export class LeadUpdateRejected extends Error {
  constructor(public readonly reason: string) {
    super(reason);
    this.name = 'LeadUpdateRejected';
  }
}

async function rejectionsAsErrors<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new LeadUpdateRejected(err.cause?.message ?? err.message);
    throw err;
  }
}

export interface LeadTarget {
  tenantId: string;
  channelAccountId: string;
  channel: Channel;
  contactId: string;
  contactName?: string;
}

/**
 * Typed wrapper over the Temporal client: the API and tests call these, never string names.
 * It sends no lead settings: the worker resolves them (LEAD_*) and hands them to each run.
 */
export function createParleyTemporal(
  client: Client,
  opts: {
    taskQueue: string;
    /** Lead workflow ids (`core.leadIds`): the API's and the worker's must share the database's key. */
    leadIds: LeadIds;
    /** Creates (or finds) a workflow's payload key: `core.services.payloadKeys.forWorkflow` when the codec is on (composition/core.ts `keyPreparer`). */
    prepareKey?: (workflowId: string) => Promise<unknown>;
  },
) {
  const leadWorkflowId = (channelAccountId: string, contactId: string) => opts.leadIds.workflowId(channelAccountId, contactId);
  return {
    client,
    /** The workflow id of a contact's lead on a channel account (lib/lead-ids.ts). */
    leadWorkflowId,
    /**
     * Start creating a lead's payload key before its first signal: the webhook calls it before
     * its identity lookup, so the two database statements of a new lead overlap instead of
     * following each other. The signal's encryption still awaits that key's creation (the same
     * one: the key service shares a creation in flight), so nothing is encrypted with a key that
     * is not stored. Never throws: a failure shows when the signal encrypts.
     */
    prepareLead(channelAccountId: string, contactId: string): void {
      opts.prepareKey?.(leadWorkflowId(channelAccountId, contactId)).catch(() => undefined);
    },
    /** Deliver one inbound message to its lead workflow, starting the workflow if needed. */
    async signalInbound(target: LeadTarget, message: InboundMessage): Promise<{ workflowId: string }> {
      const workflowId = leadWorkflowId(target.channelAccountId, target.contactId);
      // no settings (the worker's ensureLead supplies them) and nothing carried: a fresh start
      const input: Omit<LeadWorkflowInput, 'settings' | 'carried'> = {
        tenantId: target.tenantId,
        channelAccountId: target.channelAccountId,
        channel: target.channel,
        contactId: target.contactId,
        contactName: target.contactName,
      };
      await client.workflow.signalWithStart(LEAD_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: opts.taskQueue,
        args: [input],
        signal: inboundSignal,
        signalArgs: [withMessageTrace(message)],
        staticSummary: leadSummary(target),
        typedSearchAttributes: new TypedSearchAttributes([
          { key: SA.TenantId, value: target.tenantId },
          { key: SA.ChannelAccountId, value: target.channelAccountId },
          { key: SA.Channel, value: target.channel },
          { key: SA.LeadStage, value: 'New' },
          { key: SA.LeadMode, value: 'ai' },
        ]),
      });
      return { workflowId };
    },

    /**
     * End a lead's workflow now (terminate, with the reason in its history): a contact erased
     * under data rights must not be written again. False when it had already ended or never ran.
     */
    async endLead(workflowId: string, reason: string): Promise<boolean> {
      try {
        await client.workflow.getHandle(workflowId).terminate(reason);
        return true;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },

    /** The lead workflow's `state` query; undefined when no such workflow exists. */
    async leadState(workflowId: string): Promise<LeadStateSnapshot | undefined> {
      try {
        return await client.workflow.getHandle(workflowId).query(stateQuery);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    },

    /** Sequence admin actions (pause, resume, reset, skip, enroll), synchronous through a Temporal update. */
    async sequence(workflowId: string, cmd: SequenceCommand): Promise<SequenceCursor> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(sequenceUpdate, { args: [cmd] }));
    },

    async setStage(workflowId: string, stage: string): Promise<{ stage: string; sequenceStopped: boolean }> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(setStageUpdate, { args: [{ stage }] }));
    },

    /** Run the lead's extraction now (the workflow's loop runs it next; the update answers when it is due). */
    async extractNow(workflowId: string): Promise<{ extractionDueAt: string }> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(extractNowUpdate, { args: [] }));
    },

    async setMode(workflowId: string, request: ModeRequest): Promise<{ mode: string }> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(setModeUpdate, { args: [{ request }] }));
    },

    /** A manual message or template through the lead's delivery, window and credit path. */
    async sendMessage(workflowId: string, req: Omit<OutboundRequest, 'source'>): Promise<OutboundResult> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(sendMessageUpdate, { args: [{ ...req, source: 'manual' }] }));
    },

    /**
     * Cancel a follow-up the AI scheduled (schedule_follow_up), as the API (event source `api`).
     * A follow-up that is not waiting is refused: `isFollowUpNotFound(reason)` (policy/follow-ups.ts).
     */
    async cancelFollowUp(workflowId: string, followUpId: string): Promise<CancelFollowUpResult> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(cancelFollowUpUpdate, { args: [{ followUpId, source: 'api' }] }));
    },

    /** Run a dead letter again in its lead workflow (a Temporal update; the workflow may refuse). */
    async replayDeadLetter(workflowId: string, deadLetterId: string): Promise<OutboundResult> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(replayDeadLetterUpdate, { args: [{ deadLetterId }] }));
    },

    async discardDeadLetter(workflowId: string, deadLetterId: string): Promise<{ discarded: true }> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(discardDeadLetterUpdate, { args: [{ deadLetterId }] }));
    },

    /** Tell a lead workflow that one of its sends failed after the provider accepted it; false when it is gone. */
    async signalDeliveryStatus(workflowId: string, status: DeliveryStatus): Promise<boolean> {
      try {
        await client.workflow.getHandle(workflowId).signal(deliveryStatusSignal, status);
        return true;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },

    /**
     * Start the fan-out that wakes the lead workflows waiting on a channel's circuit breaker
     * (`resumeCircuitWaitersWorkflow`), once per opening of the circuit; returns its workflow id.
     */
    async startCircuitResume(input: { tenantId: string; channelAccountId: string }, openedAt: string): Promise<string> {
      const workflowId = resumeCircuitWorkflowId(input.channelAccountId, openedAt);
      await client.workflow.start<typeof resumeCircuitWaitersWorkflow>(RESUME_CIRCUIT_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: opts.taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowExecutionTimeout: '1 hour',
        staticSummary: `Resume the sends waiting on channel ${input.channelAccountId}'s circuit breaker`,
      }).catch((err: unknown) => {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      });
      return workflowId;
    },

    /**
     * Start closing a deleted channel's leads in the background (`closeChannelLeadsWorkflow`),
     * once per channel; returns its workflow id. A second call finds the first run.
     */
    async startChannelLeadsClose(input: { tenantId: string; channelAccountId: string }): Promise<string> {
      const workflowId = closeChannelLeadsWorkflowId(input.channelAccountId);
      await client.workflow
        .start<typeof closeChannelLeadsWorkflow>(CLOSE_CHANNEL_LEADS_WORKFLOW_TYPE, {
          workflowId,
          taskQueue: opts.taskQueue,
          args: [input],
          workflowIdConflictPolicy: 'USE_EXISTING',
          // a close that found the channel never marked deleted may be followed by a real one
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          staticSummary: `Close the leads of deleted channel ${input.channelAccountId}`,
        })
        .catch((err: unknown) => {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        });
      return workflowId;
    },

    /**
     * Start indexing a knowledge-base document (`knowledgeDocumentWorkflow`), once per document
     * generation. `started: false`: that generation's workflow already exists (running, or closed:
     * the id is never reused), nothing new was started. The summary names ids and the source kind only.
     */
    async startKnowledgeDocument(input: KnowledgeDocumentInput, sourceKind: string): Promise<{ workflowId: string; started: boolean }> {
      const workflowId = knowledgeDocumentWorkflowId(input.documentId, input.generation);
      const started = await client.workflow
        .start<typeof knowledgeDocumentWorkflow>(KNOWLEDGE_DOCUMENT_WORKFLOW_TYPE, {
          workflowId,
          taskQueue: opts.taskQueue,
          args: [input],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          workflowExecutionTimeout: '2 hours',
          staticSummary: `Index knowledge document ${input.documentId} (${sourceKind}) of knowledge base ${input.knowledgeBaseId}, generation ${input.generation}`,
        })
        .then(
          () => true,
          (err: unknown) => {
            if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
            throw err;
          },
        );
      return { workflowId, started };
    },

    /**
     * The indexing workflow of a document's generation: `running`, `closed` (completed, failed,
     * timed out, terminated…) or `none` (never started).
     */
    async knowledgeDocumentRun(documentId: string, generation: number): Promise<'running' | 'closed' | 'none'> {
      try {
        const d = await client.workflow.getHandle(knowledgeDocumentWorkflowId(documentId, generation)).describe();
        return d.status.name === 'RUNNING' ? 'running' : 'closed';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return 'none';
        throw err;
      }
    },

    async ping(): Promise<void> {
      await client.workflowService.getSystemInfo({});
    },

    /**
     * Download an inbound media object through `fetchMediaWorkflow` (Temporal retries it);
     * concurrent callers for one media id share a run, a finished run's id is reused.
     * Resolves with the stored object's facts (the bytes are in media_objects).
     */
    async fetchMedia(input: FetchMediaInput): Promise<FetchMediaResult> {
      const handle = await client.workflow.start<typeof fetchMediaWorkflow>(FETCH_MEDIA_WORKFLOW_TYPE, {
        workflowId: mediaWorkflowId(input.channelAccountId, input.providerMediaId),
        taskQueue: opts.taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        workflowExecutionTimeout: '10 minutes',
        staticSummary: `Fetch media for channel ${input.channelAccountId}`,
      });
      return handle.result();
    },
  };
}

export type ParleyTemporal = ReturnType<typeof createParleyTemporal>;
