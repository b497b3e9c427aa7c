import { ApplicationFailure } from '@temporalio/common';
import { Router, type Response } from 'express';
import { z } from 'zod';
import { FailureType } from '../../contract/failures';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import type { ParleyTemporal } from '../../temporal/client';
import { tenantAuth } from '../middleware/rate-limit';
import { writeWithBackpressure } from '../response-stream';
import { LEAD_READERS, allow } from '../access';
import { doc } from '../openapi';

/** How long one request waits for a download before answering 503 (the download goes on). */
const DEFAULT_WAIT_MS = 90_000;

/** Bytes read from the database per query while streaming. */
const DEFAULT_CHUNK_BYTES = 256 * 1024;

/** Types a browser renders inline; everything else is served as an attachment. */
const INLINE = /^(image|audio|video)\//;

/**
 * One `Range: bytes=…` range (RFC 9110 §14): inclusive first and last byte, clamped to the
 * object; `unsatisfiable` (416) when it starts past the end; undefined (serve everything) for no
 * header, another unit, several ranges, or an invalid range, which a server may ignore.
 */
export function byteRange(header: string | undefined, size: number): { first: number; last: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : { first: Math.max(0, size - suffix), last: size - 1 };
  }
  const first = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < first) return undefined;
  if (first >= size) return 'unsatisfiable';
  return { first, last: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

/** The ApplicationFailure type somewhere in a Temporal failure's cause chain. */
function failureType(err: unknown): { type?: string; message?: string } {
  let e: unknown = err;
  for (let i = 0; i < 6 && e; i++) {
    if (e instanceof ApplicationFailure) return { type: e.type ?? undefined, message: e.message };
    e = (e as { cause?: unknown }).cause;
  }
  return {};
}

/** A failed download as the API's error taxonomy. */
function mediaError(err: unknown): AppError {
  const { type } = failureType(err);
  switch (type) {
    case FailureType.MediaTooLarge:
      return new AppError('payload_too_large', 'the media is larger than this deployment serves (MEDIA_MAX_BYTES)', undefined, 'media_too_large');
    case FailureType.ProviderAuth:
      return new AppError('provider_auth', "the channel's access token was refused by the Graph API");
    case FailureType.ProviderPermanent:
    case FailureType.MediaInvalidId:
      return new AppError('provider_permanent', 'the provider no longer has this media (expired or deleted)', undefined, 'media_unavailable');
    case FailureType.ChannelNotFound:
      return new AppError('not_found', 'media not found');
    case FailureType.ChannelDeleted:
      return new AppError('not_found', 'media not found (the channel is deleted and the media was never downloaded)');
    default:
      return new AppError('unavailable', 'the media could not be downloaded now; retry later');
  }
}

/** The promise's value, or an AppError('unavailable') after `ms` (the work itself goes on). */
async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new AppError('unavailable', 'the media is still downloading; retry shortly')), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Inbound media of a lead, downloaded from the provider on first request (through the
 * `fetchMediaWorkflow`, so Temporal retries it and concurrent requests share one download)
 * and served from the database afterwards. Only media a message of that lead references.
 */
export function createMediaRouter(deps: { services: Services; temporal: ParleyTemporal; log: Logger; waitMs?: number; chunkBytes?: number }): Router {
  const chunkBytes = Math.max(1, deps.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const { services } = deps;
  const r = Router();
  const auth = tenantAuth(services); // tenant key, then the tenant's API rate limit
  const log = deps.log.child({ module: 'api.media' });

  r.get(
    '/v1/leads/:leadId/media/:mediaId',
    auth,
    allow(...LEAD_READERS),
    doc({
      summary: 'Download a media file of a lead',
      description: [
        "`mediaId`: the provider's media id a message of this lead carries (an inbound image, audio, video, document or sticker).",
        'The first request downloads it from the provider (Temporal retries; concurrent requests share one download); later ones are served from storage.',
        'A request waits at most 90 s for the download: then 503 with `Retry-After` (the download goes on; retry). 413 `media_too_large` above the deployment\'s limit; 502 `media_unavailable` when the provider no longer has it.',
        'Served with its own content type (inline for image, audio and video, otherwise as an attachment), an ETag (its SHA-256) and `Accept-Ranges: bytes`: one `Range: bytes=…` range answers 206.',
      ].join(' '),
      responses: {
        200: { contentType: '*/*', description: 'The file, with its MIME type as Content-Type' },
        206: { contentType: '*/*', description: 'The requested byte range (Content-Range)' },
        416: { description: 'The range starts past the end of the file (`Content-Range: bytes */<size>`); no body' },
      },
    }),
    async (req, res: Response) => {
    const tenantId: string = res.locals.tenantId;
    const leadId = z.uuid().safeParse(req.params.leadId);
    const mediaId = z.string().min(1).max(4096).safeParse(req.params.mediaId);
    const lead = leadId.success ? await services.leads.get(tenantId, leadId.data) : undefined;
    if (!lead) throw new AppError('not_found', 'lead not found');
    if (!mediaId.success || !(await services.media.referencedByLead(tenantId, lead.id, mediaId.data))) {
      throw new AppError('not_found', 'no message of this lead carries this media');
    }
    const key = { tenantId, channelAccountId: lead.channelAccountId, providerMediaId: mediaId.data };
    let stored = await services.media.findForTenant(tenantId, key.channelAccountId, key.providerMediaId);
    if (!stored) {
      try {
        await within(deps.temporal.fetchMedia(key), deps.waitMs ?? DEFAULT_WAIT_MS);
      } catch (err) {
        if (err instanceof AppError) {
          res.set('retry-after', '5');
          throw err;
        }
        const mapped = mediaError(err);
        log.warn({ leadId: lead.id, failure: failureType(err).type ?? 'unknown', status: mapped.httpStatus }, 'media download failed');
        if (mapped.code === 'unavailable') res.set('retry-after', '30');
        throw mapped;
      }
      stored = await services.media.findForTenant(tenantId, key.channelAccountId, key.providerMediaId);
      if (!stored) throw new AppError('unavailable', 'the media could not be stored; retry later');
    }
    const type = stored.mimeType ?? 'application/octet-stream';
    const size = stored.sizeBytes;
    const headers: Record<string, string> = {
      'content-type': type,
      'accept-ranges': 'bytes',
      'content-disposition': INLINE.test(type) ? 'inline' : 'attachment',
      'cache-control': 'private, max-age=3600',
      'x-content-type-options': 'nosniff',
      // user-supplied bytes from our origin: never let them run as a page
      'content-security-policy': "default-src 'none'; sandbox",
      ...(stored.sha256 ? { etag: `"${stored.sha256}"` } : {}),
    };
    const range = byteRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.status(416).set({ ...headers, 'content-range': `bytes */${size}` }).end();
      return;
    }
    const first = range?.first ?? 0;
    const last = range?.last ?? size - 1;
    if (stored.legacy) await services.media.migrateLegacy(stored.id);
    const id = stored.id;
    let offset = first;
    const read = () => services.media.readChunk(id, offset, Math.min(chunkBytes, last + 1 - offset));
    // the first chunk before any header: a database failure here is still a proper error answer
    let chunk = size > 0 ? await read() : Buffer.alloc(0);
    res
      .status(range ? 206 : 200)
      .set({ ...headers, 'content-length': String(Math.max(0, last - first + 1)), ...(range ? { 'content-range': `bytes ${first}-${last}/${size}` } : {}) });
    // streamed chunk by chunk with backpressure: memory stays at one chunk per download
    try {
      for (;;) {
        const open = await writeWithBackpressure(res, chunk);
        offset += chunk.length;
        if (chunk.length === 0 || offset > last || !open) break;
        chunk = await read();
      }
      res.end();
    } catch (err) {
      log.error({ err, leadId: lead.id }, 'media download failed mid-stream');
      res.destroy(err instanceof Error ? err : new Error('media stream failed'));
    }
  });

  return r;
}
