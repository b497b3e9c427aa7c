/**
 * The audit log: one row per change a tenant made through the API (api/middleware/audit.ts
 * writes it after the answer): which key, what (method and route), the target ids, the status,
 * the request body with secrets redacted, and before/after where a route records a setting's
 * change. Newest first, paginated.
 */
import { and, desc, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { auditLog } from '../db/schema';
import { afterCursor, keyset, toIso } from './db-util';

/** Field names whose values never enter the audit log (tokens, secrets, keys, passwords). */
const SECRET_FIELD = /token|secret|password|passphrase|^key$|apikey|api_key|authorization|credential/i;
/** Strings longer than this are cut in the stored request (a prompt stays readable, a blob does not fill the table). */
const MAX_STRING = 2000;
const MAX_DEPTH = 6;
const MAX_KEYS = 100;

/** A copy of `value` safe to store: secret fields replaced by "[redacted]", long strings cut, depth and width bounded. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  if (depth >= MAX_DEPTH) return '[nested]';
  if (Array.isArray(value)) return value.slice(0, MAX_KEYS).map((v) => redactSecrets(v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, MAX_KEYS)) {
      out[k] = SECRET_FIELD.test(k) && v !== null && v !== undefined ? '[redacted]' : redactSecrets(v, depth + 1);
    }
    return out;
  }
  return undefined;
}

export interface AuditEntry {
  tenantId: string;
  actorKeyId?: string;
  actorRole?: string;
  action: string;
  target?: Record<string, string>;
  status: number;
  request?: unknown;
  before?: unknown;
  after?: unknown;
}

type AuditRow = typeof auditLog.$inferSelect;

function present(row: AuditRow) {
  return {
    id: row.id,
    at: toIso(row.createdAt),
    actor: { keyId: row.actorKeyId, role: row.actorRole },
    action: row.action,
    target: row.target ?? {},
    status: row.status,
    request: row.request ?? null,
    before: row.before ?? null,
    after: row.after ?? null,
  };
}

export function createAuditLogService(db: Db) {
  return {
    async record(entry: AuditEntry): Promise<void> {
      await db.insert(auditLog).values({
        tenantId: entry.tenantId,
        actorKeyId: entry.actorKeyId ?? null,
        actorRole: entry.actorRole ?? null,
        action: entry.action,
        target: entry.target && Object.keys(entry.target).length ? entry.target : null,
        status: entry.status,
        request: entry.request === undefined ? null : redactSecrets(entry.request),
        before: entry.before === undefined ? null : redactSecrets(entry.before),
        after: entry.after === undefined ? null : redactSecrets(entry.after),
      });
    },

    /** Newest first. */
    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.tenantId, tenantId), afterCursor(auditLog, opts.cursor, 'desc')))
        .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },
  };
}

export type AuditLogService = ReturnType<typeof createAuditLogService>;
