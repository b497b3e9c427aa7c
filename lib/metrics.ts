/**
 * Parley's application metrics (prom-client): one registry per process and every metric
 * definition, with small `record…` functions that the places where the facts happen call
 * (webhook routes, activities, the credit service, the LLM activities). Recording never throws.
 *
 * Labels are bounded: no lead, contact, message or channel ids ever. Free-form values (LLM model
 * names, Graph error codes) keep their first BOUNDED_VALUES_CAP distinct values and fold the
 * rest into "other". `tenant_id` is empty (Prometheus drops an empty label) unless
 * METRICS_TENANT_LABELS is on, and then holds at most METRICS_TENANT_LABEL_CAP distinct tenants
 * per process ("other" after that).
 *
 * The API serves this registry at `GET /metrics` (admin token) with the database gauges
 * (circuits, dead letters, balances) read at each scrape; the worker serves it on METRICS_PORT
 * merged with the Temporal SDK's own metrics (temporal/metrics-server.ts).
 *
 * Workflow code must not import this module (it is not deterministic and not in the bundle).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FailureType } from '../contract/failures';

export const registry = new Registry();

/** Distinct values kept for a free-form label (model, Graph error code) before "other". */
export const BOUNDED_VALUES_CAP = 50;
export const OTHER = 'other';

/** First `cap` distinct values pass, the rest read "other": a label's cardinality stays bounded. */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private cap: number) {}
  of(value: string | number | undefined | null): string {
    if (value === undefined || value === null || value === '') return 'unknown';
    const v = String(value).slice(0, 100);
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.cap) return OTHER;
    this.seen.add(v);
    return v;
  }
  setCap(cap: number): void {
    this.cap = cap;
  }
  reset(): void {
    this.seen.clear();
  }
}

const models = new BoundedLabel(BOUNDED_VALUES_CAP);
const graphCodes = new BoundedLabel(BOUNDED_VALUES_CAP);
const tenants = new BoundedLabel(100);
let tenantLabels = false;
let tenantCap = 100;

export interface MetricsOptions {
  /** METRICS_TENANT_LABELS: label the per-tenant metrics with `tenant_id`. */
  tenantLabels: boolean;
  /** METRICS_TENANT_LABEL_CAP: distinct tenants per process before "other". */
  tenantLabelCap: number;
}

/** Set from config once per process (composition/core.ts). */
export function configureMetrics(opts: MetricsOptions): void {
  tenantLabels = opts.tenantLabels;
  tenantCap = opts.tenantLabelCap;
  tenants.setCap(opts.tenantLabelCap);
}

/** The `tenant_id` label: empty (no label) unless METRICS_TENANT_LABELS is on; capped. */
export function tenantLabel(tenantId: string | undefined): string {
  if (!tenantLabels || !tenantId) return '';
  return tenants.of(tenantId);
}

/** Whether per-tenant labels are on, and their cap (the credit balance gauge reads that many tenants). */
export function tenantLabelSettings(): { enabled: boolean; cap: number } {
  return { enabled: tenantLabels, cap: tenantCap };
}

let defaultsStarted = false;
/** Node process metrics (`process_*`, `nodejs_*`): started by the API and worker entry points only. */
export function startDefaultMetrics(): void {
  if (defaultsStarted) return;
  defaultsStarted = true;
  collectDefaultMetrics({ register: registry });
}

// ---------- definitions ----------

export type MetricPlatform = 'whatsapp' | 'instagram' | 'webchat';

export const webhooksReceived = new Counter({
  name: 'parley_webhooks_received_total',
  help: 'Meta webhook deliveries (POST) received, accepted or not.',
  labelNames: ['platform'] as const,
  registers: [registry],
});
export const webhooksRefused = new Counter({
  name: 'parley_webhooks_refused_total',
  help: 'Meta webhook deliveries answered with an error, by reason (invalid_signature, invalid_payload, too_large, rate_limited, forbidden, unavailable = 503 Meta retries, error = other 5xx).',
  labelNames: ['platform', 'reason'] as const,
  registers: [registry],
});
export const inboundMessages = new Counter({
  name: 'parley_inbound_messages_total',
  help: 'Inbound messages accepted from a channel and handed to their lead workflows (a redelivery counts again).',
  labelNames: ['platform', 'tenant_id'] as const,
  registers: [registry],
});
export const turns = new Counter({
  name: 'parley_turns_total',
  help: 'Reply turns (replyTurn activity) by outcome: sent, held, handoff, no_credit, not_needed, recorded (no reply asked), error.',
  labelNames: ['outcome', 'tenant_id'] as const,
  registers: [registry],
});
export const replies = new Counter({
  name: 'parley_replies_total',
  help: 'Outbound send attempts by outcome: sent, already_sent, retrying (retryable failure), failed (permanent), waiting (circuit open, channel disabled, tenant suspended).',
  labelNames: ['platform', 'outcome'] as const,
  registers: [registry],
});
export const sendDuration = new Histogram({
  name: 'parley_send_duration_seconds',
  help: "The provider call of a send (Graph API POST; web chat: the database write), by outcome: ok, error (the provider's error answer), network.",
  labelNames: ['platform', 'outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  registers: [registry],
});
export const graphErrors = new Counter({
  name: 'parley_graph_errors_total',
  help: 'Graph API error answers by error.code and class (rate_limited, transient, reengagement, permanent, auth, spam_limited, unknown).',
  labelNames: ['platform', 'code', 'class'] as const,
  registers: [registry],
});
export const llmDuration = new Histogram({
  name: 'parley_llm_request_duration_seconds',
  help: 'LLM chat completion calls by model, purpose (reply, bump_up, extraction…) and outcome (ok, error).',
  labelNames: ['model', 'purpose', 'outcome'] as const,
  buckets: [0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
  registers: [registry],
});
export const llmTokens = new Counter({
  name: 'parley_llm_tokens_total',
  help: 'LLM tokens by model and kind (prompt, completion).',
  labelNames: ['model', 'kind', 'tenant_id'] as const,
  registers: [registry],
});
export const llmCost = new Counter({
  name: 'parley_llm_cost_usd_total',
  help: 'Estimated LLM cost in US dollars (the LLM_PRICES table) by model.',
  labelNames: ['model', 'tenant_id'] as const,
  registers: [registry],
});
export const credits = new Counter({
  name: 'parley_credits_total',
  help: 'Credits reserved (taken from the balance for a reply), captured (the reply went out) and released (given back).',
  labelNames: ['operation', 'tenant_id'] as const,
  registers: [registry],
});
export const creditReservationsRefused = new Counter({
  name: 'parley_credit_reservations_refused_total',
  help: 'Reservations refused, by reason: no_credit (balance too low), suspended, channel_disabled.',
  labelNames: ['reason', 'tenant_id'] as const,
  registers: [registry],
});
export const rateLimitWaits = new Counter({
  name: 'parley_rate_limit_waits_total',
  help: 'Sends held by the send rate limits, by limit (pair, number) and outcome (slept: waited in the activity; deferred: retried later by Temporal).',
  labelNames: ['limit', 'outcome'] as const,
  registers: [registry],
});
export const rateLimitWaitSeconds = new Counter({
  name: 'parley_rate_limit_wait_seconds_total',
  help: 'Time sends slept in the activity for a send rate limit slot.',
  registers: [registry],
});
export const circuitsOpened = new Counter({
  name: 'parley_channel_circuits_opened_total',
  help: "Channel circuit breakers opened by a send (the provider refused the channel's token).",
  labelNames: ['platform'] as const,
  registers: [registry],
});
export const deadLettersParked = new Counter({
  name: 'parley_dead_letters_parked_total',
  help: 'Operations parked as dead letters by lead workflows, by kind.',
  labelNames: ['kind'] as const,
  registers: [registry],
});
export const extractions = new Counter({
  name: 'parley_extractions_total',
  help: 'Lead extractions by outcome: ok, failed (after all retries).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
export const extractionFailures = new Counter({
  name: 'parley_extraction_failures_total',
  help: 'Lead extractions that failed after all retries, by type: alert on its rate.',
  labelNames: ['type'] as const,
  registers: [registry],
});
export const extractionAttemptFailures = new Counter({
  name: 'parley_extraction_attempt_failures_total',
  help: 'Failed lead extraction attempts (Temporal retries them), by type (llm, extraction_invalid).',
  labelNames: ['type'] as const,
  registers: [registry],
});
export const webChatStreams = new Gauge({
  name: 'parley_webchat_streams_open',
  help: 'Web chat event streams (SSE) open on this API process.',
  registers: [registry],
});
export const outboundWebhookDeliveries = new Counter({
  name: 'parley_outbound_webhook_deliveries_total',
  help: "Outbound webhook delivery attempts to tenants' endpoints by event and outcome (delivered, failed = will retry, gave_up = marked failed, disabled = endpoint disabled).",
  labelNames: ['event', 'outcome'] as const,
  registers: [registry],
});
export const outboundWebhookDuration = new Histogram({
  name: 'parley_outbound_webhook_delivery_duration_seconds',
  help: 'Outbound webhook delivery attempts: time to the endpoint\'s answer.',
  labelNames: ['outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  registers: [registry],
});

// Database gauges: set by the API's GET /metrics at each scrape (api/routes/metrics.ts).
export const channelCircuits = new Gauge({
  name: 'parley_channel_circuits',
  help: 'Channel accounts (not deleted) by platform and circuit state: open (sends wait), closed, disabled (held like open).',
  labelNames: ['platform', 'state'] as const,
  registers: [registry],
});
export const deadLettersOpen = new Gauge({
  name: 'parley_dead_letters_open',
  help: 'Open dead letters (parked sends and turns waiting for replay or discard); by tenant with METRICS_TENANT_LABELS.',
  labelNames: ['tenant_id'] as const,
  registers: [registry],
});
export const creditBalance = new Gauge({
  name: 'parley_credit_balance',
  help: 'Credit balance of the METRICS_TENANT_LABEL_CAP tenants with the lowest balances (only with METRICS_TENANT_LABELS).',
  labelNames: ['tenant_id'] as const,
  registers: [registry],
});

/** Every metric name defined here (the dashboard check compares panels' expressions against it). */
export function parleyMetricNames(): string[] {
  return registry.getMetricsAsArray().map((m) => m.name);
}

// ---------- recording ----------

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* a metric must never fail the work it describes */
  }
}

const WEBHOOK_REFUSALS: Record<number, string> = {
  400: 'invalid_payload',
  401: 'invalid_signature',
  403: 'forbidden',
  413: 'too_large',
  415: 'invalid_payload',
  429: 'rate_limited',
  503: 'unavailable',
};

/** The reason label of a webhook answered with this status (undefined: accepted). */
export function webhookRefusalReason(status: number): string | undefined {
  if (status < 400) return undefined;
  return WEBHOOK_REFUSALS[status] ?? (status >= 500 ? 'error' : 'other');
}

export function recordWebhook(platform: MetricPlatform, status: number): void {
  safely(() => {
    webhooksReceived.inc({ platform });
    const reason = webhookRefusalReason(status);
    if (reason) webhooksRefused.inc({ platform, reason });
  });
}

export function recordInbound(platform: MetricPlatform, tenantId: string | undefined, n = 1): void {
  if (n <= 0) return;
  safely(() => inboundMessages.inc({ platform, tenant_id: tenantLabel(tenantId) }, n));
}

export type TurnOutcome = 'sent' | 'held' | 'handoff' | 'rich' | 'no_credit' | 'not_needed' | 'recorded' | 'error';
export function recordTurn(outcome: TurnOutcome, tenantId?: string): void {
  safely(() => turns.inc({ outcome, tenant_id: tenantLabel(tenantId) }));
}

export type ReplyOutcome = 'sent' | 'already_sent' | 'retrying' | 'failed' | 'waiting';
export function recordReply(platform: MetricPlatform, outcome: ReplyOutcome): void {
  safely(() => replies.inc({ platform, outcome }));
}

export function recordSendDuration(platform: MetricPlatform, outcome: 'ok' | 'error' | 'network', seconds: number): void {
  safely(() => sendDuration.observe({ platform, outcome }, seconds));
}

export function recordGraphError(platform: MetricPlatform, code: number | undefined, cls: string): void {
  safely(() => graphErrors.inc({ platform, code: code === undefined ? 'none' : graphCodes.of(code), class: cls }));
}

export function recordLlmCall(input: { model: string; purpose: string; outcome: 'ok' | 'error'; seconds: number }): void {
  safely(() => llmDuration.observe({ model: models.of(input.model), purpose: input.purpose, outcome: input.outcome }, input.seconds));
}

export function recordLlmUsage(input: { model: string; tenantId?: string; promptTokens: number; completionTokens: number; costMicros: number }): void {
  safely(() => {
    const model = models.of(input.model);
    const tenant_id = tenantLabel(input.tenantId);
    if (input.promptTokens > 0) llmTokens.inc({ model, kind: 'prompt', tenant_id }, input.promptTokens);
    if (input.completionTokens > 0) llmTokens.inc({ model, kind: 'completion', tenant_id }, input.completionTokens);
    if (input.costMicros > 0) llmCost.inc({ model, tenant_id }, input.costMicros / 1_000_000);
  });
}

export function recordCredits(operation: 'reserved' | 'captured' | 'released', amount: number, tenantId?: string): void {
  if (!(amount > 0)) return;
  safely(() => credits.inc({ operation, tenant_id: tenantLabel(tenantId) }, amount));
}

export function recordCreditRefused(reason: 'no_credit' | 'suspended' | typeof FailureType.ChannelDisabled, tenantId?: string): void {
  safely(() => creditReservationsRefused.inc({ reason, tenant_id: tenantLabel(tenantId) }));
}

export function recordRateLimitWait(limit: 'pair' | 'number', outcome: 'slept' | 'deferred', waitMs: number): void {
  safely(() => {
    rateLimitWaits.inc({ limit, outcome });
    if (outcome === 'slept' && waitMs > 0) rateLimitWaitSeconds.inc(waitMs / 1000);
  });
}

export function recordCircuitOpened(platform: MetricPlatform): void {
  safely(() => circuitsOpened.inc({ platform }));
}

export function recordDeadLetterParked(kind: string): void {
  safely(() => deadLettersParked.inc({ kind: kind.slice(0, 40) }));
}

export function recordExtraction(outcome: 'ok' | 'failed', type?: string): void {
  safely(() => {
    extractions.inc({ outcome });
    if (outcome === 'failed') extractionFailures.inc({ type: type ?? 'unknown' });
  });
}

export function recordExtractionAttemptFailure(type: string): void {
  safely(() => extractionAttemptFailures.inc({ type }));
}

export function recordWebChatStream(delta: 1 | -1): void {
  safely(() => webChatStreams.inc(delta));
}

/**
 * The outbound webhook delivery worker (issue 12, outbound webhooks) calls this once per
 * delivery attempt. `event` is one of the fixed event names (lead.created, message.sent, …).
 */
export type OutboundWebhookOutcome = 'delivered' | 'failed' | 'gave_up' | 'disabled';
export function recordOutboundWebhookDelivery(input: { event: string; outcome: OutboundWebhookOutcome; durationMs?: number }): void {
  safely(() => {
    const event = /^[a-z_]{1,30}\.[a-z_]{1,30}$/.test(input.event) ? input.event : OTHER;
    outboundWebhookDeliveries.inc({ event, outcome: input.outcome });
    if (input.durationMs !== undefined) outboundWebhookDuration.observe({ outcome: input.outcome }, input.durationMs / 1000);
  });
}

/** What the database gauges read (services.deadLetters.gauges() and the lowest credit balances). */
export interface DatabaseGauges {
  circuits: { platform: string; state: string; n: number }[];
  openDeadLetters: { tenantId: string; n: number }[];
  lowestBalances?: { tenantId: string; balance: number }[];
}

/** Replace the database gauges' values (GET /metrics, before each exposition). */
export function setDatabaseGauges(g: DatabaseGauges): void {
  channelCircuits.reset();
  for (const c of g.circuits) channelCircuits.set({ platform: c.platform, state: c.state }, c.n);
  deadLettersOpen.reset();
  if (tenantLabels) {
    const byLabel = new Map<string, number>();
    for (const d of g.openDeadLetters) {
      const l = tenantLabel(d.tenantId);
      byLabel.set(l, (byLabel.get(l) ?? 0) + d.n);
    }
    for (const [l, n] of byLabel) deadLettersOpen.set({ tenant_id: l }, n);
  } else {
    deadLettersOpen.set({ tenant_id: '' }, g.openDeadLetters.reduce((s, d) => s + d.n, 0));
  }
  creditBalance.reset();
  // the query returns at most METRICS_TENANT_LABEL_CAP tenants (the lowest balances): bounded as is
  if (tenantLabels) for (const b of g.lowestBalances ?? []) creditBalance.set({ tenant_id: b.tenantId }, b.balance);
}

/** The exposition (Prometheus text format 0.0.4). */
export async function exposition(): Promise<string> {
  return registry.metrics();
}
export const EXPOSITION_CONTENT_TYPE = registry.contentType;
