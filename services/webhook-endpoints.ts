/**
 * Outbound webhooks (issue 12): a tenant's endpoints, their signing secrets (encrypted at rest,
 * shown once), the outbox of deliveries and what the delivery workflow records of each attempt.
 *
 * The outbox: `enqueueWebhookEvent(tx, …)` inserts one `webhook_deliveries` row per enabled
 * endpoint of the tenant that subscribed to the event type, in one INSERT … SELECT run in the
 * transaction that records the fact itself (the lead event, the inbound message, the circuit).
 * The worker's relay (workers/webhook-relay.ts) starts a delivery workflow for each row not yet
 * dispatched; the workflow id is the row's id, so a second start is refused by Temporal.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Db, DbTransaction } from '../db/client';
import { auditLog, webhookDeliveries, webhookEndpoints } from '../db/schema';
import type { SecretBox } from '../lib/crypto';
import { AppError } from '../lib/errors';
import { afterCursor, isUuid, keyset, toIso, withoutNul } from './db-util';

export const WEBHOOK_EVENT_TYPES = [
  'lead.created',
  'lead.stage_changed',
  'lead.handoff_requested',
  'lead.qualified',
  'extraction.updated',
  'message.received',
  'message.sent',
  'message.failed',
  'dead_letter.opened',
  'channel.circuit_opened',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'delivering', 'succeeded', 'failed'] as const;

/** The longest excerpt of an endpoint's answer kept per delivery. */
export const RESPONSE_EXCERPT_CHARS = 500;

/** The associated data an endpoint's encrypted secret is bound to (its row). */
export function webhookSecretContext(endpointId: string): string {
  return `webhook_endpoints:${endpointId}:secret`;
}

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes (the HMAC key is the decoded bytes). */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * The webhook event a lead event reports, if any: the lead workflow already records these
 * facts as lead events (services/leads.ts recordEvent), so the outbox is written there.
 */
export function webhookEventOfLeadEvent(type: string, data: unknown): WebhookEventType | undefined {
  const d = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  switch (type) {
    case 'stage_changed':
      return 'lead.stage_changed';
    case 'mode_changed':
      return d.to === 'human' ? 'lead.handoff_requested' : undefined;
    case 'llm_handoff':
      return undefined; // followed by mode_changed → human
    case 'extraction_updated':
      return 'extraction.updated';
    case 'dead_letter':
      // one per parking (attempts 1 or absent); a re-park after a failed replay is not a new dead letter
      return d.attempts === undefined || d.attempts === 1 ? 'dead_letter.opened' : undefined;
    case 'delivery_failed':
      return 'message.failed';
    case 'reply_failed':
      return d.step === 'delivery' ? 'message.failed' : undefined;
    default:
      return undefined;
  }
}

type Tx = Pick<Db, 'execute'> | DbTransaction;

/** One event of a batch for `enqueueWebhookEvents`. */
export interface WebhookEventInput {
  type: WebhookEventType;
  data: Record<string, unknown>;
  eventId: string;
  at?: string;
}

/** The INSERT of `enqueueWebhookEvents` as SQL, to run as a CTE of another statement (`webhookEventsCte`). */
function insertEventsSql(tenantId: string, raw: WebhookEventInput[], returning: boolean) {
  const now = new Date().toISOString();
  const events = withoutNul(raw).map((e) => ({ id: e.eventId, type: e.type, payload: { type: e.type, timestamp: e.at ?? now, data: e.data } }));
  return sql`
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, payload)
    SELECT e.tenant_id, e.id, ev->>'id', ev->>'type', ev->'payload'
    FROM jsonb_array_elements(${JSON.stringify(events)}::jsonb) ev
    JOIN webhook_endpoints e ON e.tenant_id = ${tenantId} AND e.disabled_at IS NULL AND (ev->>'type') = ANY(e.events)
    ON CONFLICT (endpoint_id, event_id) DO NOTHING${returning ? sql` RETURNING 1 AS n` : sql``}`;
}

/**
 * The outbox write as a CTE (`tx.with(cte).update(…)`), so the events are written by the
 * statement that records the fact, with no round trip of their own; undefined when there are none.
 */
export function webhookEventsCte(tx: Pick<Db, '$with'>, tenantId: string, events: WebhookEventInput[]) {
  if (events.length === 0) return undefined;
  return tx.$with('webhook_outbox', { n: sql<number>`n` }).as(insertEventsSql(tenantId, events, true));
}

/**
 * The outbox write of several events of one tenant in one statement (e.g. the messages of one
 * inbound batch): nothing is written, and nothing else is read, when no endpoint wants them.
 */
export async function enqueueWebhookEvents(tx: Tx, tenantId: string, raw: WebhookEventInput[]): Promise<void> {
  if (raw.length === 0) return;
  await tx.execute(insertEventsSql(tenantId, raw, false));
}

/**
 * The outbox write: one delivery per enabled endpoint of the tenant subscribed to `type`, in the
 * caller's transaction (or statement). `eventId` names the event (the `webhook-id` header); a
 * repeated call with the same id adds nothing (unique per endpoint and event).
 */
export async function enqueueWebhookEvent(tx: Tx, input: { tenantId: string; type: WebhookEventType; data: Record<string, unknown>; eventId?: string; at?: string }): Promise<void> {
  await enqueueWebhookEvents(tx, input.tenantId, [{ type: input.type, data: input.data, eventId: input.eventId ?? `evt_${randomUUID()}`, at: input.at }]);
}

type EndpointRow = typeof webhookEndpoints.$inferSelect;
type DeliveryRow = typeof webhookDeliveries.$inferSelect;

function present(row: EndpointRow) {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    events: row.events,
    enabled: row.disabledAt === null,
    disabledAt: toIso(row.disabledAt),
    disabledReason: row.disabledReason,
    consecutiveFailures: row.consecutiveFailures,
    createdAt: toIso(row.createdAt)!,
    updatedAt: toIso(row.updatedAt)!,
  };
}
export type WebhookEndpointView = ReturnType<typeof present>;

function presentDelivery(row: DeliveryRow) {
  return {
    id: row.id,
    endpointId: row.endpointId,
    eventId: row.eventId,
    eventType: row.eventType,
    status: row.status,
    attempts: row.attempts,
    lastStatus: row.lastStatus,
    lastResponse: row.lastResponse,
    lastAttemptAt: toIso(row.lastAttemptAt),
    completedAt: toIso(row.completedAt),
    createdAt: toIso(row.createdAt)!,
    updatedAt: toIso(row.updatedAt)!,
  };
}

/** What one delivery attempt needs (the secret decrypted: never logged, never in a Temporal payload). */
export interface DeliveryTarget {
  deliveryId: string;
  tenantId: string;
  endpointId: string;
  url: string;
  secret: string;
  eventId: string;
  /** e.g. `message.received` (the metrics' event label). */
  eventType: string;
  body: string;
  status: string;
  endpointEnabled: boolean;
}

export function createWebhookEndpointService(db: Db, box: SecretBox) {
  async function endpointRow(tenantId: string, id: string): Promise<EndpointRow> {
    if (!isUuid(id)) throw new AppError('not_found', 'webhook endpoint not found');
    const [row] = await db
      .select()
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)));
    if (!row) throw new AppError('not_found', 'webhook endpoint not found');
    return row;
  }

  return {
    async create(tenantId: string, raw: { url: string; events: WebhookEventType[]; description?: string }): Promise<WebhookEndpointView & { secret: string }> {
      const input = withoutNul(raw);
      const id = randomUUID();
      const secret = generateWebhookSecret();
      const [row] = await db
        .insert(webhookEndpoints)
        .values({ id, tenantId, url: input.url, events: [...new Set(input.events)], description: input.description ?? null, secretEnc: box.encrypt(secret, webhookSecretContext(id)) })
        .returning();
      if (!row) throw new Error('webhook endpoint insert returned nothing');
      return { ...present(row), secret };
    },

    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.tenantId, tenantId), afterCursor(webhookEndpoints, opts.cursor, 'asc')))
        .orderBy(webhookEndpoints.createdAt, webhookEndpoints.id)
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },

    async get(tenantId: string, id: string): Promise<WebhookEndpointView> {
      return present(await endpointRow(tenantId, id));
    },

    /** `enabled: true` re-enables a disabled endpoint (its failure count starts again). */
    async update(tenantId: string, id: string, raw: { url?: string; events?: WebhookEventType[]; description?: string | null; enabled?: boolean }): Promise<WebhookEndpointView> {
      const input = withoutNul(raw);
      const before = await endpointRow(tenantId, id);
      const set: Partial<typeof webhookEndpoints.$inferInsert> = { updatedAt: sql`now()` as unknown as string };
      if (input.url !== undefined) set.url = input.url;
      if (input.events !== undefined) set.events = [...new Set(input.events)];
      if (input.description !== undefined) set.description = input.description;
      if (input.enabled === true && before.disabledAt) Object.assign(set, { disabledAt: null, disabledReason: null, consecutiveFailures: 0 });
      if (input.enabled === false && !before.disabledAt) Object.assign(set, { disabledAt: sql`now()`, disabledReason: 'manual' });
      const [row] = await db
        .update(webhookEndpoints)
        .set(set)
        .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
        .returning();
      if (!row) throw new AppError('not_found', 'webhook endpoint not found');
      return present(row);
    },

    /** Deleted with its deliveries; a delivery still running finds the endpoint gone and stops. */
    async remove(tenantId: string, id: string): Promise<WebhookEndpointView> {
      const row = await endpointRow(tenantId, id);
      await db.delete(webhookEndpoints).where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)));
      return present(row);
    },

    /** A new secret, answered once; the old one stops signing at once. */
    async rotateSecret(tenantId: string, id: string): Promise<WebhookEndpointView & { secret: string }> {
      await endpointRow(tenantId, id);
      const secret = generateWebhookSecret();
      const [row] = await db
        .update(webhookEndpoints)
        .set({ secretEnc: box.encrypt(secret, webhookSecretContext(id)), updatedAt: sql`now()` })
        .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
        .returning();
      if (!row) throw new AppError('not_found', 'webhook endpoint not found');
      return { ...present(row), secret };
    },

    /** An endpoint's deliveries, newest first. */
    async deliveries(tenantId: string, endpointId: string, opts: { limit: number; cursor?: string }) {
      await endpointRow(tenantId, endpointId);
      const rows = await db
        .select()
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.tenantId, tenantId), eq(webhookDeliveries.endpointId, endpointId), afterCursor(webhookDeliveries, opts.cursor, 'desc')))
        .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(presentDelivery), nextCursor };
    },

    /**
     * Deliver again a delivery that ended (succeeded or failed): a new generation, picked up by the
     * relay. One still pending or delivering → 409. A disabled endpoint must be re-enabled first (409).
     */
    async retryDelivery(tenantId: string, endpointId: string, deliveryId: string) {
      const endpoint = await endpointRow(tenantId, endpointId);
      if (!isUuid(deliveryId)) throw new AppError('not_found', 'delivery not found');
      if (endpoint.disabledAt) throw new AppError('conflict', 'the endpoint is disabled: enable it (PATCH { "enabled": true }) before retrying');
      const [row] = await db
        .update(webhookDeliveries)
        .set({ status: 'pending', generation: sql`${webhookDeliveries.generation} + 1`, dispatchedAt: null, completedAt: null, updatedAt: sql`now()` })
        .where(
          and(
            eq(webhookDeliveries.tenantId, tenantId),
            eq(webhookDeliveries.endpointId, endpointId),
            eq(webhookDeliveries.id, deliveryId),
            sql`${webhookDeliveries.status} in ('succeeded', 'failed')`,
          ),
        )
        .returning();
      if (row) return presentDelivery(row);
      const [exists] = await db
        .select({ status: webhookDeliveries.status })
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.tenantId, tenantId), eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.id, deliveryId)));
      if (!exists) throw new AppError('not_found', 'delivery not found');
      throw new AppError('conflict', `the delivery is ${exists.status}: only a finished delivery can be retried`);
    },

    // ---------------------------------------------------------------- for the relay and the delivery activities

    /** Deliveries not yet handed to a workflow, oldest first. */
    async undispatched(limit: number): Promise<{ id: string; generation: number }[]> {
      return db
        .select({ id: webhookDeliveries.id, generation: webhookDeliveries.generation })
        .from(webhookDeliveries)
        .where(isNull(webhookDeliveries.dispatchedAt))
        .orderBy(webhookDeliveries.createdAt)
        .limit(limit);
    },

    async markDispatched(id: string, generation: number): Promise<void> {
      await db
        .update(webhookDeliveries)
        .set({ dispatchedAt: sql`now()` })
        .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.generation, generation)));
    },

    /** The delivery with its endpoint's url and decrypted secret; undefined when it (or its endpoint) is gone. */
    async target(deliveryId: string): Promise<DeliveryTarget | undefined> {
      const [row] = await db
        .select({ d: webhookDeliveries, e: webhookEndpoints })
        .from(webhookDeliveries)
        .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
        .where(eq(webhookDeliveries.id, deliveryId));
      if (!row) return undefined;
      return {
        deliveryId,
        tenantId: row.d.tenantId,
        endpointId: row.e.id,
        url: row.e.url,
        secret: box.decrypt(row.e.secretEnc, webhookSecretContext(row.e.id)),
        eventId: row.d.eventId,
        eventType: row.d.eventType,
        body: JSON.stringify(row.d.payload),
        status: row.d.status,
        endpointEnabled: row.e.disabledAt === null,
      };
    },

    /** One attempt's outcome (HTTP status or none, an excerpt of the answer or the error). */
    async recordAttempt(deliveryId: string, attempt: { status: number | null; excerpt: string }): Promise<void> {
      await db
        .update(webhookDeliveries)
        .set({
          status: sql`case when ${webhookDeliveries.status} = 'pending' then 'delivering' else ${webhookDeliveries.status} end`,
          attempts: sql`${webhookDeliveries.attempts} + 1`,
          lastStatus: attempt.status,
          lastResponse: withoutNul(attempt.excerpt).slice(0, RESPONSE_EXCERPT_CHARS),
          lastAttemptAt: sql`now()`,
          updatedAt: sql`now()`,
        })
        .where(eq(webhookDeliveries.id, deliveryId));
    },

    /**
     * The delivery ended. Success resets the endpoint's failure count; a failure adds one, and the
     * `disableAfter`-th in a row disables the endpoint, with an audit log entry. Idempotent per
     * generation (a retried call changes nothing once the row is finished).
     */
    async finish(deliveryId: string, outcome: { succeeded: boolean; reason?: string; disableAfter: number }): Promise<{ endpointDisabled: boolean }> {
      return db.transaction(async (tx) => {
        const [d] = await tx
          .update(webhookDeliveries)
          .set({ status: outcome.succeeded ? 'succeeded' : 'failed', completedAt: sql`now()`, updatedAt: sql`now()` })
          .where(and(eq(webhookDeliveries.id, deliveryId), sql`${webhookDeliveries.status} in ('pending', 'delivering')`))
          .returning({ endpointId: webhookDeliveries.endpointId, tenantId: webhookDeliveries.tenantId });
        if (!d) return { endpointDisabled: false };
        if (outcome.succeeded) {
          await tx.update(webhookEndpoints).set({ consecutiveFailures: 0 }).where(eq(webhookEndpoints.id, d.endpointId));
          return { endpointDisabled: false };
        }
        const [e] = await tx
          .update(webhookEndpoints)
          .set({ consecutiveFailures: sql`${webhookEndpoints.consecutiveFailures} + 1` })
          .where(eq(webhookEndpoints.id, d.endpointId))
          .returning({ failures: webhookEndpoints.consecutiveFailures, disabledAt: webhookEndpoints.disabledAt });
        if (!e || e.disabledAt || e.failures < outcome.disableAfter) return { endpointDisabled: false };
        await tx
          .update(webhookEndpoints)
          .set({ disabledAt: sql`now()`, disabledReason: 'failures', updatedAt: sql`now()` })
          .where(eq(webhookEndpoints.id, d.endpointId));
        await tx.insert(auditLog).values({
          tenantId: d.tenantId,
          action: 'webhook_endpoint.disabled',
          target: { webhookEndpointId: d.endpointId },
          status: 200,
          after: { reason: 'failures', consecutiveFailures: e.failures, lastDeliveryId: deliveryId, lastError: (outcome.reason ?? '').slice(0, 300) },
        });
        return { endpointDisabled: true };
      });
    },
  };
}

export type WebhookEndpointService = ReturnType<typeof createWebhookEndpointService>;

/**
 * Key rotation for webhook signing secrets, like `rewrapChannelSecrets`: re-encrypt every secret
 * not in the current format under the current key; a row changed meanwhile is left for the next
 * run; rows no configured key opens are listed. `npm run secrets:rewrap` runs it.
 */
export async function rewrapWebhookSecrets(db: Db, box: SecretBox): Promise<{ checked: number; rewrapped: number; failed: string[] }> {
  const rows = await db.select({ id: webhookEndpoints.id, secretEnc: webhookEndpoints.secretEnc }).from(webhookEndpoints);
  let rewrapped = 0;
  const failed: string[] = [];
  for (const r of rows) {
    if (!box.needsRewrap(r.secretEnc)) continue;
    try {
      const secretEnc = box.encrypt(box.decrypt(r.secretEnc, webhookSecretContext(r.id)), webhookSecretContext(r.id));
      const updated = await db
        .update(webhookEndpoints)
        .set({ secretEnc })
        .where(and(eq(webhookEndpoints.id, r.id), eq(webhookEndpoints.secretEnc, r.secretEnc)))
        .returning({ id: webhookEndpoints.id });
      rewrapped += updated.length;
    } catch {
      failed.push(r.id);
    }
  }
  return { checked: rows.length, rewrapped, failed };
}
