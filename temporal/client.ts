import { Client, Connection, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { ModeRequest } from '../workflows/lead/policy/handoff';
import type { SequenceCursor } from '../workflows/lead/policy/sequence';
import {
  inboundSignal,
  sendMessageUpdate,
  sequenceUpdate,
  setModeUpdate,
  setStageUpdate,
  type OutboundRequest,
  type OutboundResult,
  type SequenceCommand,
  LEAD_WORKFLOW_TYPE,
  leadWorkflowId,
  stateQuery,
  type Channel,
  type InboundMessage,
  type LeadStateSnapshot,
  type LeadWorkflowInput,
  type LeadWorkflowSettings,
} from '../workflows/lead/definitions';
import { leadSummary } from '../workflows/lead/policy/summary';
import { SA } from './search-attributes';

export interface TemporalConnectionOptions {
  address: string;
  namespace: string;
}

export async function connectClient(opts: TemporalConnectionOptions): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: opts.address });
  return { client: new Client({ connection, namespace: opts.namespace }), connection };
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
 */
export function createParleyTemporal(client: Client, opts: { taskQueue: string; settings: LeadWorkflowSettings }) {
  return {
    client,
    /** Deliver one inbound message to its lead workflow, starting the workflow if needed. */
    async signalInbound(target: LeadTarget, message: InboundMessage): Promise<{ workflowId: string }> {
      const workflowId = leadWorkflowId(target.channelAccountId, target.contactId);
      const input: LeadWorkflowInput = {
        tenantId: target.tenantId,
        channelAccountId: target.channelAccountId,
        channel: target.channel,
        contactId: target.contactId,
        contactName: target.contactName,
        settings: opts.settings,
      };
      await client.workflow.signalWithStart(LEAD_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: opts.taskQueue,
        args: [input],
        signal: inboundSignal,
        signalArgs: [message],
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

    async setMode(workflowId: string, request: ModeRequest): Promise<{ mode: string }> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(setModeUpdate, { args: [{ request }] }));
    },

    /** A manual message or template through the lead's delivery, window and credit path. */
    async sendMessage(workflowId: string, req: Omit<OutboundRequest, 'source'>): Promise<OutboundResult> {
      return rejectionsAsErrors(client.workflow.getHandle(workflowId).executeUpdate(sendMessageUpdate, { args: [{ ...req, source: 'manual' }] }));
    },

    async ping(): Promise<void> {
      await client.workflowService.getSystemInfo({});
    },
  };
}

export type ParleyTemporal = ReturnType<typeof createParleyTemporal>;
