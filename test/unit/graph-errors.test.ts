/**
 * The one reader of Graph API error answers (lib/graph-errors.ts): every kind of code, malformed
 * and non-JSON bodies, and what each caller makes of it, HTTP status fallbacks included: the
 * send path (ApplicationFailure types, circuit breaker), media lookups (graphFailure), the
 * channel ownership check and template sync (AppErrors the API answers with).
 */
import { ApplicationFailure } from '@temporalio/common';
import { createGraphSender } from '../../activities/channels/graph-send';
import { graphFailure } from '../../activities/media/fetch';
import { AppError } from '../../lib/errors';
import { classifyGraphError, graphErrorKind, isCallCountLimit, parseGraphJson, readGraphError, type GraphErrorClass, type GraphErrorKind } from '../../lib/graph-errors';
import { createLogger } from '../../lib/logger';
import { createChannelOwnershipVerifier } from '../../services/channel-ownership';
import type { ChannelService } from '../../services/channels';
import type { LeadService } from '../../services/leads';
import { createTemplateSync } from '../../services/template-sync';

const log = createLogger({ level: 'silent' });
const metaError = (error: Record<string, unknown>, status: number) => new Response(JSON.stringify({ error }), { status, headers: { 'content-type': 'application/json' } });
const html = (status: number) => new Response('<html><body>Bad Gateway</body></html>', { status, headers: { 'content-type': 'text/html' } });

describe('graphErrorKind / classifyGraphError: every code class', () => {
  test.each<[number, GraphErrorKind, GraphErrorClass]>([
    [0, 'token_invalid', 'auth'],
    [102, 'token_invalid', 'auth'],
    [190, 'token_invalid', 'auth'],
    [10, 'permission_denied', 'auth'],
    [200, 'permission_denied', 'auth'],
    [299, 'permission_denied', 'auth'],
    [368, 'account_restricted', 'auth'],
    [131031, 'account_restricted', 'auth'],
    [4, 'rate_limited', 'rate_limited'],
    [17, 'rate_limited', 'rate_limited'],
    [32, 'rate_limited', 'rate_limited'],
    [341, 'rate_limited', 'rate_limited'],
    [613, 'rate_limited', 'rate_limited'],
    [80007, 'rate_limited', 'rate_limited'],
    [80008, 'rate_limited', 'rate_limited'],
    [130429, 'rate_limited', 'rate_limited'],
    [131056, 'rate_limited', 'rate_limited'],
    [1, 'transient', 'transient'],
    [2, 'transient', 'transient'],
    [131000, 'transient', 'transient'],
    [131016, 'transient', 'transient'],
    [131057, 'transient', 'transient'],
    [133004, 'transient', 'transient'],
    [131047, 'window_closed', 'reengagement'],
    [131049, 'spam_limited', 'spam_limited'],
    [100, 'invalid_parameter', 'permanent'],
    [803, 'object_not_found', 'permanent'],
    [551, 'rejected', 'permanent'],
    [131008, 'rejected', 'permanent'],
    [131026, 'rejected', 'permanent'],
    [131053, 'rejected', 'permanent'],
    [131062, 'rejected', 'permanent'],
    [132000, 'rejected', 'permanent'],
    [132016, 'rejected', 'permanent'],
    [133010, 'rejected', 'permanent'],
    [130472, 'rejected', 'permanent'],
    [132017, 'unknown', 'unknown'],
    [300, 'unknown', 'unknown'],
    [999999, 'unknown', 'unknown'],
    // subcodes of 190 / 102 (Graph API "Handling Errors"), never codes of their own
    [463, 'unknown', 'unknown'],
    [467, 'unknown', 'unknown'],
  ])('code %s is %s (%s)', (code, kind, cls) => {
    expect(graphErrorKind(code)).toBe(kind);
    expect(classifyGraphError(code)).toBe(cls);
  });

  test('call-count limits (a rolling hour) among the rate limits', () => {
    for (const code of [4, 17, 32, 341, 80007, 80008]) expect([code, isCallCountLimit(code), graphErrorKind(code)]).toEqual([code, true, 'rate_limited']);
    for (const code of [613, 130429, 131056, 190, undefined]) expect([code, isCallCountLimit(code)]).toEqual([code, false]);
  });

  test('subcodes: Instagram / Messenger 10 outside the window is window_closed; other subcodes keep the code\'s kind', () => {
    expect(graphErrorKind(10, 2534022)).toBe('window_closed');
    expect(graphErrorKind(10, 2018278)).toBe('window_closed');
    expect(graphErrorKind(10, 123)).toBe('permission_denied');
    expect(graphErrorKind(190, 463)).toBe('token_invalid');
    expect(graphErrorKind(190, 467)).toBe('token_invalid');
    expect(graphErrorKind(100, 33)).toBe('invalid_parameter');
    expect(graphErrorKind(undefined)).toBe('unknown');
    expect(graphErrorKind(undefined, 2534022)).toBe('unknown');
  });
});

describe('readGraphError', () => {
  test('reads every field of a Graph error body', () => {
    const body = {
      error: {
        message: '(#131026) Message undeliverable',
        type: 'OAuthException',
        code: 131026,
        error_subcode: 2494010,
        error_data: { messaging_product: 'whatsapp', details: 'the recipient cannot receive it' },
        fbtrace_id: 'AbCdEfGhIjK',
        is_transient: false,
      },
    };
    expect(readGraphError(400, body)).toEqual({
      httpStatus: 400,
      isGraphError: true,
      code: 131026,
      subcode: 2494010,
      message: '(#131026) Message undeliverable',
      type: 'OAuthException',
      details: 'the recipient cannot receive it',
      fbtraceId: 'AbCdEfGhIjK',
      kind: 'rejected',
      class: 'permanent',
      retryable: false,
    });
  });

  test('a field of the wrong type is dropped, the rest is kept', () => {
    const err = readGraphError(401, { error: { code: 190, message: 42, error_subcode: '463', error_data: 'x', fbtrace_id: 7 } });
    expect(err).toMatchObject({ isGraphError: true, code: 190, subcode: undefined, message: undefined, details: undefined, fbtraceId: undefined, kind: 'token_invalid', class: 'auth' });
  });

  test('a code that is not an integer is no code', () => {
    for (const code of ['190', 190.5, null, true]) {
      expect(readGraphError(400, { error: { code, message: 'm' } })).toMatchObject({ isGraphError: true, code: undefined, message: 'm', kind: 'unknown', class: 'unknown' });
    }
  });

  test.each([
    ['error is a string', { error: 'bad' }],
    ['error is null', { error: null }],
    ['error is an array', { error: [190] }],
    ['no error key', { message: 'x', code: 190 }],
    ['an array', [{ error: { code: 190 } }]],
    ['null', null],
    ['a JSON string', 'Error validating access token'],
    ['a number', 190],
    ['not JSON', undefined],
  ])('not a Graph error body (%s): no code, no message', (_name, json) => {
    expect(readGraphError(400, json)).toEqual({
      httpStatus: 400,
      isGraphError: false,
      code: undefined,
      subcode: undefined,
      message: undefined,
      type: undefined,
      details: undefined,
      fbtraceId: undefined,
      kind: 'unknown',
      class: 'unknown',
      retryable: false,
    });
  });

  test('parseGraphJson: undefined for HTML, an empty or a cut-off body', () => {
    expect(parseGraphJson('<html><body>Bad Gateway</body></html>')).toBeUndefined();
    expect(parseGraphJson('')).toBeUndefined();
    expect(parseGraphJson('{"error":{"code":19')).toBeUndefined();
    expect(parseGraphJson('{"error":{"code":190}}')).toEqual({ error: { code: 190 } });
  });

  test('retryable: by class; without a known code, 5xx and 429 only', () => {
    for (const status of [500, 502, 503, 504, 429]) {
      expect([status, readGraphError(status, undefined).retryable]).toEqual([status, true]);
      expect([status, readGraphError(status, { error: { code: 999999 } }).retryable]).toEqual([status, true]);
    }
    for (const status of [400, 401, 403, 404, 409]) {
      expect([status, readGraphError(status, undefined).retryable]).toEqual([status, false]);
      expect([status, readGraphError(status, { error: { code: 999999 } }).retryable]).toEqual([status, false]);
    }
    // a known code decides whatever the status
    expect(readGraphError(500, { error: { code: 131026 } }).retryable).toBe(false);
    expect(readGraphError(429, { error: { code: 190 } }).retryable).toBe(false);
    expect(readGraphError(400, { error: { code: 130429 } }).retryable).toBe(true);
    expect(readGraphError(400, { error: { code: 2 } }).retryable).toBe(true);
  });
});

/** What a promise rejects with, when it is an instance of `type` (anything else fails the test). */
async function rejectionOf<E>(p: Promise<unknown>, type: new (...args: any[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    if (err instanceof type) return err;
    throw err;
  }
  throw new Error(`expected a ${type.name}`);
}
const failureOf = (p: Promise<unknown>) => rejectionOf(p, ApplicationFailure);
const appErrorOf = (p: Promise<unknown>) => rejectionOf(p, AppError);

describe('the send path (graph-send)', () => {
  function sender(answer: () => Response) {
    const failed: unknown[] = [];
    const circuits: unknown[] = [];
    const leads = {
      async createOutbound(r: { id: string }) {
        return { id: r.id, providerMessageId: null, status: 'pending', unconfirmedAttemptAgeMs: null, leadPhone: '15550001111', leadBsuid: null, channelEnabled: true, channelDeleted: false };
      },
      async markSendAttempt() {
        return { claimed: true, attemptAt: '2026-01-01T00:00:00.000Z' };
      },
      async clearSendAttempt() {},
      async markOutboundFailed(r: { error: unknown }) {
        failed.push(r.error);
      },
      async markOutboundSent() {},
    };
    const channels = {
      async sendCredentials() {
        return { phoneNumberId: 'PN1', accessToken: 'EAAGsecret', tenantId: 't1', platform: 'whatsapp', circuitState: 'closed', messagesPerSecond: null, markRead: false, tenantSuspended: false, deleted: false };
      },
      async openCircuit(_id: string, reason: unknown) {
        circuits.push(reason);
      },
    };
    const send = createGraphSender({
      leads: leads as unknown as LeadService,
      channels: channels as unknown as ChannelService,
      log,
      graphApiUrl: 'http://graph.test',
      graphApiVersion: 'v21.0',
      timeoutMs: 1000,
      fetch: (async () => answer()) as typeof fetch,
    });
    const run = () =>
      send({
        input: { tenantId: 't1', leadId: 'l1', channelAccountId: 'c1', outboundMessageId: 'o1', to: '15550001111' },
        path: (id) => `${id}/messages`,
        body: { messaging_product: 'whatsapp', type: 'text', text: { body: 'hi' } },
        transcript: { body: 'hi', type: 'text' },
      });
    return { failed, circuits, run };
  }

  test('an invalid token (190) is provider_auth and opens the circuit with the error', async () => {
    const s = sender(() => metaError({ code: 190, type: 'OAuthException', message: 'Error validating access token', fbtrace_id: 'x' }, 401));
    const f = await failureOf(s.run());
    expect([f.type, f.nonRetryable, f.message]).toEqual(['provider_auth', true, 'Graph API error 190 (auth): Error validating access token']);
    expect(s.circuits).toEqual([{ httpStatus: 401, code: 190, subcode: null, class: 'auth', message: 'Error validating access token', details: undefined }]);
    expect(s.failed).toEqual([]);
  });

  test('102 (API session: the token is no longer valid) opens the circuit too', async () => {
    const s = sender(() => metaError({ code: 102, message: 'Session key invalid' }, 400));
    const f = await failureOf(s.run());
    expect([f.type, f.nonRetryable]).toEqual(['provider_auth', true]);
    expect(s.circuits).toHaveLength(1);
  });

  test("Meta's documented call-count limits (17 user, 32 Page, 341 application) wait like code 4", async () => {
    for (const code of [4, 17, 32, 341]) {
      const s = sender(() => metaError({ code, message: 'User request limit reached' }, 400));
      const f = await failureOf(s.run());
      expect([code, f.type, f.nonRetryable, f.nextRetryDelay]).toEqual([code, 'provider_rate_limited', false, 10_000]);
      expect(s.failed).toEqual([]);
    }
  });

  test('a permanent code is recorded on the message; a window or spam limit is not', async () => {
    const rejected = sender(() => metaError({ code: 131026, message: 'Message undeliverable', error_data: { details: 'not on WhatsApp' } }, 400));
    const f = await failureOf(rejected.run());
    expect([f.type, f.nonRetryable]).toEqual(['provider_permanent', true]);
    expect(rejected.failed).toEqual([{ httpStatus: 400, code: 131026, subcode: null, class: 'permanent', message: 'Message undeliverable', details: 'not on WhatsApp' }]);
    const window = sender(() => metaError({ code: 131047, message: 'Re-engagement message' }, 400));
    expect((await failureOf(window.run())).type).toBe('provider_reengagement');
    const spam = sender(() => metaError({ code: 131049, message: 'not delivered' }, 400));
    expect((await failureOf(spam.run())).type).toBe('provider_spam_limited');
    expect([window.failed, spam.failed]).toEqual([[], []]);
  });

  test('a malformed field does not lose the code', async () => {
    const s = sender(() => metaError({ code: 131026, message: 'Message undeliverable', fbtrace_id: 12345 }, 400));
    const f = await failureOf(s.run());
    expect(f.message).toBe('Graph API error 131026 (permanent): Message undeliverable');
  });

  test('no Graph error body: 5xx and 429 are retried as transient; another status fails the message with the body', async () => {
    for (const status of [502, 503]) {
      const s = sender(() => html(status));
      const f = await failureOf(s.run());
      expect([f.type, f.nonRetryable, f.message]).toEqual(['provider_transient', false, `Graph API error ${status} (unknown): <html><body>Bad Gateway</body></html>`]);
      expect([s.failed, s.circuits]).toEqual([[], []]);
    }
    const limited = sender(() => new Response('', { status: 429 }));
    const l = await failureOf(limited.run());
    expect([l.type, l.nonRetryable, l.nextRetryDelay]).toEqual(['provider_transient', false, undefined]);
    const refused = sender(() => html(401));
    const r = await failureOf(refused.run());
    expect([r.type, r.nonRetryable]).toEqual(['provider_permanent', true]);
    expect(refused.circuits).toEqual([]);
    expect(refused.failed).toEqual([{ httpStatus: 401, code: null, subcode: null, class: 'unknown', message: '<html><body>Bad Gateway</body></html>', details: undefined }]);
  });
});

describe('media lookups and uploads (graphFailure)', () => {
  test.each([
    [{ error: { code: 190, message: 'bad token' } }, 401, 'provider_auth', true],
    [{ error: { code: 102, message: 'session' } }, 400, 'provider_auth', true],
    [{ error: { code: 100, message: 'Unsupported get request' } }, 400, 'provider_permanent', true],
    [{ error: { code: 131047, message: 'window' } }, 400, 'provider_permanent', true],
    [{ error: { code: 4, message: 'limit' } }, 400, 'provider_rate_limited', false],
    [{ error: { code: 2, message: 'temporarily unavailable' } }, 400, 'provider_transient', false],
    [{ error: { code: 999999, message: '?' } }, 500, 'provider_transient', false],
    [{ error: { code: 999999, message: '?' } }, 400, 'provider_permanent', true],
  ] as const)('%j (%s) is %s', (body, status, type, nonRetryable) => {
    const f = graphFailure(status, JSON.stringify(body), 'media lookup');
    expect([f.type, f.nonRetryable]).toEqual([type, nonRetryable]);
    expect(f.message).toBe(`media lookup: Graph API error ${body.error.code} (${classifyGraphError(body.error.code)}): ${body.error.message}`);
  });

  test('no Graph error body: by HTTP status (5xx and 429 retried), with the start of the body', () => {
    const page = `<html>${'x'.repeat(300)}</html>`;
    const f = graphFailure(502, page, 'media upload');
    expect([f.type, f.nonRetryable, f.message]).toEqual(['provider_transient', false, `media upload: Graph API error 502 (unknown): ${page.slice(0, 200)}`]);
    expect(f.details).toEqual([{ httpStatus: 502, code: null, subcode: null, class: 'unknown' }]);
    expect([graphFailure(429, '', 'media lookup').type, graphFailure(429, '', 'media lookup').nonRetryable]).toEqual(['provider_transient', false]);
    expect([graphFailure(401, 'Unauthorized', 'media download').type, graphFailure(401, 'Unauthorized', 'media download').nonRetryable]).toEqual(['provider_permanent', true]);
  });
});

describe('the channel ownership check', () => {
  const verify = (answer: () => Response | Promise<Response>) =>
    createChannelOwnershipVerifier({ graphApiUrl: 'http://graph.test', graphApiVersion: 'v21.0', timeoutMs: 1000, fetch: (async () => answer()) as typeof fetch })({
      platform: 'whatsapp',
      accountId: '123',
      accessToken: 'EAAGsecret',
    });
  const what = 'WhatsApp phone number id 123';

  test('the token reads the id: accepted; it reads another object: 409', async () => {
    await expect(verify(() => Response.json({ id: '123' }))).resolves.toBeUndefined();
    const e = await appErrorOf(verify(() => Response.json({ id: '456' })));
    expect([e.httpStatus, e.reason]).toEqual([409, 'channel_not_owned']);
  });

  test.each([190, 102, 0])('code %s: the token is invalid (422)', async (code) => {
    const e = await appErrorOf(verify(() => metaError({ code, type: 'OAuthException', message: 'Invalid OAuth access token' }, 400)));
    expect([e.httpStatus, e.reason, e.message]).toEqual([422, 'access_token_invalid', `the Graph API refused the access token (code ${code}); give a valid token for ${what}`]);
  });

  test.each([
    [100, 33],
    [10, undefined],
    [200, undefined],
    [230, undefined],
    [803, undefined],
  ])('code %s (subcode %s): the token cannot read the id (409)', async (code, subcode) => {
    const e = await appErrorOf(verify(() => metaError({ code, error_subcode: subcode, message: "Unsupported get request. Object with ID '123' does not exist" }, 400)));
    expect([e.httpStatus, e.reason, e.message]).toEqual([
      409,
      'channel_not_owned',
      `the access token cannot read ${what} through the Graph API (code ${code}): it belongs to another business or does not exist; register only ids your own token controls`,
    ]);
  });

  test('another code: cannot verify now (503), whatever the status', async () => {
    for (const [code, status] of [
      [4, 400],
      [2, 500],
      [131026, 404],
    ] as const) {
      const e = await appErrorOf(verify(() => metaError({ code, message: 'm' }, status)));
      expect([code, e.httpStatus, e.message]).toEqual([code, 503, `the Graph API could not verify ${what} now (HTTP ${status}); retry later`]);
    }
  });

  test('no Graph error body: 401 is an invalid token, 400/403/404 an id it cannot read, anything else 503', async () => {
    const invalid = await appErrorOf(verify(() => html(401)));
    expect([invalid.httpStatus, invalid.reason, invalid.message]).toEqual([422, 'access_token_invalid', `the Graph API refused the access token (code 401); give a valid token for ${what}`]);
    for (const status of [400, 403, 404]) {
      const e = await appErrorOf(verify(() => html(status)));
      expect([status, e.httpStatus, e.reason]).toEqual([status, 409, 'channel_not_owned']);
      expect(e.message).toContain(`(code ${status})`);
    }
    for (const status of [429, 500, 502]) {
      const e = await appErrorOf(verify(() => html(status)));
      expect([status, e.httpStatus, e.reason]).toEqual([status, 503, undefined]);
    }
    const malformed = await appErrorOf(verify(() => metaError({ code: '190' }, 401)));
    expect([malformed.httpStatus, malformed.reason]).toEqual([422, 'access_token_invalid']);
  });

  test('the Graph API unreachable: 503', async () => {
    const e = await appErrorOf(
      verify(() => {
        throw new TypeError('fetch failed');
      }),
    );
    expect([e.httpStatus, e.message]).toEqual([503, `could not reach the Graph API to verify that the access token controls ${what}; retry later`]);
  });
});

describe('template sync', () => {
  const sync = (answer: () => Response) =>
    createTemplateSync({
      channels: { syncCredentials: async () => ({ platform: 'whatsapp' as const, wabaId: 'WABA1', accessToken: 'EAAGsecret' }) },
      templates: { upsertFromMeta: async () => ({ inserted: 0, updated: 0 }), markMissing: async () => 0 },
      graphApiUrl: 'http://graph.test',
      graphApiVersion: 'v21.0',
      timeoutMs: 1000,
      log,
      fetch: (async () => answer()) as typeof fetch,
    }).sync('t1', 'c1');

  test.each([
    [190, 401],
    [190, 400],
    [102, 400],
    [0, 400],
    [100, 401],
  ])('code %s (HTTP %s): the token is refused (provider_auth, 502)', async (code, status) => {
    const e = await appErrorOf(sync(() => metaError({ code, message: 'Error validating access token' }, status)));
    expect([e.code, e.httpStatus, e.message]).toEqual(['provider_auth', 502, `the Graph API refused the channel's access token (code ${code}): Error validating access token`]);
  });

  test.each([
    [4, 400],
    [80008, 400],
    [613, 400],
    [2, 400],
    [100, 500],
    [999999, 429],
  ])('code %s (HTTP %s): try again later (provider_transient, 503)', async (code, status) => {
    const e = await appErrorOf(sync(() => metaError({ code, message: 'm' }, status)));
    expect([e.code, e.httpStatus, e.message]).toEqual(['provider_transient', 503, `the Graph API could not list the templates now (code ${code}); retry later`]);
  });

  test.each([
    [100, 400],
    [200, 403],
    [999999, 400],
  ])('code %s (HTTP %s): refused (provider_permanent, 502) with Meta\'s message', async (code, status) => {
    const e = await appErrorOf(sync(() => metaError({ code, message: 'x'.repeat(400) }, status)));
    expect([e.code, e.httpStatus, e.message]).toEqual(['provider_permanent', 502, `the Graph API refused to list the templates of WhatsApp Business Account WABA1 (code ${code}): ${'x'.repeat(300)}`]);
  });

  test('no Graph error body: by HTTP status', async () => {
    expect(await appErrorOf(sync(() => html(401)))).toMatchObject({ code: 'provider_auth', message: "the Graph API refused the channel's access token (code 401): HTTP 401" });
    for (const status of [429, 500, 503]) {
      expect(await appErrorOf(sync(() => html(status)))).toMatchObject({ code: 'provider_transient', message: `the Graph API could not list the templates now (code ${status}); retry later` });
    }
    for (const status of [400, 403, 404]) {
      expect(await appErrorOf(sync(() => html(status)))).toMatchObject({ code: 'provider_permanent', message: `the Graph API refused to list the templates of WhatsApp Business Account WABA1 (code ${status}): HTTP ${status}` });
    }
  });
});
