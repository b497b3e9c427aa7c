/**
 * Agent assets (issue 11): `POST /v1/agents/:agentId/assets` `{ name, description, mediaId }`,
 * `GET /v1/agents/:agentId/assets`, `DELETE /v1/agents/:agentId/assets/:assetId`. Managers change
 * them, setup readers read them; tenant-scoped (another tenant's agent, asset or file is 404).
 * The agent tools' `send_media` picks one by name (services/agent-assets.ts `listAgentAssets`).
 */
import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { AGENT_ASSET_LIMITS } from '../../services/agent-assets';
import { allow, MANAGERS, SETUP_READERS } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { validate } from '../middleware/validate';
import { doc } from '../openapi';
import { agentAssetListSchema, agentAssetSchema } from '../schemas/agent-assets';

// no control characters in what reaches the model's prompt
// eslint-disable-next-line no-control-regex
const printable = (what: string) => z.string().trim().min(1).refine((s) => !/[\u0000-\u001f\u007f]/.test(s), `${what} must not contain control characters (line breaks included)`);
const createBody = z.strictObject({
  name: printable('name').pipe(z.string().max(AGENT_ASSET_LIMITS.name)).meta({ description: `1–${AGENT_ASSET_LIMITS.name} characters, unique per agent ignoring case, e.g. "price list PDF"` }),
  description: z
    .string()
    .trim()
    .min(1)
    .max(AGENT_ASSET_LIMITS.description)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u0009\u000b-\u001f\u007f]/.test(s), 'description must not contain control characters')
    .meta({ description: `1–${AGENT_ASSET_LIMITS.description} characters: when the file fits (the model reads it)` }),
  mediaId: z.uuid().meta({ description: 'A media library file of this tenant (POST /v1/media); not a sticker' }),
});
const agentParams = z.object({ agentId: z.string().max(100) });
const assetParams = z.object({ agentId: z.string().max(100), assetId: z.string().max(100) });

export function createAgentAssetRouter(deps: { services: Services }): Router {
  const { services } = deps;
  const r = Router();
  r.use('/v1/agents/:agentId/assets', tenantAuth(services));

  r.post(
    '/v1/agents/:agentId/assets',
    allow(...MANAGERS),
    validate({ params: agentParams, body: createBody }),
    doc({
      summary: 'Add an asset to an agent',
      description: `A media library file the agent may send by name (its send_media tool). 404 for an agent or file that is not this tenant's (\`media_not_found\` for the file), 400 \`media_kind_mismatch\` for a sticker, 409 \`agent_asset_name_taken\` for a name the agent already uses (ignoring case), 409 \`agent_asset_limit\` past ${AGENT_ASSET_LIMITS.perAgent} assets. While an asset names a file, DELETE /v1/media/{mediaId} answers 409 \`media_in_use\`.`,
      responses: { 201: agentAssetSchema },
    }),
    async (_req, res) => {
      res.status(201).json(await services.agentAssets.add(res.locals.tenantId, res.locals.params.agentId, res.locals.body));
    },
  );
  r.get(
    '/v1/agents/:agentId/assets',
    allow(...SETUP_READERS),
    validate({ params: agentParams }),
    doc({ summary: "List an agent's assets", description: `Oldest first, all of them (at most ${AGENT_ASSET_LIMITS.perAgent}). 404 for another tenant's agent.`, responses: { 200: agentAssetListSchema } }),
    async (_req, res) => {
      res.json({ items: await services.agentAssets.list(res.locals.tenantId, res.locals.params.agentId), nextCursor: null });
    },
  );
  r.delete(
    '/v1/agents/:agentId/assets/:assetId',
    allow(...MANAGERS),
    validate({ params: assetParams, body: z.strictObject({}) }),
    doc({ summary: "Delete an agent's asset", description: 'The media library file stays (delete it with DELETE /v1/media/{mediaId} once no asset names it). 404 for another tenant\'s agent or asset.', responses: { 200: agentAssetSchema } }),
    async (_req, res) => {
      res.json(await services.agentAssets.remove(res.locals.tenantId, res.locals.params.agentId, res.locals.params.assetId));
    },
  );
  return r;
}
