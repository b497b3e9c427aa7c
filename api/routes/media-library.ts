/**
 * The media library (issue 11): `POST /v1/media` (multipart upload), `GET /v1/media`,
 * `GET /v1/media/:mediaId`, `DELETE /v1/media/:mediaId`, and the public `GET /media/:token`
 * that serves a file to whoever holds a signed, unexpired url (Instagram's servers, the web chat
 * widget): the send path gets those urls from activities/media/resolve.ts.
 *
 * An upload is checked before it is kept: one `file` part of at most MEDIA_LIBRARY_MAX_BYTES
 * (multer stops reading past it: 413), a type WhatsApp accepts (415), bytes whose magic number
 * matches that type (415), and WhatsApp's limit for its kind (413); see contract/media-types.ts.
 */
import { createHash } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { z } from 'zod';
import { checkMedia, MEDIA_KINDS } from '../../contract/media-types';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import type { MediaLibraryLimits } from '../../services/media-library';
import type { MediaUrlTokens } from '../../services/media-url-tokens';
import { LEAD_READERS, MANAGERS, allow, publicRoute } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { doc } from '../openapi';
import { writeWithBackpressure } from '../response-stream';
import { pageOf } from '../schemas/common';
import { mediaItemDetailSchema, mediaItemSchema, mediaUploadBody } from '../schemas/media';
import { byteRange } from './media';

const idParams = z.object({ mediaId: z.string().max(100) });
const listQuery = pageQuery.extend({ kind: z.enum(MEDIA_KINDS).optional() });
const INLINE = /^(image|audio|video)\//;
const DEFAULT_CHUNK_BYTES = 256 * 1024;
/** MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND's default: 16 KB/s (128 kbit/s), a 16 MB file in 17 minutes. */
const DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND = 16 * 1024;
/** An upload's first seconds are not judged (a connection's slow start, a phone switching networks). */
export const UPLOAD_RATE_GRACE_MS = 10_000;
const UPLOAD_RATE_CHECK_MS = 1_000;

/**
 * Cut an upload whose average rate since it took its slot is under `floor` bytes/s once
 * UPLOAD_RATE_GRACE_MS have passed: 408 `upload_too_slow` with `Connection: close` (the rest of
 * the body is never read) and the socket ended. Reads the socket's byte counter: no listener on
 * the body, which multer is reading. Stops judging once the whole body is in.
 */
function watchUploadRate(req: Request, res: Response, floor: number, log: Logger): NodeJS.Timeout {
  const started = Date.now();
  const socket = req.socket;
  const before = socket.bytesRead;
  const timer = setInterval(() => {
    // the whole body is in: what follows (checks, the database) is not the client's pace
    if (req.complete) {
      clearInterval(timer);
      return;
    }
    const ms = Date.now() - started;
    if (ms < UPLOAD_RATE_GRACE_MS) return;
    const bytes = socket.bytesRead - before;
    const rate = (bytes * 1000) / ms;
    if (rate >= floor) return;
    clearInterval(timer);
    log.warn({ tenantId: res.locals.tenantId, bytes, ms, floor }, 'upload under the byte-rate floor: cut');
    if (res.headersSent) {
      socket.destroy();
      return;
    }
    const err = new AppError('request_timeout', `the upload arrived at ${Math.round(rate)} bytes/s on average, under this server's floor of ${floor} bytes/s (MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND): send it again over a faster connection`, undefined, 'upload_too_slow');
    res.once('finish', () => socket.destroy());
    res.status(err.httpStatus).set('connection', 'close').json({ error: { code: err.reason, message: err.message } });
  }, UPLOAD_RATE_CHECK_MS);
  timer.unref();
  return timer;
}

/** A file name safe to store and to put in a Content-Disposition: no path, no control characters, at most 200 characters. */
export function cleanFilename(name: string | undefined): string | undefined {
  if (!name) return undefined;
  // eslint-disable-next-line no-control-regex
  const base = (name.split(/[/\\]/).pop() ?? '').replace(/[\u0000-\u001f\u007f"]/g, '').trim().slice(0, 200);
  return base === '' || base === '.' || base === '..' ? undefined : base;
}

/** RFC 6266 Content-Disposition with an ASCII fallback and the UTF-8 name. */
function disposition(type: 'inline' | 'attachment', filename: string | null): string {
  if (!filename) return type;
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `${type}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/**
 * Reads of one signed url per client address, in memory (a token bucket per address and file; the
 * map pruned of full buckets): a url handed to a web chat visitor must not let that visitor keep
 * the database reading the file. Keyed by file too, so Instagram's few fetching addresses are not
 * throttled across the many files they fetch.
 */
function createReadLimiter(perMinute: number) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const rate = perMinute / 60_000;
  return (key: string): { ok: true } | { ok: false; retryAfterS: number } => {
    if (perMinute <= 0) return { ok: true };
    const now = Date.now();
    if (buckets.size > 50_000) {
      for (const [k, b] of buckets) if (b.tokens + (now - b.at) * rate >= perMinute) buckets.delete(k);
      if (buckets.size > 50_000) buckets.clear();
    }
    const b = buckets.get(key) ?? { tokens: perMinute, at: now };
    b.tokens = Math.min(perMinute, b.tokens + (now - b.at) * rate);
    b.at = now;
    buckets.set(key, b);
    if (b.tokens < 1) return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000)) };
    b.tokens -= 1;
    return { ok: true };
  };
}

export function createMediaLibraryRouter(deps: {
  services: Services;
  limits: MediaLibraryLimits & { maxBytes: number };
  urlTokens: MediaUrlTokens;
  log: Logger;
  chunkBytes?: number;
  /** MEDIA_URL_READS_PER_MINUTE: reads of one file's signed url per client address (0 = no limit). */
  readsPerMinute?: number;
  /** MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS: uploads this process reads at once (one tenant: half, at least 1). */
  maxConcurrentUploads?: number;
  /** MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND: an upload slower than this on average after UPLOAD_RATE_GRACE_MS is cut with 408 (0 = no floor). */
  minUploadBytesPerSecond?: number;
}): Router {
  const { services } = deps;
  const r = Router();
  const log = deps.log.child({ module: 'api.media-library' });
  const chunkBytes = Math.max(1, deps.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const readLimit = createReadLimiter(deps.readsPerMinute ?? 120);
  r.use('/v1/media', tenantAuth(services));

  // memory storage: the file is bounded by fileSize and goes to one bytea; 1 file, 1 text field
  const upload = multer({
    storage: multer.memoryStorage(),
    defParamCharset: 'utf8',
    limits: { fileSize: deps.limits.maxBytes, files: 1, fields: 1, parts: 2, fieldSize: 1024, fieldNameSize: 50, headerPairs: 20 },
  }).single('file');

  // Each upload may hold MEDIA_LIBRARY_MAX_BYTES in memory until it is stored: this process reads
  // at most maxUploads at once, one tenant at most half of them, before a byte of the body is read.
  const maxUploads = Math.max(1, deps.maxConcurrentUploads ?? 8);
  const maxTenantUploads = Math.max(1, Math.floor(maxUploads / 2));
  let uploading = 0;
  const uploadingByTenant = new Map<string, number>();
  const uploadSlot = (req: Request, res: Response, next: NextFunction) => {
    const tenantId = res.locals.tenantId as string;
    const mine = uploadingByTenant.get(tenantId) ?? 0;
    if (mine >= maxTenantUploads) {
      res.setHeader('Retry-After', '1');
      return next(new AppError('rate_limited', `this tenant has ${mine} uploads in progress, the most one tenant may have at once on this server: retry when one is done`));
    }
    if (uploading >= maxUploads) {
      res.setHeader('Retry-After', '1');
      return next(new AppError('unavailable', `this server has ${uploading} uploads in progress, its limit (MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS): retry shortly`));
    }
    uploading += 1;
    uploadingByTenant.set(tenantId, mine + 1);
    let released = false;
    const floor = deps.minUploadBytesPerSecond ?? DEFAULT_MIN_UPLOAD_BYTES_PER_SECOND;
    // a slot is held only while bytes arrive at the floor's pace: a trickle cannot keep it for Node's 300 s
    const watch = floor > 0 ? watchUploadRate(req, res, floor, log) : undefined;
    res.once('close', () => {
      if (watch) clearInterval(watch);
      if (released) return;
      released = true;
      uploading -= 1;
      const left = (uploadingByTenant.get(tenantId) ?? 1) - 1;
      if (left > 0) uploadingByTenant.set(tenantId, left);
      else uploadingByTenant.delete(tenantId);
    });
    next();
  };

  /** multer, with its refusals in the API's error taxonomy. */
  const readUpload = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('multipart/form-data')) {
      next(new AppError('unsupported_media_type', 'send the file as multipart/form-data with one part named `file`'));
      return;
    }
    upload(req, res, (err?: unknown) => {
      if (!err) return next();
      if (err instanceof multer.MulterError) {
        if (err.code === 'LIMIT_FILE_SIZE') {
          return next(new AppError('payload_too_large', `the file is larger than this deployment keeps (MEDIA_LIBRARY_MAX_BYTES = ${deps.limits.maxBytes} bytes)`, undefined, 'media_too_large'));
        }
        const why = err.code === 'LIMIT_UNEXPECTED_FILE' ? `one file part named \`file\` only (got \`${err.field ?? '?'}\`)` : `${err.message}: one \`file\` part and at most a \`filename\` field`;
        return next(new AppError('bad_request', `invalid upload: ${why}`));
      }
      // a malformed multipart body (busboy): the client's fault
      next(new AppError('bad_request', `invalid multipart body: ${(err as Error).message ?? 'unreadable'}`));
    });
  };

  r.post(
    '/v1/media',
    allow(...MANAGERS),
    uploadSlot,
    readUpload,
    doc({
      summary: 'Upload a file to the media library',
      description: [
        'multipart/form-data with one part `file` (its Content-Type declares the type; `application/octet-stream` has it recognised by its first bytes) and optionally `filename`.',
        'Accepted as WhatsApp accepts them: image (image/jpeg, image/png ≤ 5 MB), video (video/mp4, video/3gpp ≤ 16 MB), audio (audio/aac, audio/amr, audio/mpeg, audio/mp4, audio/ogg with Opus ≤ 16 MB), document (text/plain, application/pdf, Word, Excel, PowerPoint), sticker (image/webp ≤ 100 KB static, 500 KB animated); every file at most MEDIA_LIBRARY_MAX_BYTES (default 16 MB).',
        'The bytes must match the declared type: 415 otherwise (and for other types); 413 over a size limit; 409 `media_quota_exceeded` over the tenant\'s file count or total bytes; 429 while the tenant already has half of MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS uploads in progress on the server, 503 while the server has all of them (Retry-After); 408 `upload_too_slow` when the body arrives slower than MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND on average after its first 10 s.',
        '201 with the new file; 200 with the stored one when this tenant already has the same bytes (same sha256).',
        'On its first send on a WhatsApp channel the file is uploaded to Meta and that media id is reused until shortly before Meta expires it (30 days).',
      ].join(' '),
      requestBody: { contentType: 'multipart/form-data', schema: mediaUploadBody },
      responses: { 201: mediaItemSchema, 200: mediaItemSchema },
    }),
    async (req, res) => {
      const file = req.file;
      if (!file?.buffer) throw new AppError('bad_request', 'no file: send one multipart part named `file`');
      const fields = (req.body ?? {}) as Record<string, unknown>;
      const filename = cleanFilename(typeof fields.filename === 'string' ? fields.filename : file.originalname);
      const data = file.buffer;
      const check = checkMedia({ declaredType: file.mimetype, data, maxBytes: deps.limits.maxBytes });
      // what the audit log records of this change (never the bytes)
      res.locals.body = { filename: filename ?? null, declaredType: file.mimetype, sizeBytes: data.length };
      if (!check.ok) {
        throw check.status === 413 ? new AppError('payload_too_large', check.reason, undefined, 'media_too_large') : new AppError('unsupported_media_type', check.reason, undefined, 'media_type_refused');
      }
      const sha256 = createHash('sha256').update(data).digest('hex');
      const { item, created } = await services.mediaLibrary.add(res.locals.tenantId, { kind: check.kind, mimeType: check.mimeType, filename, sha256, data }, deps.limits);
      res.status(created ? 201 : 200).json(item);
    },
  );

  r.get(
    '/v1/media',
    allow(...LEAD_READERS),
    validate({ query: listQuery }),
    doc({ summary: 'List the media library', description: 'Newest first; `kind` filters (image, video, audio, document, sticker).', responses: { 200: pageOf(mediaItemSchema) } }),
    async (_req, res) => {
      res.json(await services.mediaLibrary.list(res.locals.tenantId, res.locals.query));
    },
  );

  r.get(
    '/v1/media/:mediaId',
    allow(...LEAD_READERS),
    validate({ params: idParams }),
    doc({ summary: 'Get a media library file', description: 'Its facts and the WhatsApp channels it was uploaded to (never the bytes).', responses: { 200: mediaItemDetailSchema } }),
    async (_req, res) => {
      res.json(await services.mediaLibrary.get(res.locals.tenantId, res.locals.params.mediaId));
    },
  );

  r.delete(
    '/v1/media/:mediaId',
    allow(...MANAGERS),
    validate({ params: idParams }),
    doc({
      summary: 'Delete a media library file',
      description: 'With its Meta media ids (Meta drops its copies when they expire). Signed urls to it answer 404 from now on; a send that names it fails `media_not_found`. 409 `media_in_use` while an agent asset names it: the message and `issues.agents` name the agents and assets (delete those assets first).',
      responses: { 200: mediaItemSchema },
    }),
    async (_req, res) => {
      res.json(await services.mediaLibrary.remove(res.locals.tenantId, res.locals.params.mediaId));
    },
  );

  r.get(
    '/media/:token',
    publicRoute('a signed, expiring media url: the token (HMAC-SHA256, expiry) is checked before any database work'),
    doc({
      summary: 'Download a media library file by signed url',
      description:
        'The url the send path gives Instagram and the web chat widget (valid MEDIA_URL_TTL_SECONDS). A malformed, tampered or expired token → 403 before any database work; a deleted file → 404; a file of a suspended tenant → 403 `tenant_suspended`. One `Range: bytes=…` range answers 206.',
      responses: {
        200: { contentType: '*/*', description: 'The file, with its MIME type as Content-Type' },
        206: { contentType: '*/*', description: 'The requested byte range (Content-Range)' },
        416: { description: 'The range starts past the end of the file; no body' },
      },
    }),
    async (req, res) => {
      const token = typeof req.params.token === 'string' ? req.params.token : '';
      const check = deps.urlTokens.verify(token);
      if (!check.ok) throw new AppError('forbidden', check.reason === 'expired' ? 'this media url has expired' : 'invalid media url', undefined, check.reason === 'expired' ? 'media_url_expired' : 'media_url_invalid');
      const limited = readLimit(`${req.ip ?? req.socket.remoteAddress ?? 'unknown'}|${check.mediaId}`);
      if (!limited.ok) {
        res.setHeader('Retry-After', String(limited.retryAfterS));
        throw new AppError('rate_limited', `too many reads of this media url from this address (at most ${deps.readsPerMinute ?? 120} a minute)`);
      }
      const found = await services.mediaLibrary.findForUrl(check.tenantId, check.mediaId);
      if (!found) throw new AppError('not_found', 'media not found');
      // a suspended tenant's files stop being served with it (its API keys answer 403 the same way)
      if (found.tenantSuspended) throw new AppError('forbidden', "this media url's tenant is suspended", undefined, 'tenant_suspended');
      const { item } = found;
      const size = item.sizeBytes;
      const maxAge = Math.max(0, Math.min(3600, Math.floor((check.expiresAt.getTime() - Date.now()) / 1000)));
      const headers: Record<string, string> = {
        'content-type': item.mimeType,
        'accept-ranges': 'bytes',
        'content-disposition': disposition(INLINE.test(item.mimeType) ? 'inline' : 'attachment', item.filename),
        'cache-control': `public, max-age=${maxAge}, immutable`,
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; sandbox",
        'cross-origin-resource-policy': 'cross-origin',
        etag: `"${item.sha256}"`,
      };
      const range = byteRange(req.headers.range, size);
      if (range === 'unsatisfiable') {
        res.status(416).set({ ...headers, 'content-range': `bytes */${size}` }).end();
        return;
      }
      const first = range?.first ?? 0;
      const last = range?.last ?? size - 1;
      let offset = first;
      const read = () => services.mediaLibrary.readChunk(item.id, offset, Math.min(chunkBytes, last + 1 - offset));
      let chunk = size > 0 && req.method !== 'HEAD' ? await read() : Buffer.alloc(0);
      // deleted between the lookup and the first read: still a proper answer (no header is out yet)
      if (size > 0 && req.method !== 'HEAD' && chunk.length === 0) throw new AppError('not_found', 'media not found');
      res.status(range ? 206 : 200).set({ ...headers, 'content-length': String(Math.max(0, last - first + 1)), ...(range ? { 'content-range': `bytes ${first}-${last}/${size}` } : {}) });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      try {
        for (;;) {
          const open = await writeWithBackpressure(res, chunk);
          offset += chunk.length;
          if (offset > last || !open) break;
          chunk = await read();
          // deleted mid-stream: Content-Length promised more, so the connection is cut (a client would wait for it)
          if (chunk.length === 0) throw new Error('the file was deleted while it was streamed');
        }
        res.end();
      } catch (err) {
        log.error({ err, mediaId: item.id }, 'media stream failed');
        res.destroy(err instanceof Error ? err : new Error('media stream failed'));
      }
    },
  );

  return r;
}
