import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { mediaObjects, messages } from '../db/schema';
import { toIso } from './db-util';

/** What is known of a stored media object, without its bytes (plain JSON: crosses Temporal). */
export interface MediaObjectSummary {
  id: string;
  channelAccountId: string;
  providerMediaId: string;
  mimeType: string | null;
  sha256: string | null;
  sizeBytes: number;
  createdAt: string | null;
}

type Row = typeof mediaObjects.$inferSelect;

function summary(r: Pick<Row, 'id' | 'channelAccountId' | 'providerMediaId' | 'mimeType' | 'sha256' | 'sizeBytes' | 'createdAt'>): MediaObjectSummary {
  return {
    id: r.id,
    channelAccountId: r.channelAccountId,
    providerMediaId: r.providerMediaId,
    mimeType: r.mimeType,
    sha256: r.sha256,
    sizeBytes: r.sizeBytes,
    createdAt: toIso(r.createdAt),
  };
}

const summaryColumns = {
  id: mediaObjects.id,
  channelAccountId: mediaObjects.channelAccountId,
  providerMediaId: mediaObjects.providerMediaId,
  mimeType: mediaObjects.mimeType,
  sha256: mediaObjects.sha256,
  sizeBytes: mediaObjects.sizeBytes,
  createdAt: mediaObjects.createdAt,
};

/** Inbound media downloaded from the provider on demand, cached once per (channel, media id). */
export function createMediaService(db: Db) {
  return {
    /** The stored object's facts, or undefined when it was never fetched. */
    async find(channelAccountId: string, providerMediaId: string): Promise<MediaObjectSummary | undefined> {
      const [r] = await db
        .select(summaryColumns)
        .from(mediaObjects)
        .where(and(eq(mediaObjects.channelAccountId, channelAccountId), eq(mediaObjects.providerMediaId, providerMediaId)));
      return r ? summary(r) : undefined;
    },

    /**
     * The stored object's facts (tenant-scoped, without its bytes), or undefined; `legacy` when
     * its bytes are still the base64 text of objects stored before the bytea column.
     */
    async findForTenant(tenantId: string, channelAccountId: string, providerMediaId: string): Promise<(MediaObjectSummary & { legacy: boolean }) | undefined> {
      const [r] = await db
        .select({ ...summaryColumns, legacy: sql<boolean>`(${mediaObjects.data} is null)` })
        .from(mediaObjects)
        .where(
          and(eq(mediaObjects.tenantId, tenantId), eq(mediaObjects.channelAccountId, channelAccountId), eq(mediaObjects.providerMediaId, providerMediaId)),
        );
      return r ? { ...summary(r), legacy: Boolean(r.legacy) } : undefined;
    },

    /** Move a legacy object's base64 text into the bytea column, inside the database (once). */
    async migrateLegacy(id: string): Promise<void> {
      await db
        .update(mediaObjects)
        .set({ data: sql`decode(${mediaObjects.dataBase64}, 'base64')`, dataBase64: null })
        .where(and(eq(mediaObjects.id, id), isNull(mediaObjects.data)));
    },

    /**
     * `length` bytes of a stored object from byte `offset`: a `substring` of the bytea, so
     * PostgreSQL reads only the TOAST chunks that hold them (media does not compress, so it is
     * stored uncompressed) and the API never holds more than one chunk. Empty past the end.
     */
    async readChunk(id: string, offset: number, length: number): Promise<Buffer> {
      const [r] = await db
        .select({ part: sql<Buffer | Uint8Array | null>`substring(${mediaObjects.data} from ${offset + 1}::int for ${length}::int)` })
        .from(mediaObjects)
        .where(eq(mediaObjects.id, id));
      const part = r?.part;
      if (!part) return Buffer.alloc(0);
      return Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    },

    /** Store the bytes once; a concurrent or earlier store wins and is returned. */
    async store(input: {
      tenantId: string;
      channelAccountId: string;
      providerMediaId: string;
      mimeType?: string;
      sha256: string;
      data: Buffer;
    }): Promise<MediaObjectSummary> {
      await db
        .insert(mediaObjects)
        .values({
          tenantId: input.tenantId,
          channelAccountId: input.channelAccountId,
          providerMediaId: input.providerMediaId,
          mimeType: input.mimeType ?? null,
          sha256: input.sha256,
          sizeBytes: input.data.length,
          data: input.data,
        })
        .onConflictDoNothing({ target: [mediaObjects.channelAccountId, mediaObjects.providerMediaId] });
      const stored = await this.find(input.channelAccountId, input.providerMediaId);
      if (!stored) throw new Error(`media object ${input.providerMediaId} vanished after insert`);
      return stored;
    },

    /** Whether an inbound message of this lead carries this media id (the API serves nothing else). */
    async referencedByLead(tenantId: string, leadId: string, providerMediaId: string): Promise<boolean> {
      const [r] = await db
        .select({ id: messages.id })
        .from(messages)
        .where(
          and(
            eq(messages.tenantId, tenantId),
            eq(messages.leadId, leadId),
            eq(messages.direction, 'inbound'),
            sql`${messages.details} -> 'media' ->> 'id' = ${providerMediaId}`,
          ),
        )
        .limit(1);
      return Boolean(r);
    },
  };
}

export type MediaService = ReturnType<typeof createMediaService>;
