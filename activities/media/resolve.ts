/**
 * `resolveMediaForSend`: what a send puts in its message body for a media library file.
 *
 * - WhatsApp: a Meta media id. On the first send of the file on a channel it is uploaded with
 *   `POST /{version}/{phone-number-id}/media` (multipart: `messaging_product=whatsapp`, `type`,
 *   `file`; Meta answers `{ id }`) and the id is kept in `media_channel_uploads` until
 *   MEDIA_META_ID_TTL_HOURS after the upload (Meta keeps uploads 30 days; the default 29 days
 *   leaves a day for sends that wait in retries). After that, or when the send path reports the
 *   id unknown (`staleMetaMediaId`), the file is uploaded again.
 * - Instagram and web chat: a signed, expiring url of this deployment (`GET /media/:token`,
 *   PUBLIC_BASE_URL), which Instagram's servers and the widget fetch without credentials.
 *
 * Concurrency: sends of one file on one channel in this process share one upload (a promise per
 * (file, channel)); across worker processes two may upload at once, and then the first id
 * recorded wins and is answered to both (the other copy is never used; Meta drops it after 30
 * days). So: once per process, at worst once per process at the same moment, harmlessly.
 *
 * Failures are Temporal ApplicationFailures of the taxonomy (contract/failures.ts): a deleted file
 * `media_not_found`, an unknown channel `channel_not_found`, Graph API errors classified as for
 * sends (auth and permanent errors not retried), a network error `provider_transient`.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { FailureType } from '../../contract/failures';
import type { MediaKind } from '../../contract/media-types';
import { parseGraphJson } from '../../lib/graph-errors';
import type { Logger } from '../../lib/logger';
import type { ChannelService } from '../../services/channels';
import type { MediaLibraryService } from '../../services/media-library';
import type { MediaUrlTokens } from '../../services/media-url-tokens';
import { graphFailure } from './fetch';

export interface ResolveMediaInput {
  tenantId: string;
  /** The library file (`POST /v1/media` answered its id). */
  mediaId: string;
  channelAccountId: string;
  /**
   * The Meta media id a send just used and the Graph API refused as unknown or expired: it is
   * forgotten and the file uploaded again (only that id: one a concurrent send stored meanwhile stays).
   */
  staleMetaMediaId?: string;
}

interface FileFacts {
  kind: MediaKind;
  mimeType: string;
  filename: string | null;
  sizeBytes: number;
}

export type ResolvedMedia =
  | (FileFacts & { platform: 'whatsapp'; metaMediaId: string; expiresAt: string; /** True when this call uploaded it. */ uploaded: boolean })
  | (FileFacts & { platform: 'instagram' | 'webchat'; url: string; expiresAt: string });

export interface MediaResolverDeps {
  mediaLibrary: MediaLibraryService;
  channels: Pick<ChannelService, 'sendCredentials'>;
  log: Logger;
  graphApiUrl: string;
  graphApiVersion: string;
  timeoutMs: number;
  /** MEDIA_META_ID_TTL_HOURS in ms: how long an uploaded id is used. */
  metaIdTtlMs: number;
  /** Signs public media urls; absent (or no publicBaseUrl) = Instagram and web chat sends fail `media_url_not_configured`. */
  urlTokens?: MediaUrlTokens;
  publicBaseUrl?: string;
  /** MEDIA_URL_TTL_SECONDS in ms. */
  urlTtlMs: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

const uploadAnswer = z.object({ id: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/) });

export function createMediaResolver(deps: MediaResolverDeps) {
  const doFetch = deps.fetch ?? fetch;
  const now = deps.now ?? (() => new Date());
  const graphBase = deps.graphApiUrl.replace(/\/$/, '');
  const log = deps.log.child({ module: 'media.resolve' });
  const inFlight = new Map<string, Promise<{ metaMediaId: string; expiresAt: string }>>();

  const fail = (type: string, message: string, nonRetryable: boolean) => ApplicationFailure.create({ type, message, nonRetryable });

  async function upload(input: { tenantId: string; mediaId: string; channelAccountId: string; phoneNumberId: string; accessToken: string; file: FileFacts }) {
    const data = await deps.mediaLibrary.readAll(input.tenantId, input.mediaId);
    if (!data) throw fail(FailureType.MediaNotFound, `media ${input.mediaId} was deleted`, true);
    const form = new FormData();
    form.append('messaging_product', 'whatsapp');
    form.append('type', input.file.mimeType);
    form.append('file', new Blob([new Uint8Array(data.buffer, data.byteOffset, data.byteLength)], { type: input.file.mimeType }), input.file.filename ?? `media-${input.mediaId}`);
    const startedAt = now();
    let res: Response;
    try {
      res = await doFetch(`${graphBase}/${deps.graphApiVersion}/${encodeURIComponent(input.phoneNumberId)}/media`, {
        method: 'POST',
        headers: { authorization: `Bearer ${input.accessToken}` },
        body: form,
        signal: AbortSignal.timeout(Math.max(deps.timeoutMs, 60_000)),
      });
    } catch (err) {
      throw fail(FailureType.ProviderTransient, `Graph API media upload unreachable: ${(err as Error).message}`, false);
    }
    const text = await res.text();
    if (!res.ok) throw graphFailure(res.status, text, 'media upload');
    const answer = uploadAnswer.safeParse(parseGraphJson(text));
    if (!answer.success) throw fail(FailureType.ProviderTransient, `Graph API media upload answered ${res.status} without a media id`, false);
    const saved = await deps.mediaLibrary.saveUpload({
      mediaId: input.mediaId,
      channelAccountId: input.channelAccountId,
      metaMediaId: answer.data.id,
      uploadedAt: startedAt,
      expiresAt: new Date(startedAt.getTime() + deps.metaIdTtlMs),
    });
    log.info({ mediaId: input.mediaId, channelAccountId: input.channelAccountId, sizeBytes: data.length, reused: saved.metaMediaId !== answer.data.id }, 'media uploaded to the Graph API');
    return saved;
  }

  return {
    async resolveMediaForSend(input: ResolveMediaInput): Promise<ResolvedMedia> {
      const creds = await deps.channels.sendCredentials(input.channelAccountId);
      if (!creds || creds.tenantId !== input.tenantId) throw fail(FailureType.ChannelNotFound, `channel account ${input.channelAccountId} not found`, true);
      if (creds.deleted) throw fail(FailureType.ChannelDeleted, `channel account ${input.channelAccountId} is deleted: nothing is sent on it`, true);
      const item = await deps.mediaLibrary.find(input.tenantId, input.mediaId);
      if (!item) throw fail(FailureType.MediaNotFound, `media ${input.mediaId} not found in the media library`, true);
      const file: FileFacts = { kind: item.kind, mimeType: item.mimeType, filename: item.filename, sizeBytes: item.sizeBytes };

      if (creds.platform !== 'whatsapp') {
        if (!deps.urlTokens || !deps.publicBaseUrl) {
          throw fail(FailureType.MediaUrlNotConfigured, `library media on ${creds.platform} needs a public url: set PUBLIC_BASE_URL`, true);
        }
        const expiresAt = new Date(now().getTime() + deps.urlTtlMs);
        const token = deps.urlTokens.sign({ tenantId: input.tenantId, mediaId: item.id, expiresAt });
        return { ...file, platform: creds.platform, url: `${deps.publicBaseUrl.replace(/\/$/, '')}/media/${token}`, expiresAt: expiresAt.toISOString() };
      }

      // no provider call where a send would make none (it parks until the tenant or channel is back)
      if (creds.tenantSuspended) throw fail(FailureType.TenantSuspended, 'the tenant is suspended: nothing is uploaded until the platform admin reactivates it', true);
      if (creds.circuitState === 'open') throw fail(FailureType.ChannelCircuitOpen, `the circuit breaker of channel ${input.channelAccountId} is open: nothing is uploaded until it is closed`, true);
      if (input.staleMetaMediaId) await deps.mediaLibrary.forgetUpload(item.id, input.channelAccountId, input.staleMetaMediaId);
      const cached = await deps.mediaLibrary.cachedUpload(item.id, input.channelAccountId, now());
      if (cached && cached.metaMediaId !== input.staleMetaMediaId) return { ...file, platform: 'whatsapp', ...cached, uploaded: false };

      const key = `${item.id}:${input.channelAccountId}`;
      let pending = inFlight.get(key);
      const mine = !pending;
      if (!pending) {
        pending = upload({ tenantId: input.tenantId, mediaId: item.id, channelAccountId: input.channelAccountId, phoneNumberId: creds.phoneNumberId, accessToken: creds.accessToken, file }).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      const got = await pending;
      return { ...file, platform: 'whatsapp', ...got, uploaded: mine };
    },
  };
}

export type MediaResolver = ReturnType<typeof createMediaResolver>;
