/**
 * Response schemas of the agent asset routes (api/routes/agent-assets.ts): the wire form of
 * services/agent-assets.ts.
 */
import { z } from 'zod';
import { ACCEPTED_MEDIA_TYPES } from '../../contract/media-types';
import { MEDIA_TYPES } from '../../contract/rich';
import { timestamp, uuid } from './common';

export const agentAssetSchema = z
  .strictObject({
    id: uuid,
    agentId: uuid,
    name: z.string().meta({ description: 'What the agent calls it (unique per agent, ignoring case): the send_media tool picks an asset by name' }),
    description: z.string().meta({ description: 'When the file fits: the model reads it' }),
    mediaId: uuid.meta({ description: 'The media library file (GET /v1/media/{mediaId})' }),
    kind: z.enum(MEDIA_TYPES).meta({ description: "The file's kind: the media message type it is sent as" }),
    mimeType: z.enum(Object.keys(ACCEPTED_MEDIA_TYPES) as [string, ...string[]]),
    filename: z.string().nullable(),
    sizeBytes: z.number().int(),
    createdAt: timestamp,
  })
  .meta({ id: 'AgentAsset', description: 'A media library file an agent may send by name' });

export const agentAssetListSchema = z
  .strictObject({
    items: z.array(agentAssetSchema),
    nextCursor: z.null().meta({ description: 'Always null: an agent has at most 50 assets, all in one answer' }),
  })
  .meta({ id: 'AgentAssetList' });
