/**
 * `fetchMedia`: download an inbound media object on demand and keep it in `media_objects`.
 *
 * WhatsApp gives a media id: `GET /{version}/{media-id}` (bearer) answers
 * `{ url, mime_type, sha256, file_size }`, and that url is downloaded with the same bearer.
 * Instagram gives no id, only a signed CDN url (our parser uses it as the media id): it is
 * downloaded directly, without a bearer, and only from Meta's CDN hosts (a tenant that signs
 * its own webhooks must not make us fetch an arbitrary url).
 *
 * Every hop is checked (activities/media/url-guard.ts): redirects are followed by hand (at most
 * MAX_MEDIA_REDIRECTS), each hop must be https on a Meta media host and resolve only to public
 * addresses, and the connection goes to the address that was checked (no second DNS answer).
 * The bearer never leaves the origin it was meant for. The one explicit exception is
 * `trustedOrigins` (the deployment's GRAPH_API_URL; in tests the local fake Graph API).
 *
 * Bounded by `maxBytes` (MEDIA_MAX_BYTES; bigger is a non-retryable failure), checked against
 * the sha256 Meta gives, stored once per (channel, media id): a retry or a second request
 * returns the stored row. Failures follow the Graph API error taxonomy.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { FailureType, type FailureTypeName } from '../../contract/failures';
import type { Logger } from '../../lib/logger';
import type { ChannelService } from '../../services/channels';
import type { MediaObjectSummary, MediaService } from '../../services/media';
import { parseGraphJson, readGraphError } from '../../lib/graph-errors';
import { checkMediaUrl, systemResolver, type ResolveHost } from './url-guard';

/** Redirects a media download may follow (Meta's lookaside urls redirect at most once). */
export const MAX_MEDIA_REDIRECTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export const DEFAULT_MEDIA_MAX_BYTES = 16 * 1024 * 1024;

export interface FetchMediaInput {
  tenantId: string;
  channelAccountId: string;
  /** WhatsApp media id, or an Instagram attachment's CDN url. */
  providerMediaId: string;
}

export interface FetchMediaResult extends MediaObjectSummary {
  /** True when it was already stored: nothing was downloaded. */
  cached: boolean;
}

export interface MediaDeps {
  media: MediaService;
  channels: ChannelService;
  log: Logger;
  graphApiUrl: string;
  graphApiVersion: string;
  /** Per-request timeout of the media lookup; downloads get at least 60 s. */
  timeoutMs: number;
  maxBytes?: number;
  /** Replaces the network for every request (tests); without it untrusted hops connect to the checked address. */
  fetch?: typeof fetch;
  /** DNS for the hop check (tests make a name resolve where they need it); default the system resolver. */
  resolveHost?: ResolveHost;
  /**
   * Origins exempt from the https / Meta host / public address checks: the deployment's own
   * GRAPH_API_URL (set by the operator; in tests the local fake). Default: the Graph API origin.
   */
  trustedOrigins?: string[];
}

const mediaInfoSchema = z.looseObject({
  url: z.url(),
  mime_type: z.string().optional(),
  sha256: z.string().optional(),
  file_size: z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).optional(),
});

const GRAPH_MEDIA_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * GET to an address that was already checked (the host name only names the TLS server and the
 * Host header). https; plain http only for a url that is http (the knowledge base's url documents
 * outside production: activities/knowledge/fetch-url.ts).
 */
export function pinnedGet(url: URL, headers: Record<string, string>, signal: AbortSignal, address: string): Promise<Response> {
  const family = isIP(address);
  const lib = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: 'GET',
        headers,
        signal,
        lookup: (_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => (opts?.all ? cb(null, [{ address, family }]) : cb(null, address, family)),
      } as https.RequestOptions,
      (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        const status = res.statusCode ?? 502;
        const body = status === 204 || status === 304 ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
        if (!body) res.resume();
        resolve(new Response(body, { status: status < 200 || status > 599 ? 502 : status, headers: h }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function failure(type: FailureTypeName, message: string, opts: { nonRetryable: boolean; details?: unknown }): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: opts.nonRetryable, details: opts.details !== undefined ? [opts.details] : undefined });
}

function tooLarge(size: number, max: number): ApplicationFailure {
  return failure(FailureType.MediaTooLarge, `media is ${size} bytes, over the ${max}-byte limit (MEDIA_MAX_BYTES)`, { nonRetryable: true, details: { sizeBytes: size, maxBytes: max } });
}

/** A Graph API error answer as a failure of the taxonomy (auth and permanent errors are not retried). */
export function graphFailure(status: number, text: string, what: string): ApplicationFailure {
  const err = readGraphError(status, parseGraphJson(text));
  const type =
    err.class === 'rate_limited' ? FailureType.ProviderRateLimited : err.class === 'auth' ? FailureType.ProviderAuth : err.retryable ? FailureType.ProviderTransient : FailureType.ProviderPermanent;
  const message = err.isGraphError ? (err.message ?? '') : text.slice(0, 200);
  return failure(type, `${what}: Graph API error ${err.code ?? status} (${err.class}): ${message}`, {
    nonRetryable: !err.retryable,
    details: { httpStatus: status, code: err.code ?? null, subcode: err.subcode ?? null, class: err.class },
  });
}

/** sha256 as Meta may give it: hex or base64. */
function sha256Matches(expected: string, data: Buffer): boolean {
  const digest = createHash('sha256').update(data);
  const hex = digest.digest('hex');
  const e = expected.trim();
  return e.toLowerCase() === hex || e.replace(/=+$/, '') === Buffer.from(hex, 'hex').toString('base64').replace(/=+$/, '');
}

export function createMediaActivities(deps: MediaDeps) {
  const doFetch = deps.fetch ?? fetch;
  const maxBytes = deps.maxBytes ?? DEFAULT_MEDIA_MAX_BYTES;
  const graphBase = deps.graphApiUrl.replace(/\/$/, '');
  const graphOrigin = new URL(graphBase).origin;
  const guard = { trustedOrigins: new Set(deps.trustedOrigins ?? [graphOrigin]), resolve: deps.resolveHost ?? systemResolver };
  const log = deps.log.child({ module: 'media.fetch' });

  /**
   * GET with redirects followed by hand: every hop checked before it is requested, at most
   * MAX_MEDIA_REDIRECTS of them, the bearer dropped when a hop leaves the first origin.
   */
  async function guardedGet(first: URL, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    let url = first;
    let hopHeaders = headers;
    for (let hop = 0; ; hop++) {
      const verdict = await checkMediaUrl(url, guard);
      if (!verdict.ok) {
        log.warn({ hop, host: url.hostname, reason: verdict.reason }, 'media url refused');
        throw failure(FailureType.MediaInvalidId, `media url refused${hop ? ` at redirect ${hop}` : ''}: ${verdict.reason}`, { nonRetryable: true, details: { hop } });
      }
      const res =
        deps.fetch || verdict.trusted || !verdict.address
          ? await doFetch(url, { headers: hopHeaders, signal, redirect: 'manual' })
          : await pinnedGet(url, hopHeaders, signal, verdict.address);
      if (!REDIRECT_STATUSES.has(res.status)) return res;
      await res.body?.cancel().catch(() => undefined);
      const location = res.headers.get('location');
      if (!location) throw failure(FailureType.ProviderTransient, `media download answered ${res.status} without a location`, { nonRetryable: false });
      if (hop >= MAX_MEDIA_REDIRECTS) {
        throw failure(FailureType.MediaInvalidId, `media url refused: more than ${MAX_MEDIA_REDIRECTS} redirects`, { nonRetryable: true, details: { hop } });
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw failure(FailureType.MediaInvalidId, 'media download redirected to an invalid url', { nonRetryable: true });
      }
      if (next.origin !== first.origin) hopHeaders = Object.fromEntries(Object.entries(hopHeaders).filter(([k]) => k.toLowerCase() !== 'authorization'));
      url = next;
    }
  }

  /** GET a url, reading at most maxBytes; throws the right failure otherwise. */
  async function download(url: string, headers: Record<string, string>, opts: { expiredIsPermanent: boolean }): Promise<{ data: Buffer; contentType?: string }> {
    let res: Response;
    let first: URL;
    try {
      first = new URL(url);
    } catch {
      throw failure(FailureType.MediaInvalidId, 'media url is not a valid url', { nonRetryable: true });
    }
    try {
      res = await guardedGet(first, headers, AbortSignal.timeout(Math.max(deps.timeoutMs, 60_000)));
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      throw failure(FailureType.ProviderTransient, `media download failed: ${(err as Error).message}`, { nonRetryable: false });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      if (res.status === 401) throw graphFailure(res.status, text, 'media download');
      // an expired Instagram CDN url stays expired; a WhatsApp one is fetched afresh on retry
      const permanent = opts.expiredIsPermanent && res.status >= 400 && res.status < 500 && res.status !== 429;
      throw failure(permanent ? FailureType.ProviderPermanent : FailureType.ProviderTransient, `media download answered ${res.status}`, {
        nonRetryable: permanent,
        details: { httpStatus: res.status },
      });
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw tooLarge(declared, maxBytes);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw failure(FailureType.ProviderTransient, `media download interrupted: ${(err as Error).message}`, { nonRetryable: false });
        }
        if (chunk.done) break;
        size += chunk.value.byteLength;
        if (size > maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw tooLarge(size, maxBytes);
        }
        chunks.push(Buffer.from(chunk.value));
      }
    }
    const contentType = res.headers.get('content-type')?.split(';')[0]?.trim() || undefined;
    return { data: Buffer.concat(chunks, size), contentType };
  }

  return {
    /** Download one inbound media object (or return the stored one); bytes go to media_objects, not through Temporal. */
    async fetchMedia(input: FetchMediaInput): Promise<FetchMediaResult> {
      const creds = await deps.channels.sendCredentials(input.channelAccountId);
      if (!creds || creds.tenantId !== input.tenantId) {
        throw failure(FailureType.ChannelNotFound, `channel account ${input.channelAccountId} not found`, { nonRetryable: true });
      }
      const cached = await deps.media.find(input.channelAccountId, input.providerMediaId);
      if (cached) return { ...cached, cached: true };
      // a deleted channel's stored media stays readable; nothing new is downloaded with its (wiped) token
      if (creds.deleted) throw failure(FailureType.ChannelDeleted, `channel account ${input.channelAccountId} is deleted: media not stored before cannot be downloaded`, { nonRetryable: true });

      const id = input.providerMediaId;
      let data: Buffer;
      let mimeType: string | undefined;
      let expectedSha: string | undefined;

      if (/^https?:\/\//i.test(id)) {
        // Instagram: the attachment's CDN url is the id; no bearer goes to it.
        let url: URL;
        try {
          url = new URL(id);
        } catch {
          throw failure(FailureType.MediaInvalidId, 'media url is not a valid url', { nonRetryable: true });
        }
        if (!guard.trustedOrigins.has(url.origin) && url.protocol !== 'https:') {
          throw failure(FailureType.MediaInvalidId, `media url must be https (${url.hostname})`, { nonRetryable: true });
        }
        const got = await download(url.toString(), {}, { expiredIsPermanent: true });
        data = got.data;
        mimeType = got.contentType;
      } else {
        if (!GRAPH_MEDIA_ID.test(id)) throw failure(FailureType.MediaInvalidId, 'not a Graph API media id', { nonRetryable: true });
        const auth = { authorization: `Bearer ${creds.accessToken}` };
        const query = creds.platform === 'whatsapp' ? `?phone_number_id=${encodeURIComponent(creds.phoneNumberId)}` : '';
        let res: Response;
        try {
          res = await doFetch(`${graphBase}/${deps.graphApiVersion}/${encodeURIComponent(id)}${query}`, { headers: auth, signal: AbortSignal.timeout(deps.timeoutMs), redirect: 'manual' });
        } catch (err) {
          throw failure(FailureType.ProviderTransient, `Graph API unreachable: ${(err as Error).message}`, { nonRetryable: false });
        }
        const text = await res.text();
        if (!res.ok) throw graphFailure(res.status, text, 'media lookup');
        const info = mediaInfoSchema.safeParse(parseGraphJson(text));
        if (!info.success) {
          throw failure(FailureType.ProviderTransient, `Graph API media lookup answered ${res.status} without a media url`, { nonRetryable: false });
        }
        if (info.data.file_size !== undefined && info.data.file_size > maxBytes) throw tooLarge(info.data.file_size, maxBytes);
        const got = await download(info.data.url, auth, { expiredIsPermanent: false });
        data = got.data;
        mimeType = info.data.mime_type ?? got.contentType;
        expectedSha = info.data.sha256;
      }

      if (expectedSha && !sha256Matches(expectedSha, data)) {
        throw failure(FailureType.MediaChecksumMismatch, 'downloaded media does not match the sha256 the Graph API gave', { nonRetryable: false });
      }
      const sha256 = createHash('sha256').update(data).digest('hex');
      const stored = await deps.media.store({ tenantId: input.tenantId, channelAccountId: input.channelAccountId, providerMediaId: id, mimeType, sha256, data });
      log.info({ channelAccountId: input.channelAccountId, mediaObjectId: stored.id, sizeBytes: stored.sizeBytes, mimeType: stored.mimeType }, 'media fetched');
      return { ...stored, cached: false };
    },
  };
}
