/**
 * Rate limits: the database token bucket across connections, the send path (business number,
 * pair rate, Graph rate-limit errors), the tenant API limit, failed-auth blocking and the LLM
 * daily budget. PostgreSQL when DATABASE_URL is set, PGlite otherwise.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { eq, sql } from 'drizzle-orm';
import express from 'express';
import request from 'supertest';
import { createWhatsAppActivities } from '../../activities/channels/whatsapp';
import type { SendRateLimits } from '../../activities/channels/send-rate-limit';
import { createExtractionActivities } from '../../activities/extraction/extract';
import { createLlmActivities } from '../../activities/llm/reply';
import { requireAdmin } from '../../api/middleware/auth';
import { errorHandler } from '../../api/middleware/errors';
import { authFailureGuard } from '../../api/middleware/rate-limit';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { rateBuckets } from '../../db/schema';
import { createLogger } from '../../lib/logger';
import { createRateLimiter, type RateLimiter } from '../../services/rate-limit';
import { ADMIN_TOKEN, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';
import { markerActivityType } from '../../bench/anatomy';

jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
const quiet = createLogger({ level: 'silent' });

describe('the database token bucket', () => {
  // Two separate connections (pools) on PostgreSQL; PGlite is one in-process connection, so
  // there both handles share it and the concurrency is interleaved statements.
  let a: Database;
  let b: Database;
  beforeAll(async () => {
    if (process.env.DATABASE_URL) {
      a = await openDatabase({ url: process.env.DATABASE_URL, max: 4 });
      b = await openDatabase({ url: process.env.DATABASE_URL, max: 4 });
    } else {
      a = await openDatabase({ pgliteDataDir: 'memory://' });
      await migrateDatabase(a);
      b = a;
    }
  });
  afterAll(async () => {
    await a?.close();
    if (b !== a) await b?.close();
  });

  test('concurrent takes from two connections never exceed rate × time + burst', async () => {
    const key = `test:${randomUUID()}`;
    const rate = 25;
    const burst = 5;
    const limiters = [createRateLimiter(a.db), createRateLimiter(b.db)];
    let granted = 0;
    let refused = 0;
    const start = Date.now();
    const loop = async (l: RateLimiter) => {
      while (Date.now() - start < 1500) {
        const r = await l.take(key, { ratePerSec: rate, burst });
        if (r.ok) {
          granted++;
          expect(r.waitMs).toBe(0);
        } else {
          refused++;
          expect(r.waitMs).toBeGreaterThan(0);
          expect(r.waitMs).toBeLessThanOrEqual(Math.ceil(1000 / rate) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => loop(limiters[i % 2]!)));
    const elapsedS = (Date.now() - start) / 1000;
    expect(refused).toBeGreaterThan(0);
    expect(granted).toBeLessThanOrEqual(Math.floor(burst + rate * elapsedS));
    // and it does grant what the rate allows (not a limiter that refuses everything)
    expect(granted).toBeGreaterThanOrEqual(Math.floor(burst + rate * elapsedS * 0.6));
  });

  test('reservations: granted takes are definite future slots, and acting at them keeps the rate', async () => {
    const key = `test:${randomUUID()}`;
    const rate = 20;
    const burst = 2;
    const maxWaitMs = 500;
    const limiters = [createRateLimiter(a.db), createRateLimiter(b.db)];
    const acts: number[] = [];
    let longest = 0;
    let refused = 0;
    const worker = async (l: RateLimiter) => {
      for (let i = 0; i < 4; i++) {
        const r = await l.take(key, { ratePerSec: rate, burst, maxWaitMs });
        if (r.ok) {
          longest = Math.max(longest, r.waitMs);
          await sleep(r.waitMs);
          acts.push(Date.now());
        } else {
          refused++;
          expect(r.waitMs).toBeGreaterThan(0);
          await sleep(r.waitMs);
        }
      }
    };
    // more callers than the reservation bound holds: some are refused
    await Promise.all(Array.from({ length: 16 }, (_, i) => worker(limiters[i % 2]!)));
    expect(refused).toBeGreaterThan(0);
    expect(longest).toBeLessThanOrEqual(maxWaitMs + 1);
    expect(acts.length).toBeGreaterThan(burst + 5);
    acts.sort((x, y) => x - y);
    const windowMs = 500;
    for (const [i, t] of acts.entries()) {
      const inWindow = acts.slice(i).filter((u) => u < t + windowMs).length;
      // + 2: timers fire a few ms late, which can bunch two slots
      expect(inWindow).toBeLessThanOrEqual(burst + (rate * windowMs) / 1000 + 2);
    }
  });

  test('a refused take consumes nothing and says when the next slot is free', async () => {
    const l = createRateLimiter(a.db);
    const key = `test:${randomUUID()}`;
    const opts = { ratePerSec: 2, burst: 1 };
    expect(await l.take(key, opts)).toEqual({ ok: true, waitMs: 0, remaining: 0 });
    const refused = await l.take(key, opts);
    expect(refused.ok).toBe(false);
    expect(refused.waitMs).toBeGreaterThan(350);
    expect(refused.waitMs).toBeLessThanOrEqual(500);
    const again = await l.take(key, opts);
    expect(again.ok).toBe(false);
    expect(again.waitMs).toBeLessThanOrEqual(refused.waitMs);
    await sleep(refused.waitMs + 30);
    expect((await l.take(key, opts)).ok).toBe(true);
    // a reservation: the slot is granted now for later
    const reserved = await l.take(key, { ...opts, maxWaitMs: 1000 });
    expect(reserved.ok).toBe(true);
    expect(reserved.waitMs).toBeGreaterThan(350);
    expect(reserved.waitMs).toBeLessThanOrEqual(500);
  });

  test('idle buckets (full by then) are pruned; live ones are kept', async () => {
    const l = createRateLimiter(a.db);
    const idle = `test:${randomUUID()}`;
    const live = `test:${randomUUID()}`;
    await l.take(idle, { ratePerSec: 1, burst: 1 });
    await l.take(live, { ratePerSec: 1, burst: 1 });
    await a.db.update(rateBuckets).set({ updatedAt: sql`now() - interval '2 hours'` }).where(eq(rateBuckets.key, idle));
    expect(await l.prune()).toBeGreaterThanOrEqual(1);
    const left = await a.db.select({ key: rateBuckets.key }).from(rateBuckets).where(sql`${rateBuckets.key} in (${idle}, ${live})`);
    expect(left.map((r) => r.key)).toEqual([live]);
    // a pruned key starts again as a full bucket: same decision as before pruning
    expect((await l.take(idle, { ratePerSec: 1, burst: 1 })).ok).toBe(true);
  });
});

describe('failed authentication per client address', () => {
  let db: Database;
  beforeAll(async () => {
    // its own database: the address (127.0.0.1) is shared with every other test process
    db = await openDatabase({ pgliteDataDir: 'memory://' });
    await migrateDatabase(db);
  });
  afterAll(async () => {
    await db?.close();
  });

  test('after the allowance, the address gets 429 with Retry-After before any credential is checked', async () => {
    const app = express();
    app.use(authFailureGuard({ rateLimiter: createRateLimiter(db.db), perMinute: 3, log: quiet }));
    app.get('/v1/secret', requireAdmin('the-right-admin-token'), (_req, res) => {
      res.json({ ok: true });
    });
    app.get('/healthz', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(errorHandler(quiet));
    const api = request(app);
    const right = { authorization: 'Bearer the-right-admin-token' };
    await api.get('/v1/secret').set(right).expect(200);
    // no credentials at all: nothing guessed, nothing counted
    for (let i = 0; i < 5; i++) await api.get('/v1/secret').expect(401);
    for (let i = 0; i < 3; i++) await api.get('/v1/secret').set({ authorization: `Bearer wrong-${i}` }).expect(401);
    const blocked = await waitFor(async () => {
      const r = await api.get('/v1/secret').set({ authorization: 'Bearer wrong-again' });
      expect([401, 429]).toContain(r.status);
      return r.status === 429 ? r : undefined;
    }, { timeoutMs: 5000, what: '429 for the address' });
    expect(blocked.body.error.code).toBe('rate_limited');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // blocked means blocked: the right token is not even looked at, so guessing learns nothing
    const withRight = await api.get('/v1/secret').set(right).expect(429);
    expect(withRight.headers['retry-after']).toBeDefined();
    // outside the API prefix nothing is blocked
    await api.get('/healthz').expect(200);
    // a token is back after 60/3 = 20 s at most; the block lifts then (Retry-After says when)
    expect(Number(withRight.headers['retry-after'])).toBeLessThanOrEqual(20);
  });
});

describe('with the whole stack', () => {
  let stack: Stack;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  beforeAll(async () => {
    // pair rate of one message per 2.5 s, but a send sleeps at most 1 s: the rest is a Temporal retry
    stack = await startStack({ WHATSAPP_PAIR_INTERVAL_MS: '2500', SEND_RATE_LIMIT_MAX_SLEEP_MS: '1000' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const sendsTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
  const requestsTo = (to: string) => stack.graph.requests.filter((r) => (r.body as { to?: string }).to === to);

  async function leadOf(t: TenantFixture, contactId: string) {
    const { leadId } = await stack.core.services.leads.ensure({
      tenantId: t.tenantId,
      channelAccountId: t.channelId,
      channel: 'whatsapp',
      contactId,
      workflowId: stack.leadWorkflowId(t.channelId, contactId),
    });
    return leadId;
  }

  function whatsApp(over: { rateLimits?: Partial<SendRateLimits>; fetch?: typeof fetch } = {}) {
    const rateLimits: SendRateLimits | undefined = over.rateLimits
      ? { limiter: stack.core.services.rateLimiter, messagesPerSecond: 80, pairIntervalMs: 6000, pairBurst: 1, maxSleepMs: 2000, ...over.rateLimits }
      : undefined;
    return createWhatsAppActivities({
      ...stack.core.services,
      log: quiet,
      graphApiUrl: stack.graph.url,
      graphApiVersion: 'v21.0',
      timeoutMs: 5000,
      rateLimits,
      ...(over.fetch ? { fetch: over.fetch } : {}),
    });
  }

  describe('sends', () => {
    test('two replies to one user are spaced by the pair interval; the later slot is a Temporal retry at that time, not a call to Meta', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const from = randomWaId();
      await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'First question: what do you sell?')).expect(200);
      await waitFor(() => sendsTo(from).length >= 1, { what: 'first reply' });
      await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Second question: do you ship abroad?')).expect(200);
      const sent = await waitFor(() => (sendsTo(from).length >= 2 ? sendsTo(from) : undefined), { timeoutMs: 30_000, what: 'second reply' });
      const gap = Date.parse(sent[1]!.at) - Date.parse(sent[0]!.at);
      expect(gap).toBeGreaterThanOrEqual(2400);
      // Meta never saw a request over the pair rate
      expect(requestsTo(from).map((r) => r.response.status)).toEqual([200, 200]);
      // the second send waited as a retry (attempt 2) told exactly when to come back
      const history = await stack.temporal.client.workflow.getHandle(stack.leadWorkflowId(t.channelId, from)).fetchHistory();
      const retried = (history.events ?? [])
        .map((e) => e.activityTaskStartedEventAttributes)
        .filter((s) => s && (s.attempt ?? 1) > 1 && s.lastFailure?.applicationFailureInfo?.type === 'provider_rate_limited');
      // (on a loaded machine the second turn can reach the send after the slot is free: no retry then)
      // (a turn sends from its one activity, replyTurn, or, held by the rate limit, from sendWhatsAppText)
      const sendingActivities = (history.events ?? [])
        .map((e) => markerActivityType(e) ?? e.activityTaskScheduledEventAttributes?.activityType?.name)
        .filter((n) => n === 'replyTurn' || n === 'sendWhatsAppText');
      const secondTurnStarted = sendingActivities.filter((n) => n === 'replyTurn').length === 2 || sendingActivities.length >= 2;
      expect(secondTurnStarted).toBe(true);
      if (retried.length === 0) return;
      const delay = retried[0]!.lastFailure!.applicationFailureInfo!.nextRetryDelay;
      const delayMs = Number(delay?.seconds ?? 0) * 1000 + (delay?.nanos ?? 0) / 1e6;
      expect(delayMs).toBeGreaterThan(0);
      expect(delayMs).toBeLessThanOrEqual(2500);
    });

    test('a near pair slot is slept for inside the send', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const to = randomWaId();
      const leadId = await leadOf(t, to);
      const wa = whatsApp({ rateLimits: { pairIntervalMs: 800 } });
      const base = { tenantId: t.tenantId, leadId, channelAccountId: t.channelId, to };
      await wa.sendWhatsAppText({ ...base, outboundMessageId: randomUUID(), text: 'one' });
      await wa.sendWhatsAppText({ ...base, outboundMessageId: randomUUID(), text: 'two' });
      const sent = sendsTo(to);
      expect(sent).toHaveLength(2);
      expect(Date.parse(sent[1]!.at) - Date.parse(sent[0]!.at)).toBeGreaterThanOrEqual(750);
    });

    test('the business number throughput holds across concurrent sends to different users', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const wa = whatsApp({ rateLimits: { messagesPerSecond: 5 } });
      const users = Array.from({ length: 10 }, () => randomWaId());
      const leadIds = await Promise.all(users.map((to) => leadOf(t, to)));
      await Promise.all(
        users.map((to, i) => wa.sendWhatsAppText({ tenantId: t.tenantId, leadId: leadIds[i]!, channelAccountId: t.channelId, to, outboundMessageId: randomUUID(), text: `hello ${i}` })),
      );
      const times = users.map((to) => Date.parse(sendsTo(to)[0]!.at)).sort((x, y) => x - y);
      // 5 at once (the burst), the other 5 at 5/s: the tenth at least ~1 s after the first
      expect(times[9]! - times[0]!).toBeGreaterThanOrEqual(900);
    });

    test('Meta\'s 131056 (pair rate) is retried no sooner than the pair interval', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const to = randomWaId();
      const leadId = await leadOf(t, to);
      stack.graph.failNext({ code: 131056, to });
      const err = await whatsApp({ rateLimits: { pairIntervalMs: 6000 } })
        .sendWhatsAppText({ tenantId: t.tenantId, leadId, channelAccountId: t.channelId, to, outboundMessageId: randomUUID(), text: 'too soon' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApplicationFailure);
      const f = err as ApplicationFailure;
      expect(f.type).toBe('provider_rate_limited');
      expect(f.nonRetryable).toBe(false);
      expect(Number(f.nextRetryDelay)).toBeGreaterThanOrEqual(6000);
    });

    test('Meta\'s 130429 (throughput) sent nothing: the pair slot is given back, so the retry waits for Meta only', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const to = randomWaId();
      const leadId = await leadOf(t, to);
      const wa = whatsApp({ rateLimits: { pairIntervalMs: 6000 } });
      const input = { tenantId: t.tenantId, leadId, channelAccountId: t.channelId, to, outboundMessageId: randomUUID(), text: 'busy number' };
      stack.graph.failNext({ code: 130429, to });
      const f = (await wa.sendWhatsAppText(input).catch((e: unknown) => e)) as ApplicationFailure;
      expect(f.type).toBe('provider_rate_limited');
      expect(Number(f.nextRetryDelay)).toBe(1000);
      // the retry (same outbound id) is not held back 6 s by our own pair limit
      const sent = await wa.sendWhatsAppText(input);
      expect(sent.alreadySent).toBe(false);
      expect(requestsTo(to).map((r) => r.response.status)).toEqual([429, 200]);
      // and that send did use the pair slot: a third message to the user now must wait
      const third = (await wa.sendWhatsAppText({ ...input, outboundMessageId: randomUUID(), text: 'again' }).catch((e: unknown) => e)) as ApplicationFailure;
      expect(third.type).toBe('provider_rate_limited');
      expect(Number(third.nextRetryDelay)).toBeGreaterThan(5000);
    });

    test('a rate-limit answer with Retry-After is retried after it', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const to = randomWaId();
      const leadId = await leadOf(t, to);
      const fakeFetch = (async () =>
        new Response(JSON.stringify({ error: { message: '(#130429) Rate limit hit', type: 'OAuthException', code: 130429 } }), {
          status: 429,
          headers: { 'content-type': 'application/json', 'retry-after': '42' },
        })) as typeof fetch;
      const f = (await whatsApp({ fetch: fakeFetch })
        .sendWhatsAppText({ tenantId: t.tenantId, leadId, channelAccountId: t.channelId, to, outboundMessageId: randomUUID(), text: 'hi' })
        .catch((e: unknown) => e)) as ApplicationFailure;
      expect(f.type).toBe('provider_rate_limited');
      expect(Number(f.nextRetryDelay)).toBe(42_000);
    });
  });

  describe('tenant API limit', () => {
    test('over the tenant\'s requests per minute: 429 rate_limited with Retry-After; RateLimit headers; other tenants unaffected', async () => {
      const t = await createTenant(stack);
      const other = await createTenant(stack);
      const auth = { authorization: `Bearer ${t.apiKey}` };
      const patched = await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ apiRequestsPerMinute: 3 }).expect(200);
      expect(patched.body).toMatchObject({ id: t.tenantId, apiRequestsPerMinute: 3, overrides: { apiRequestsPerMinute: 3, llmDailyBudgetMicros: null } });

      const remaining: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await stack.api.get('/v1/credits').set(auth).expect(200);
        expect(r.headers['ratelimit-limit']).toBe('3');
        remaining.push(r.headers['ratelimit-remaining'] as string);
      }
      expect(remaining).toEqual(['2', '1', '0']);
      const limited = await stack.api.get('/v1/leads').set(auth).expect(429);
      expect(limited.body.error.code).toBe('rate_limited');
      expect(limited.body.error.message).toMatch(/3 requests per minute/);
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(20);
      // every tenant router shares the one budget
      await stack.api.get(`/v1/leads/${randomUUID()}/extractions`).set(auth).expect(429);
      await stack.api.get('/v1/usage').set(auth).expect(429);
      await stack.api.get('/v1/credits').set({ authorization: `Bearer ${other.apiKey}` }).expect(200);

      // back to the deployment default
      const reset = await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ apiRequestsPerMinute: null }).expect(200);
      expect(reset.body).toMatchObject({ apiRequestsPerMinute: 600, overrides: { apiRequestsPerMinute: null } });
      await sleep(250); // 600/min refills a token every 100 ms
      const ok = await stack.api.get('/v1/credits').set(auth).expect(200);
      expect(ok.headers['ratelimit-limit']).toBe('600');
    });

    test('a request authenticated by two routers on its way costs one token', async () => {
      const t = await createTenant(stack);
      const auth = { authorization: `Bearer ${t.apiKey}` };
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ apiRequestsPerMinute: 5 }).expect(200);
      // /v1/leads/:id/messages passes the engine router's auth, then the tenant router's
      const first = await stack.api.get(`/v1/leads/${randomUUID()}/messages`).set(auth).expect(404);
      const second = await stack.api.get(`/v1/leads/${randomUUID()}/messages`).set(auth).expect(404);
      expect([first.headers['ratelimit-remaining'], second.headers['ratelimit-remaining']]).toEqual(['4', '3']);
    });

    test('PATCH /v1/tenants/:id takes only known fields, needs the admin token, 404s an unknown tenant', async () => {
      const t = await createTenant(stack);
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ apiRequestsPerMinute: 10, creditBalance: 1e9 }).expect(400);
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({}).expect(400);
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ apiRequestsPerMinute: 0 }).expect(400);
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ llmDailyBudgetMicros: -1 }).expect(400);
      await stack.api.patch(`/v1/tenants/${randomUUID()}`).set(admin).send({ apiRequestsPerMinute: 10 }).expect(404);
      await stack.api.patch('/v1/tenants/not-a-uuid').set(admin).send({ apiRequestsPerMinute: 10 }).expect(404);
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set({ authorization: `Bearer ${t.apiKey}` }).send({ apiRequestsPerMinute: 10 }).expect(401);
      const r = await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ llmDailyBudgetMicros: 2_000_000 }).expect(200);
      expect(r.body).toMatchObject({ apiRequestsPerMinute: 600, llmDailyBudgetMicros: 2_000_000, overrides: { apiRequestsPerMinute: null, llmDailyBudgetMicros: 2_000_000 } });
    });
  });

  describe('LLM daily budget', () => {
    async function leadWithMessage(t: TenantFixture, text: string) {
      const contactId = randomWaId();
      const leadId = await leadOf(t, contactId);
      await stack.core.services.leads.recordInbound({
        tenantId: t.tenantId,
        leadId,
        messages: [{ providerMessageId: `wamid.X${randomBytes(8).toString('hex')}`, channel: 'whatsapp', contactId, sentAt: new Date().toISOString(), type: 'text', text }],
      });
      return leadId;
    }
    const llmDeps = () => ({ ...stack.core.services, log: quiet, baseURL: stack.llm.url, apiKey: 'sk-test', timeoutMs: 5000 });
    const llmRequestsMentioning = (marker: string) => stack.llm.requests.filter((r) => JSON.stringify(r.messages).includes(marker));

    test('over budget: llm_budget_exceeded (non-retryable) and no request reaches the LLM; usage shows spend and budget', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const auth = { authorization: `Bearer ${t.apiKey}` };
      const marker = `budget-${randomBytes(4).toString('hex')}`;
      const leadId = await leadWithMessage(t, `Tell me about ${marker}`);
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ llmDailyBudgetMicros: 1000 }).expect(200);
      await stack.core.services.extractions.recordLlmCall({ tenantId: t.tenantId, leadId, purpose: 'reply', model: 'gpt-4o-mini', promptTokens: 10, completionTokens: 10, costMicros: 1500 });

      const usage = await stack.api.get('/v1/usage').set(auth).expect(200);
      expect(usage.body).toEqual({
        llm: { day: new Date().toISOString().slice(0, 10), spentMicros: 1500, budgetMicros: 1000, remainingMicros: 0, exceeded: true },
        api: { perMinute: 600 },
      });

      const reply = await createLlmActivities(llmDeps())
        .generateReply({ tenantId: t.tenantId, leadId, channelAccountId: t.channelId })
        .catch((e: unknown) => e);
      expect(reply).toBeInstanceOf(ApplicationFailure);
      expect((reply as ApplicationFailure).type).toBe('llm_budget_exceeded');
      expect((reply as ApplicationFailure).nonRetryable).toBe(true);
      expect((reply as ApplicationFailure).message).toMatch(/spent 1500 of its 1000/);
      const extraction = await createExtractionActivities(llmDeps())
        .extractLead({ tenantId: t.tenantId, leadId, channelAccountId: t.channelId })
        .catch((e: unknown) => e);
      expect((extraction as ApplicationFailure).type).toBe('llm_budget_exceeded');
      expect(llmRequestsMentioning(marker)).toHaveLength(0);

      // a higher budget lets the call through (and it is accounted)
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ llmDailyBudgetMicros: 1_000_000 }).expect(200);
      const ok = await createLlmActivities(llmDeps()).generateReply({ tenantId: t.tenantId, leadId, channelAccountId: t.channelId });
      expect(ok.text.length).toBeGreaterThan(0);
      expect(llmRequestsMentioning(marker)).toHaveLength(1);
      const after = await stack.api.get('/v1/usage').set(auth).expect(200);
      expect(after.body.llm.spentMicros).toBeGreaterThan(1500);
      expect(after.body.llm.budgetMicros).toBe(1_000_000);
    });

    test('a budget of 0 means no LLM: an inbound message gets no LLM call and no reply, and the turn fails as llm_budget_exceeded', async () => {
      const t = await createTenant(stack, { credits: 5 });
      const auth = { authorization: `Bearer ${t.apiKey}` };
      await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ llmDailyBudgetMicros: 0 }).expect(200);
      const from = randomWaId();
      const marker = `nollm-${randomBytes(4).toString('hex')}`;
      await postWebhook(stack, textWebhook(t.phoneNumberId, from, `Hello ${marker}`)).expect(200);
      const failed = await waitFor(
        async () => {
          const leads = await stack.api.get('/v1/leads').set(auth).expect(200);
          const lead = leads.body.items[0] as { id: string } | undefined;
          if (!lead) return undefined;
          const detail = await stack.api.get(`/v1/leads/${lead.id}`).set(auth).expect(200);
          return (detail.body.events as { type: string; data: { type?: string } }[]).find((e) => e.type === 'reply_failed');
        },
        { timeoutMs: 30_000, what: 'reply_failed event' },
      );
      expect(failed.data.type).toBe('llm_budget_exceeded');
      expect(llmRequestsMentioning(marker)).toHaveLength(0);
      expect(sendsTo(from)).toHaveLength(0);
    });
  });
});
