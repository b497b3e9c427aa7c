/**
 * fetchMedia's edges with stub services and a stub `fetch` speaking the Graph API media
 * protocol: host allow-list for Instagram urls, sha256 check, the size cap while streaming,
 * error classes, and the cache.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { createMediaActivities, type MediaDeps } from '../../activities/media/fetch';
import { createLogger } from '../../lib/logger';
import type { MediaObjectSummary } from '../../services/media';

const TENANT = 'tenant-1';
const CHANNEL = 'channel-1';
const GRAPH = 'http://graph.test';

function stubs(platform: 'whatsapp' | 'instagram' = 'whatsapp') {
  const stored = new Map<string, MediaObjectSummary & { data: Buffer }>();
  const channels = {
    async sendCredentials(id: string) {
      return id === CHANNEL ? { phoneNumberId: '1234567', accessToken: 'EAAGsecret', tenantId: TENANT, platform } : undefined;
    },
  };
  const media = {
    async find(_c: string, id: string) {
      const s = stored.get(id);
      if (!s) return undefined;
      const { data: _data, ...rest } = s;
      return rest;
    },
    async store(input: { providerMediaId: string; mimeType?: string; sha256: string; data: Buffer }) {
      const row = { id: `m-${stored.size + 1}`, channelAccountId: CHANNEL, providerMediaId: input.providerMediaId, mimeType: input.mimeType ?? null, sha256: input.sha256, sizeBytes: input.data.length, createdAt: null, data: input.data };
      stored.set(input.providerMediaId, row);
      const { data: _data, ...rest } = row;
      return rest;
    },
  };
  return { stored, channels, media };
}

type Route = (url: URL, init?: RequestInit) => Response | Promise<Response>;

function make(route: Route, opts: { maxBytes?: number; platform?: 'whatsapp' | 'instagram' } = {}) {
  const s = stubs(opts.platform);
  const calls: { url: string; authorization?: string }[] = [];
  const fetchStub = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push({ url: url.toString(), authorization: (init?.headers as Record<string, string> | undefined)?.authorization });
    return route(url, init);
  }) as typeof fetch;
  const deps = {
    media: s.media,
    channels: s.channels,
    log: createLogger({ level: 'silent' }),
    graphApiUrl: GRAPH,
    graphApiVersion: 'v21.0',
    timeoutMs: 1000,
    maxBytes: opts.maxBytes ?? 1024,
    fetch: fetchStub,
    // Meta's hosts resolve to a public address here (no DNS in unit tests)
    resolveHost: async () => ['157.240.22.35'],
  } as unknown as MediaDeps;
  return { ...s, calls, fetchMedia: createMediaActivities(deps).fetchMedia };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('fetchMedia', () => {
  const bytes = Buffer.from('hello media bytes');
  const graphRoute =
    (info: Record<string, unknown>, download: () => Response = () => new Response(bytes, { headers: { 'content-type': 'image/png' } })): Route =>
    (url) =>
      url.pathname === '/v21.0/555' ? json({ url: `${GRAPH}/dl/555`, ...info }) : download();

  test('looks up, downloads with the bearer, checks sha256 (hex or base64) and stores once', async () => {
    for (const given of [sha(bytes), createHash('sha256').update(bytes).digest('base64')]) {
      const k = make(graphRoute({ mime_type: 'image/png', sha256: given, file_size: bytes.length }));
      const r = await k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '555' });
      expect(r).toMatchObject({ cached: false, mimeType: 'image/png', sizeBytes: bytes.length, sha256: sha(bytes) });
      expect(k.calls.map((c) => [new URL(c.url).pathname + new URL(c.url).search, c.authorization])).toEqual([
        ['/v21.0/555?phone_number_id=1234567', 'Bearer EAAGsecret'],
        ['/dl/555', 'Bearer EAAGsecret'],
      ]);
      const again = await k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '555' });
      expect(again.cached).toBe(true);
      expect(k.calls).toHaveLength(2);
    }
  });

  test('a sha256 mismatch is a retryable failure and nothing is stored', async () => {
    const k = make(graphRoute({ sha256: sha(Buffer.from('other')) }));
    const f = await failureOf(k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '555' }));
    expect([f.type, f.nonRetryable]).toEqual(['media_checksum_mismatch', false]);
    expect(k.stored.size).toBe(0);
  });

  test('the size cap holds while streaming, even without a declared size', async () => {
    const big = Buffer.alloc(3000, 1);
    const stream = () =>
      new Response(
        new ReadableStream({
          start(c) {
            for (let i = 0; i < 3; i++) c.enqueue(big.subarray(i * 1000, (i + 1) * 1000));
            c.close();
          },
        }),
      );
    const k = make(graphRoute({}, stream));
    const f = await failureOf(k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '555' }));
    expect([f.type, f.nonRetryable]).toEqual(['media_too_large', true]);
  });

  test('a declared file_size over the cap is refused before downloading', async () => {
    const k = make(graphRoute({ file_size: 5000 }));
    const f = await failureOf(k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '555' }));
    expect(f.type).toBe('media_too_large');
    expect(k.calls).toHaveLength(1);
  });

  test.each([
    [{ error: { code: 190, message: 'bad token' } }, 401, 'provider_auth', true],
    [{ error: { code: 100, message: 'Unsupported get request' } }, 400, 'provider_permanent', true],
    [{ error: { code: 4, message: 'limit' } }, 429, 'provider_rate_limited', false],
    [{ error: { code: 2, message: 'temporarily unavailable' } }, 503, 'provider_transient', false],
  ] as const)('a Graph error %j (%s) is %s', async (body, status, type, nonRetryable) => {
    const k = make(() => json(body, status));
    const f = await failureOf(k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '555' }));
    expect([f.type, f.nonRetryable]).toEqual([type, nonRetryable]);
  });

  test('an unknown channel or another tenant is not found', async () => {
    const k = make(graphRoute({}));
    expect((await failureOf(k.fetchMedia({ tenantId: 'tenant-2', channelAccountId: CHANNEL, providerMediaId: '555' }))).type).toBe('channel_not_found');
    expect((await failureOf(k.fetchMedia({ tenantId: TENANT, channelAccountId: 'nope', providerMediaId: '555' }))).type).toBe('channel_not_found');
    expect(k.calls).toHaveLength(0);
  });

  test('Instagram urls: only Meta CDN hosts over https, fetched without a bearer', async () => {
    const k = make(() => new Response(bytes, { headers: { 'content-type': 'image/jpeg; charset=binary' } }), { platform: 'instagram' });
    const ok = await k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=x' });
    expect(ok).toMatchObject({ mimeType: 'image/jpeg', sizeBytes: bytes.length });
    expect(k.calls[0]!.authorization).toBeUndefined();
    for (const bad of ['http://lookaside.fbsbx.com/x', 'https://169.254.169.254/latest/meta-data', 'https://fbsbx.com.evil.example/x', 'https://example.com/x', 'not a url', '../../etc/passwd']) {
      const f = await failureOf(k.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: bad }));
      expect([bad, f.type, f.nonRetryable]).toEqual([bad, 'media_invalid_id', true]);
    }
    expect(k.calls).toHaveLength(1);
  });

  test('an expired Instagram url is permanent; a failed WhatsApp download retries (a fresh url next time)', async () => {
    const ig = make(() => new Response('gone', { status: 403 }), { platform: 'instagram' });
    const f1 = await failureOf(ig.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: 'https://scontent.cdninstagram.com/v/x.jpg' }));
    expect([f1.type, f1.nonRetryable]).toEqual(['provider_permanent', true]);
    const wa = make(graphRoute({}, () => new Response('expired', { status: 404 })));
    const f2 = await failureOf(wa.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '555' }));
    expect([f2.type, f2.nonRetryable]).toEqual(['provider_transient', false]);
  });
});
