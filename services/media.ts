import { and, eq, sql } from 'drizzle-orm';
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

    /** The stored object's facts (tenant-scoped, without its bytes), or undefined. */
    async findForTenant(tenantId: string, channelAccountId: string, providerMediaId: string): Promise<MediaObjectSummary | undefined> {
      const [r] = await db
        .select(summaryColumns)
        .from(mediaObjects)
        .where(
          and(eq(mediaObjects.tenantId, tenantId), eq(mediaObjects.channelAccountId, channelAccountId), eq(mediaObjects.providerMediaId, providerMediaId)),
        );
      return r ? summary(r) : undefined;
    },

    /**
     * `length` bytes of a stored object from byte `offset` (a multiple of 3), read as the
     * matching slice of its base64 text: PostgreSQL fetches only the TOAST chunks it needs
     * (the base64 of media does not compress, so it is stored uncompressed), and the API never
     * holds more than one chunk. Empty past the end.
     */
    async readChunk(id: string, offset: number, length: number): Promise<Buffer> {
      if (offset % 3 !== 0 || length % 3 !== 0) throw new Error('media chunks start and end on multiples of 3 bytes (whole base64 quads)');
      const [r] = await db
        .select({ part: sql<string>`substr(${mediaObjects.dataBase64}, ${(offset / 3) * 4 + 1}::int, ${(length / 3) * 4}::int)` })
        .from(mediaObjects)
        .where(eq(mediaObjects.id, id));
      return Buffer.from(r?.part ?? '', 'base64');
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
          dataBase64: input.data.toString('base64'),
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
