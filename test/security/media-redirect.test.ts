/**
 * Media downloads cannot be pointed at our own network: every redirect hop is checked (https,
 * a Meta media host, public addresses only after DNS), hops are bounded, the bearer stays on
 * its origin, and the WhatsApp download url Meta's lookup returns is checked like the rest.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { createMediaActivities, MAX_MEDIA_REDIRECTS, type MediaDeps } from '../../activities/media/fetch';
import { isPublicAddress } from '../../activities/media/url-guard';
import { createLogger } from '../../lib/logger';
import type { MediaObjectSummary } from '../../services/media';

const TENANT = 'tenant-1';
const CHANNEL = 'channel-1';
const bytes = Buffer.from('meta media bytes');

function services(platform: 'whatsapp' | 'instagram') {
  const stored: Buffer[] = [];
  return {
    stored,
    channels: {
      async sendCredentials(id: string) {
        return id === CHANNEL ? { phoneNumberId: '1234567', accessToken: 'EAAGsecret-token', tenantId: TENANT, platform } : undefined;
      },
    },
    media: {
      async find() {
        return undefined;
      },
      async store(input: { providerMediaId: string; mimeType?: string; sha256: string; data: Buffer }): Promise<MediaObjectSummary> {
        stored.push(input.data);
        return { id: 'm-1', channelAccountId: CHANNEL, providerMediaId: input.providerMediaId, mimeType: input.mimeType ?? null, sha256: input.sha256, sizeBytes: input.data.length, createdAt: null } as MediaObjectSummary;
      },
    },
  };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

async function listen(handler: http.RequestListener): Promise<{ url: string; hits: string[]; close: () => Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('a redirect to our own network (real HTTP servers)', () => {
  test('a 302 from the Graph API origin to another loopback port is refused: nothing fetched, nothing stored', async () => {
    const internal = await listen((_req, res) => res.end('internal secret'));
    const graph = await listen((req, res) => {
      if (req.url?.startsWith('/v21.0/')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: `http://127.0.0.1:${(graph.url.split(':')[2] ?? '')}/download`, mime_type: 'image/png' }));
      } else if (req.url === '/download') {
        res.statusCode = 302;
        res.setHeader('location', `${internal.url}/secret`);
        res.end();
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    try {
      const s = services('whatsapp');
      const deps = { ...s, log: createLogger({ level: 'silent' }), graphApiUrl: graph.url, graphApiVersion: 'v21.0', timeoutMs: 2000 } as unknown as MediaDeps;
      const f = await failureOf(createMediaActivities(deps).fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '123456' }));
      expect(f.type).toBe('media_invalid_id');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/redirect 1/);
      expect(internal.hits).toHaveLength(0);
      expect(s.stored).toHaveLength(0);
    } finally {
      await Promise.all([internal.close(), graph.close()]);
    }
  });

  test('without an injected fetch, a Meta host name that resolves to loopback is refused before connecting', async () => {
    const s = services('instagram');
    const deps = {
      ...s,
      log: createLogger({ level: 'silent' }),
      graphApiUrl: 'https://graph.facebook.com',
      graphApiVersion: 'v21.0',
      timeoutMs: 2000,
      resolveHost: async () => ['127.0.0.1'],
    } as unknown as MediaDeps;
    const f = await failureOf(createMediaActivities(deps).fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1' }));
    expect([f.type, f.nonRetryable]).toEqual(['media_invalid_id', true]);
    expect(f.message).toMatch(/non-public address \(127\.0\.0\.1\)/);
  });
});

describe('every hop is checked (stub network, injected resolver)', () => {
  const GRAPH = 'https://graph.facebook.com';
  function make(platform: 'whatsapp' | 'instagram', routes: Record<string, () => Response>, dns: Record<string, string[]> = {}) {
    const s = services(platform);
    const calls: { url: string; authorization?: string }[] = [];
    const fetchStub = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      calls.push({ url, authorization: (init?.headers as Record<string, string> | undefined)?.authorization });
      expect(init?.redirect).toBe('manual');
      const route = routes[url];
      return route ? route() : new Response('not found', { status: 404 });
    }) as typeof fetch;
    const deps = {
      ...s,
      log: createLogger({ level: 'silent' }),
      graphApiUrl: GRAPH,
      graphApiVersion: 'v21.0',
      timeoutMs: 2000,
      fetch: fetchStub,
      resolveHost: async (host: string) => dns[host] ?? ['157.240.22.35'],
    } as unknown as MediaDeps;
    return { ...s, calls, fetchMedia: createMediaActivities(deps).fetchMedia };
  }
  const redirect = (to: string, status = 302) => () => new Response(null, { status, headers: { location: to } });
  const ok = () => new Response(bytes, { headers: { 'content-type': 'image/jpeg' } });
  const IG = (url: string) => ({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: url });

  test('a redirect chain ending on loopback (IPv4, IPv6, IPv4-mapped IPv6) is refused at that hop', async () => {
    for (const target of ['https://127.0.0.1/latest', 'https://[::1]/x', 'https://[::ffff:127.0.0.1]/x', 'https://[::ffff:7f00:1]/x']) {
      const k = make('instagram', {
        'https://lookaside.fbsbx.com/a': redirect('https://scontent.fbcdn.net/b'),
        'https://scontent.fbcdn.net/b': redirect(target, 307),
      });
      const f = await failureOf(k.fetchMedia(IG('https://lookaside.fbsbx.com/a')));
      expect([target, f.type, f.nonRetryable]).toEqual([target, 'media_invalid_id', true]);
      expect(f.message).toMatch(/redirect 2/);
      expect(k.calls.map((c) => c.url)).toEqual(['https://lookaside.fbsbx.com/a', 'https://scontent.fbcdn.net/b']);
      expect(k.stored).toHaveLength(0);
    }
  });

  test('a redirect to an allowed host name that resolves to a private address (10.0.0.1) is refused', async () => {
    const k = make(
      'instagram',
      { 'https://lookaside.fbsbx.com/a': redirect('https://internal.fbcdn.net/metadata'), 'https://internal.fbcdn.net/metadata': ok },
      { 'internal.fbcdn.net': ['157.240.22.36', '10.0.0.1'] },
    );
    const f = await failureOf(k.fetchMedia(IG('https://lookaside.fbsbx.com/a')));
    expect([f.type, f.nonRetryable]).toEqual(['media_invalid_id', true]);
    expect(f.message).toMatch(/non-public address \(10\.0\.0\.1\)/);
    expect(k.calls).toHaveLength(1);
    expect(k.stored).toHaveLength(0);
  });

  test(`more than ${MAX_MEDIA_REDIRECTS} redirects are refused`, async () => {
    const routes: Record<string, () => Response> = {};
    for (let i = 0; i <= MAX_MEDIA_REDIRECTS + 1; i++) routes[`https://lookaside.fbsbx.com/${i}`] = redirect(`https://lookaside.fbsbx.com/${i + 1}`);
    const k = make('instagram', routes);
    const f = await failureOf(k.fetchMedia(IG('https://lookaside.fbsbx.com/0')));
    expect([f.type, f.nonRetryable]).toEqual(['media_invalid_id', true]);
    expect(f.message).toMatch(/more than 3 redirects/);
    expect(k.calls).toHaveLength(MAX_MEDIA_REDIRECTS + 1);
    // within the bound it is followed
    const k2 = make('instagram', { 'https://lookaside.fbsbx.com/a': redirect('https://scontent.fbcdn.net/b'), 'https://scontent.fbcdn.net/b': ok });
    await expect(k2.fetchMedia(IG('https://lookaside.fbsbx.com/a'))).resolves.toMatchObject({ sizeBytes: bytes.length });
  });

  test('an http hop (even to a Meta host) and a non-Meta host are refused', async () => {
    for (const target of ['http://scontent.fbcdn.net/b', 'https://example.com/b', 'ftp://scontent.fbcdn.net/b']) {
      const k = make('instagram', { 'https://lookaside.fbsbx.com/a': redirect(target) });
      const f = await failureOf(k.fetchMedia(IG('https://lookaside.fbsbx.com/a')));
      expect([target, f.type, f.nonRetryable]).toEqual([target, 'media_invalid_id', true]);
      expect(k.calls).toHaveLength(1);
    }
  });

  test("the WhatsApp download url from Meta's lookup is checked, and the bearer never leaves its origin", async () => {
    const lookup = (url: string) => () => new Response(JSON.stringify({ url, mime_type: 'image/jpeg' }), { headers: { 'content-type': 'application/json' } });
    const bad = make('whatsapp', { [`${GRAPH}/v21.0/777?phone_number_id=1234567`]: lookup('https://evil.example/steal') });
    const f = await failureOf(bad.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '777' }));
    expect([f.type, f.nonRetryable]).toEqual(['media_invalid_id', true]);
    expect(bad.calls.map((c) => c.url)).toEqual([`${GRAPH}/v21.0/777?phone_number_id=1234567`]);

    const good = make('whatsapp', {
      [`${GRAPH}/v21.0/778?phone_number_id=1234567`]: lookup('https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=778'),
      'https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=778': redirect('https://mmg.whatsapp.net/d/f/778.enc'),
      'https://mmg.whatsapp.net/d/f/778.enc': ok,
    });
    await expect(good.fetchMedia({ tenantId: TENANT, channelAccountId: CHANNEL, providerMediaId: '778' })).resolves.toMatchObject({ sizeBytes: bytes.length });
    expect(good.calls.map((c) => c.authorization)).toEqual(['Bearer EAAGsecret-token', 'Bearer EAAGsecret-token', undefined]);
  });
});

describe('isPublicAddress', () => {
  test.each([
    ['157.240.22.35', true],
    ['2a03:2880:f10c:83:face:b00c:0:25de', true],
    ['127.0.0.1', false],
    ['10.0.0.1', false],
    ['172.16.5.4', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['224.0.0.1', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:10.0.0.1', false],
    ['::ffff:157.240.22.35', true],
    ['64:ff9b::a00:1', false],
    ['2002:7f00:1::', false],
    ['not an ip', false],
  ])('%s → %s', (ip, expected) => {
    expect(isPublicAddress(ip)).toBe(expected);
  });
});
