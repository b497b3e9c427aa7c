/**
 * An agent's assets (issue 11): media library files the agent may send by name ("the price list
 * PDF"). The agent tools' `send_media` reads them with `listAgentAssets(tenantId, agentId)` and
 * sends the chosen one by its `mediaId` (a media library id: `{ kind: 'media', media: { type:
 * kind, libraryId: mediaId } }`).
 *
 * - Tenant-scoped: the agent and the file must be the tenant's (404 otherwise, never another
 *   tenant's existence).
 * - Bounded: at most AGENT_ASSET_LIMITS.perAgent per agent (409 `agent_asset_limit`); name 1–64
 *   characters, unique per agent ignoring case (409 `agent_asset_name_taken`); description 1–500
 *   (it goes into the model's tool description). The count and the name are checked under a
 *   per-agent transaction-scoped advisory lock, so two creations at once cannot pass the limit.
 * - Stickers cannot be assets (no message sends them: 400 `media_kind_mismatch`).
 * - A library file named by an asset cannot be deleted (services/media-library.ts `remove`: 409
 *   `media_in_use` naming the agents): delete the assets first. Deleting the agent deletes its assets.
 */
import { and, asc, count, eq, sql } from 'drizzle-orm';
import type { MediaType } from '../contract/rich';
import type { Db } from '../db/client';
import { agentAssets, agents, mediaLibrary } from '../db/schema';
import { AppError } from '../lib/errors';
import { isUuid, PG_FOREIGN_KEY_VIOLATION, PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

export const AGENT_ASSET_LIMITS = { perAgent: 50, name: 64, description: 500 } as const;

/** What the agent tools need of an asset. */
export interface AgentAssetRef {
  id: string;
  name: string;
  description: string;
  /** The media library id (send it as `libraryId`). */
  mediaId: string;
  /** The file's kind, the message's media type. */
  kind: MediaType;
}

/** An asset as the API shows it. */
export interface AgentAssetView extends AgentAssetRef {
  agentId: string;
  mimeType: string;
  filename: string | null;
  sizeBytes: number;
  createdAt: string;
}

const columns = {
  id: agentAssets.id,
  agentId: agentAssets.agentId,
  name: agentAssets.name,
  description: agentAssets.description,
  mediaId: agentAssets.mediaId,
  kind: mediaLibrary.kind,
  mimeType: mediaLibrary.mimeType,
  filename: mediaLibrary.filename,
  sizeBytes: mediaLibrary.sizeBytes,
  createdAt: agentAssets.createdAt,
};

type Row = { id: string; agentId: string; name: string; description: string; mediaId: string; kind: string; mimeType: string; filename: string | null; sizeBytes: number; createdAt: string };

function present(r: Row): AgentAssetView {
  return { id: r.id, agentId: r.agentId, name: r.name, description: r.description, mediaId: r.mediaId, kind: r.kind as MediaType, mimeType: r.mimeType, filename: r.filename, sizeBytes: r.sizeBytes, createdAt: toIso(r.createdAt) ?? r.createdAt };
}

const agentNotFound = () => new AppError('not_found', 'agent not found');
const assetNotFound = () => new AppError('not_found', 'asset not found');

export function createAgentAssetService(db: Db) {
  async function ownAgent(tenantId: string, agentId: string): Promise<void> {
    if (!isUuid(agentId)) throw agentNotFound();
    const [a] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, agentId)));
    if (!a) throw agentNotFound();
  }

  async function listAll(tenantId: string, agentId: string): Promise<AgentAssetView[]> {
    const rows = await db
      .select(columns)
      .from(agentAssets)
      .innerJoin(mediaLibrary, eq(mediaLibrary.id, agentAssets.mediaId))
      .where(and(eq(agentAssets.tenantId, tenantId), eq(agentAssets.agentId, agentId)))
      .orderBy(asc(agentAssets.createdAt), asc(agentAssets.id));
    return rows.map(present);
  }

  return {
    /** Add an asset: the agent and the library file must be this tenant's. */
    async add(tenantId: string, agentId: string, input: { name: string; description: string; mediaId: string }): Promise<AgentAssetView> {
      await ownAgent(tenantId, agentId);
      const [file] = isUuid(input.mediaId)
        ? await db.select({ id: mediaLibrary.id, kind: mediaLibrary.kind }).from(mediaLibrary).where(and(eq(mediaLibrary.tenantId, tenantId), eq(mediaLibrary.id, input.mediaId)))
        : [];
      if (!file) throw new AppError('not_found', `media ${input.mediaId} is not in this tenant's media library`, [{ path: 'mediaId', message: 'not in the media library' }], 'media_not_found');
      if (file.kind === 'sticker') throw new AppError('validation_failed', 'a sticker cannot be an agent asset (no message sends it)', [{ path: 'mediaId', message: 'a sticker cannot be an agent asset' }], 'media_kind_mismatch');
      try {
        const id = await db.transaction(async (tx) => {
          // one creator per agent between the checks and the insert
          await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`agent_assets:${agentId}`}))`);
          const [usage] = await tx.select({ n: count() }).from(agentAssets).where(eq(agentAssets.agentId, agentId));
          const n = Number(usage?.n ?? 0);
          if (n >= AGENT_ASSET_LIMITS.perAgent) {
            throw new AppError('conflict', `the agent has ${n} assets, the limit (${AGENT_ASSET_LIMITS.perAgent}): delete some first`, { assets: n, maxAssets: AGENT_ASSET_LIMITS.perAgent }, 'agent_asset_limit');
          }
          const [same] = await tx
            .select({ id: agentAssets.id })
            .from(agentAssets)
            .where(and(eq(agentAssets.agentId, agentId), sql`lower(${agentAssets.name}) = lower(${input.name})`));
          if (same) throw new AppError('conflict', `the agent already has an asset named "${input.name}"`, { assetId: same.id }, 'agent_asset_name_taken');
          const [created] = await tx.insert(agentAssets).values({ tenantId, agentId, mediaId: file.id, name: input.name, description: input.description }).returning({ id: agentAssets.id });
          return created!.id;
        });
        const [r] = await db.select(columns).from(agentAssets).innerJoin(mediaLibrary, eq(mediaLibrary.id, agentAssets.mediaId)).where(eq(agentAssets.id, id));
        return present(r!);
      } catch (err) {
        // the file or the agent was deleted meanwhile; a same-named asset created under another lock holder's nose
        if (pgErrorCode(err) === PG_FOREIGN_KEY_VIOLATION) throw new AppError('not_found', 'the agent or the media file was deleted meanwhile');
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) throw new AppError('conflict', `the agent already has an asset named "${input.name}"`, undefined, 'agent_asset_name_taken');
        throw err;
      }
    },

    /** Every asset of the agent (at most AGENT_ASSET_LIMITS.perAgent), oldest first; 404 for another tenant's agent. */
    async list(tenantId: string, agentId: string): Promise<AgentAssetView[]> {
      await ownAgent(tenantId, agentId);
      return listAll(tenantId, agentId);
    },

    /**
     * For the agent tools (`send_media`): the agent's assets as `{ id, name, description, mediaId,
     * kind }`, oldest first; [] for an agent that is not this tenant's (a tool never learns more).
     */
    async listAgentAssets(tenantId: string, agentId: string): Promise<AgentAssetRef[]> {
      if (!isUuid(agentId)) return [];
      return (await listAll(tenantId, agentId)).map((a) => ({ id: a.id, name: a.name, description: a.description, mediaId: a.mediaId, kind: a.kind }));
    },

    async remove(tenantId: string, agentId: string, assetId: string): Promise<AgentAssetView> {
      await ownAgent(tenantId, agentId);
      if (!isUuid(assetId)) throw assetNotFound();
      const [r] = await db
        .select(columns)
        .from(agentAssets)
        .innerJoin(mediaLibrary, eq(mediaLibrary.id, agentAssets.mediaId))
        .where(and(eq(agentAssets.tenantId, tenantId), eq(agentAssets.agentId, agentId), eq(agentAssets.id, assetId)));
      if (!r) throw assetNotFound();
      const gone = await db.delete(agentAssets).where(and(eq(agentAssets.tenantId, tenantId), eq(agentAssets.id, assetId))).returning({ id: agentAssets.id });
      if (gone.length === 0) throw assetNotFound();
      return present(r);
    },

    /** The agents whose assets name this library file (for the library's 409 on delete). */
    async agentsUsing(tenantId: string, mediaId: string): Promise<{ agentId: string; agentName: string; assetName: string }[]> {
      if (!isUuid(mediaId)) return [];
      return db
        .select({ agentId: agents.id, agentName: agents.name, assetName: agentAssets.name })
        .from(agentAssets)
        .innerJoin(agents, eq(agents.id, agentAssets.agentId))
        .where(and(eq(agentAssets.tenantId, tenantId), eq(agentAssets.mediaId, mediaId)))
        .orderBy(asc(agents.name), asc(agentAssets.name));
    },
  };
}

export type AgentAssetService = ReturnType<typeof createAgentAssetService>;
