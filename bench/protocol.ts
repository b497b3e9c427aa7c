/** Messages between bench/run.ts and its "outside world" child (bench/world.ts). */
import type { OpenLoopSummary } from './open-loop';

export interface WebhookLoad {
  /** API base URL, e.g. http://127.0.0.1:40000 */
  apiUrl: string;
  phoneNumberId: string;
  appSecret: string;
  rate: number;
  count: number;
  /** wa_id = prefix + zero-padded index: one lead per request. */
  waIdPrefix: string;
  /** Every request from the same lead (index 0): a burst of messages instead of new leads. */
  sameLead?: boolean;
  /** Request i comes from lead i mod `leads` (a pool of leads who write again and again). */
  leads?: number;
  maxSockets: number;
  /** Epoch ms the schedule starts (shared with the parent's bare loop when interleaving). */
  t0?: number;
  slice?: { ms: number; parity: 0 | 1 };
}

export interface WebhookSend {
  waId: string;
  dueAt: number;
  doneAt: number;
  ok: boolean;
}

export interface RepliesQuery {
  /** Count successful Graph sends whose `to` starts with this. */
  prefix: string;
  expected: number;
  timeoutMs: number;
  /** Only replies at or after this epoch ms (a lead's later turns); default: its first reply. */
  after?: number;
  /** Also return every reply time per recipient (`times`), not only the first. */
  all?: boolean;
}

export interface RepliesResult {
  replied: number;
  /** `to` → epoch ms the first reply to it (at or after `after`) reached the fake Graph API. */
  replyAt: Record<string, number>;
  /** With `all`: every reply time (epoch ms, ascending) per recipient with this prefix. */
  times?: Record<string, number[]>;
  timedOut: boolean;
}

export type ToWorld =
  | { id: number; type: 'webhooks'; load: WebhookLoad }
  | { id: number; type: 'replies'; query: RepliesQuery }
  | { id: number; type: 'cpu' }
  | { id: number; type: 'stop' };

export type FromWorld =
  | { type: 'ready'; graphUrl: string; llmUrl: string; pid: number }
  | { id: number; type: 'webhooks'; summary: OpenLoopSummary; sends: WebhookSend[] }
  | { id: number; type: 'replies'; result: RepliesResult }
  | { id: number; type: 'cpu'; cpuMs: number }
  | { id: number; type: 'stopped' }
  | { id: number; type: 'error'; message: string };

/** One lead per request: wa_id = prefix + zero-padded index. */
export function waIdFor(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(8, '0')}`;
}
