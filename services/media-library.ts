/**
 * The tenant's media library (issue 11): files kept to send later, and the media ids Meta gave
 * each WhatsApp channel for them.
 *
 * - Storage: PostgreSQL bytea (`media_library.data`), read in slices; per file at most
 *   MEDIA_LIBRARY_MAX_BYTES, per tenant at most MEDIA_LIBRARY_MAX_ITEMS files and
 *   MEDIA_LIBRARY_MAX_TENANT_BYTES bytes. The quota check and the insert run under a per-tenant
 *   transaction-scoped advisory lock, so two uploads at once cannot both squeeze under it.
 * - Dedup: one row per (tenant, sha256): a re-upload of the same bytes answers the stored row.
 * - Meta media ids: one per (file, channel), with the time the library stops using it. The
 *   first writer wins; a later writer replaces it only once it has expired (or was reported
 *   unknown by Meta: `forgetUpload`).
 */
import { and, count, desc, eq, sql, sum } from 'drizzle-orm';
import type { MediaKind } from '../contract/media-types';
import { mediaFileProblem, type MediaType } from '../contract/rich';
import type { Db } from '../db/client';
import { agentAssets, agents, mediaChannelUploads, mediaLibrary, tenants } from '../db/schema';
import { AppError } from '../lib/errors';
import { afterCursor, isUuid, keyset, PG_FOREIGN_KEY_VIOLATION, pgErrorCode, toIso } from './db-util';

/** A library file as the API shows it (no bytes). */
export interface MediaItemView {
  id: string;
  kind: MediaKind;
  mimeType: string;
  filename: string | null;
  sizeBytes: number;
  sha256: string;
  createdAt: string;
}

/** One file with the WhatsApp channels it is uploaded to. */
export interface MediaItemDetail extends MediaItemView {
  metaUploads: { channelAccountId: string; uploadedAt: string; expiresAt: string }[];
}

export interface MediaLibraryLimits {
  maxItems: number;
  maxTenantBytes: number;
}

const viewColumns = {
  id: mediaLibrary.id,
  tenantId: mediaLibrary.tenantId,
  kind: mediaLibrary.kind,
  mimeType: mediaLibrary.mimeType,
  filename: mediaLibrary.filename,
  sizeBytes: mediaLibrary.sizeBytes,
  sha256: mediaLibrary.sha256,
  createdAt: mediaLibrary.createdAt,
};

type ViewRow = { id: string; kind: MediaKind; mimeType: string; filename: string | null; sizeBytes: number; sha256: string; createdAt: string };

function present(r: ViewRow): MediaItemView {
  return { id: r.id, kind: r.kind, mimeType: r.mimeType, filename: r.filename, sizeBytes: r.sizeBytes, sha256: r.sha256, createdAt: toIso(r.createdAt) ?? r.createdAt };
}

const notFound = () => new AppError('not_found', 'media not found');

/** 409 `media_in_use`: agents' assets name the file. */
function inUse(id: string, users: { agentId: string; agentName: string; assetId: string; assetName: string }[]): AppError {
  const named = users.length ? users.map((u) => `"${u.agentName}" (agent ${u.agentId}, asset "${u.assetName}")`).join(', ') : 'an agent';
  return new AppError('conflict', `media ${id} is an asset of ${named}: delete those assets first (DELETE /v1/agents/{agentId}/assets/{assetId})`, { agents: users }, 'media_in_use');
}

export function createMediaLibraryService(db: Db) {
  async function row(tenantId: string, id: string): Promise<(ViewRow & { tenantId: string }) | undefined> {
    if (!isUuid(id)) return undefined;
    const [r] = await db
      .select(viewColumns)
      .from(mediaLibrary)
      .where(and(eq(mediaLibrary.tenantId, tenantId), eq(mediaLibrary.id, id)));
    return r;
  }

  return {
    /**
     * Keep a file (already checked: type, magic bytes, size). Same bytes in this tenant → the
     * stored file and `created: false`. Over the tenant's quota → 409 `media_quota_exceeded`.
     */
    async add(
      tenantId: string,
      input: { kind: MediaKind; mimeType: string; filename?: string; sha256: string; data: Buffer },
      limits: MediaLibraryLimits,
    ): Promise<{ item: MediaItemView; created: boolean }> {
      return db.transaction(async (tx) => {
        // one uploader of this tenant at a time between the quota check and the insert
        await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`media_library:${tenantId}`}))`);
        const [same] = await tx
          .select(viewColumns)
          .from(mediaLibrary)
          .where(and(eq(mediaLibrary.tenantId, tenantId), eq(mediaLibrary.sha256, input.sha256)));
        if (same) return { item: present(same), created: false };
        const [usage] = await tx
          .select({ items: count(), bytes: sum(mediaLibrary.sizeBytes) })
          .from(mediaLibrary)
          .where(eq(mediaLibrary.tenantId, tenantId));
        const items = Number(usage?.items ?? 0);
        const bytes = Number(usage?.bytes ?? 0);
        if (items + 1 > limits.maxItems) {
          throw new AppError('conflict', `the media library holds ${items} files, its limit (MEDIA_LIBRARY_MAX_ITEMS = ${limits.maxItems}): delete some first`, { items, maxItems: limits.maxItems }, 'media_quota_exceeded');
        }
        if (bytes + input.data.length > limits.maxTenantBytes) {
          throw new AppError(
            'conflict',
            `the media library holds ${bytes} bytes; this file (${input.data.length} bytes) would pass its limit (MEDIA_LIBRARY_MAX_TENANT_BYTES = ${limits.maxTenantBytes}): delete some first`,
            { bytes, maxTenantBytes: limits.maxTenantBytes },
            'media_quota_exceeded',
          );
        }
        const [created] = await tx
          .insert(mediaLibrary)
          .values({ tenantId, kind: input.kind, mimeType: input.mimeType, filename: input.filename ?? null, sizeBytes: input.data.length, sha256: input.sha256, data: input.data })
          .returning(viewColumns);
        return { item: present(created!), created: true };
      });
    },

    /** Newest first. */
    async list(tenantId: string, opts: { limit: number; cursor?: string; kind?: MediaKind }): Promise<{ items: MediaItemView[]; nextCursor: string | null }> {
      const rows = await db
        .select(viewColumns)
        .from(mediaLibrary)
        .where(and(eq(mediaLibrary.tenantId, tenantId), opts.kind ? eq(mediaLibrary.kind, opts.kind) : undefined, afterCursor(mediaLibrary, opts.cursor, 'desc')))
        .orderBy(desc(mediaLibrary.createdAt), desc(mediaLibrary.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },

    /** The file (this tenant's only, else 404) with its Meta uploads. */
    async get(tenantId: string, id: string): Promise<MediaItemDetail> {
      const r = await row(tenantId, id);
      if (!r) throw notFound();
      const uploads = await db
        .select({ channelAccountId: mediaChannelUploads.channelAccountId, uploadedAt: mediaChannelUploads.uploadedAt, expiresAt: mediaChannelUploads.expiresAt })
        .from(mediaChannelUploads)
        .where(eq(mediaChannelUploads.mediaId, r.id))
        .orderBy(mediaChannelUploads.uploadedAt);
      return { ...present(r), metaUploads: uploads.map((u) => ({ channelAccountId: u.channelAccountId, uploadedAt: toIso(u.uploadedAt)!, expiresAt: toIso(u.expiresAt)! })) };
    },

    /** The file's facts, or undefined (another tenant's file is undefined too). */
    async find(tenantId: string, id: string): Promise<MediaItemView | undefined> {
      const r = await row(tenantId, id);
      return r ? present(r) : undefined;
    },

    /** The file a signed url names, and whether its tenant is suspended now (one statement). */
    async findForUrl(tenantId: string, id: string): Promise<{ item: MediaItemView; tenantSuspended: boolean } | undefined> {
      if (!isUuid(id)) return undefined;
      const [r] = await db
        .select({ ...viewColumns, tenantSuspended: sql<boolean>`${tenants.suspendedAt} is not null` })
        .from(mediaLibrary)
        .innerJoin(tenants, eq(tenants.id, mediaLibrary.tenantId))
        .where(and(eq(mediaLibrary.tenantId, tenantId), eq(mediaLibrary.id, id)));
      if (!r) return undefined;
      const { tenantSuspended, ...item } = r;
      return { item: present(item), tenantSuspended: Boolean(tenantSuspended) };
    },

    /**
     * Whether a message may name these library files: each must be this tenant's (else 404
     * `media_not_found`) and of the message's kind within Meta's type and size rules (else 400
     * `media_kind_mismatch`). `prefix` goes before each path (a sequence step's place).
     */
    async checkForMessage(tenantId: string, refs: { path: string; libraryId: string; type: MediaType }[], prefix = ''): Promise<void> {
      const problems: { path: string; message: string }[] = [];
      for (const ref of refs) {
        const found = await row(tenantId, ref.libraryId);
        const item = found ? present(found) : undefined;
        if (!item) throw new AppError('not_found', `${prefix}${ref.path}: media ${ref.libraryId} is not in this tenant's media library`, { path: `${prefix}${ref.path}`, libraryId: ref.libraryId }, 'media_not_found');
        const problem = item.kind !== ref.type ? `media ${ref.libraryId} is a ${item.kind} (${item.mimeType}); the message sends a ${ref.type}` : mediaFileProblem(ref.type, { mimeType: item.mimeType, bytes: item.sizeBytes });
        if (problem) problems.push({ path: `${prefix}${ref.path}`, message: problem });
      }
      if (problems.length) throw new AppError('validation_failed', problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems, 'media_kind_mismatch');
    },

    /**
     * Delete the file and its Meta ids (Meta drops its copies when they expire). Refused with 409
     * `media_in_use`, naming the agents, while an agent's asset names it (delete those assets first);
     * the foreign key backs the check against an asset added meanwhile.
     */
    async remove(tenantId: string, id: string): Promise<MediaItemView> {
      if (!isUuid(id)) throw notFound();
      const users = await db
        .select({ agentId: agents.id, agentName: agents.name, assetId: agentAssets.id, assetName: agentAssets.name })
        .from(agentAssets)
        .innerJoin(agents, eq(agents.id, agentAssets.agentId))
        .where(and(eq(agentAssets.tenantId, tenantId), eq(agentAssets.mediaId, id)))
        .orderBy(agents.name, agentAssets.name);
      if (users.length) throw inUse(id, users);
      let r: ViewRow | undefined;
      try {
        [r] = await db
          .delete(mediaLibrary)
          .where(and(eq(mediaLibrary.tenantId, tenantId), eq(mediaLibrary.id, id)))
          .returning(viewColumns);
      } catch (err) {
        if (pgErrorCode(err) === PG_FOREIGN_KEY_VIOLATION) throw inUse(id, []);
        throw err;
      }
      if (!r) throw notFound();
      return present(r);
    },

    /** `length` bytes from `offset` (a substring of the bytea: only the TOAST chunks that hold them). */
    async readChunk(id: string, offset: number, length: number): Promise<Buffer> {
      const [r] = await db
        .select({ part: sql<Buffer | Uint8Array | null>`substring(${mediaLibrary.data} from ${offset + 1}::int for ${length}::int)` })
        .from(mediaLibrary)
        .where(eq(mediaLibrary.id, id));
      const part = r?.part;
      if (!part) return Buffer.alloc(0);
      return Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    },

    /** The whole file (bounded by MEDIA_LIBRARY_MAX_BYTES): for the upload to Meta. */
    async readAll(tenantId: string, id: string): Promise<Buffer | undefined> {
      const [r] = await db
        .select({ data: mediaLibrary.data })
        .from(mediaLibrary)
        .where(and(eq(mediaLibrary.tenantId, tenantId), eq(mediaLibrary.id, id)));
      return r?.data;
    },

    /** The Meta media id of this file on this channel while it is valid at `now`. */
    async cachedUpload(mediaId: string, channelAccountId: string, now: Date): Promise<{ metaMediaId: string; expiresAt: string } | undefined> {
      const [r] = await db
        .select({ metaMediaId: mediaChannelUploads.metaMediaId, expiresAt: mediaChannelUploads.expiresAt })
        .from(mediaChannelUploads)
        .where(and(eq(mediaChannelUploads.mediaId, mediaId), eq(mediaChannelUploads.channelAccountId, channelAccountId)));
      if (!r || new Date(r.expiresAt).getTime() <= now.getTime()) return undefined;
      return { metaMediaId: r.metaMediaId, expiresAt: toIso(r.expiresAt)! };
    },

    /**
     * Record an upload; the id in force afterwards is answered. A valid id recorded meanwhile by
     * a concurrent upload wins (this one is then unused at Meta, which drops it after 30 days);
     * an expired one is replaced.
     */
    async saveUpload(input: { mediaId: string; channelAccountId: string; metaMediaId: string; uploadedAt: Date; expiresAt: Date }): Promise<{ metaMediaId: string; expiresAt: string }> {
      const uploadedAt = input.uploadedAt.toISOString();
      const expiresAt = input.expiresAt.toISOString();
      try {
        await db
          .insert(mediaChannelUploads)
          .values({ mediaId: input.mediaId, channelAccountId: input.channelAccountId, metaMediaId: input.metaMediaId, uploadedAt, expiresAt })
          .onConflictDoUpdate({
            target: [mediaChannelUploads.mediaId, mediaChannelUploads.channelAccountId],
            set: { metaMediaId: input.metaMediaId, uploadedAt, expiresAt },
            setWhere: sql`${mediaChannelUploads.expiresAt} <= ${uploadedAt}::timestamptz`,
          });
      } catch (err) {
        // the file (or the channel) was deleted during the upload: nothing to keep, the fresh id is still good for this send
        if (pgErrorCode(err) === PG_FOREIGN_KEY_VIOLATION) return { metaMediaId: input.metaMediaId, expiresAt };
        throw err;
      }
      const [r] = await db
        .select({ metaMediaId: mediaChannelUploads.metaMediaId, expiresAt: mediaChannelUploads.expiresAt })
        .from(mediaChannelUploads)
        .where(and(eq(mediaChannelUploads.mediaId, input.mediaId), eq(mediaChannelUploads.channelAccountId, input.channelAccountId)));
      // the file was deleted meanwhile (cascade): the fresh id is still good for this send
      return r ? { metaMediaId: r.metaMediaId, expiresAt: toIso(r.expiresAt)! } : { metaMediaId: input.metaMediaId, expiresAt };
    },

    /** Drop a Meta id the Graph API no longer knows (only that id: a newer one stays). */
    async forgetUpload(mediaId: string, channelAccountId: string, metaMediaId: string): Promise<boolean> {
      const gone = await db
        .delete(mediaChannelUploads)
        .where(and(eq(mediaChannelUploads.mediaId, mediaId), eq(mediaChannelUploads.channelAccountId, channelAccountId), eq(mediaChannelUploads.metaMediaId, metaMediaId)))
        .returning({ id: mediaChannelUploads.metaMediaId });
      return gone.length > 0;
    },
  };
}

export type MediaLibraryService = ReturnType<typeof createMediaLibraryService>;
