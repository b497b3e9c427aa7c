/**
 * Response schemas of the media library routes (api/routes/media-library.ts): the wire form of
 * services/media-library.ts.
 */
import { z } from 'zod';
import { ACCEPTED_MEDIA_TYPES, MEDIA_KINDS } from '../../contract/media-types';
import { timestamp, uuid } from './common';

const itemFields = {
  id: uuid.meta({ description: 'The library id: name it as `mediaId` when sending' }),
  kind: z.enum(MEDIA_KINDS).meta({ description: 'The WhatsApp media kind its type belongs to (image/webp is a sticker)' }),
  mimeType: z.enum(Object.keys(ACCEPTED_MEDIA_TYPES) as [string, ...string[]]),
  filename: z.string().nullable().meta({ description: "The upload's file name (documents are sent with it)" }),
  sizeBytes: z.number().int(),
  sha256: z.string().meta({ description: 'Hex SHA-256 of the bytes: a second upload of the same bytes answers this file' }),
  createdAt: timestamp,
};

export const mediaItemSchema = z.strictObject(itemFields).meta({ id: 'MediaItem', description: 'A media library file (without its bytes)' });

export const mediaItemDetailSchema = z
  .strictObject({
    ...itemFields,
    metaUploads: z
      .array(z.strictObject({ channelAccountId: uuid, uploadedAt: timestamp, expiresAt: timestamp.meta({ description: 'After this the file is uploaded to Meta again on its next send' }) }))
      .meta({ description: 'The WhatsApp channels the file was uploaded to (on its first send there) and until when that Meta media id is used' }),
  })
  .meta({ id: 'MediaItemDetail' });

export const mediaUploadBody = z
  .object({
    file: z.string().meta({ format: 'binary', description: 'The file, with its Content-Type (or application/octet-stream to have it recognised by its first bytes)' }),
    filename: z.string().max(200).optional().meta({ description: "Replaces the file part's own name" }),
  })
  .meta({ id: 'MediaUpload' });
