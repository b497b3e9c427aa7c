/**
 * The operator surface: the admin token's strength in production, `/metrics` behind the
 * failed-authentication limiter, and `/readyz` telling anonymous callers nothing about the
 * database driver or Temporal beyond "unavailable".
 */
import request from 'supertest';
import { ConfigError, loadConfig } from '../../config';
import { openDatabase } from '../../db/client';
import { createApp } from '../../api/app';
import { ADMIN_TOKEN, startStack, type Stack } from '../support/stack';

jest.setTimeout(120_000);

const production = {
  NODE_ENV: 'production',
  PARLEY_ENCRYPTION_KEY: 'a'.repeat(64),
  META_APP_SECRET: 'app-secret',
  DATABASE_URL: 'postgres://db/parley',
  TEMPORAL_ADDRESS: 'temporal:7233',
};

describe('PARLEY_ADMIN_TOKEN in production', () => {
  test('a short admin token is refused at start-up with a clear reason', () => {
    for (const token of ['admin', 'changeme-changeme', 'x'.repeat(31)]) {
      let err: unknown;
      try {
        loadConfig({ ...production, PARLEY_ADMIN_TOKEN: token });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toMatch(/PARLEY_ADMIN_TOKEN: must be at least 32 characters/);
      // the message never echoes the token itself
      expect((err as ConfigError).message).not.toContain(token);
    }
  });
  test('32 characters or more is accepted; development keeps short dev tokens', () => {
    expect(loadConfig({ ...production, PARLEY_ADMIN_TOKEN: 'x'.repeat(32) }).PARLEY_ADMIN_TOKEN).toHaveLength(32);
    expect(loadConfig({ NODE_ENV: 'development', PARLEY_ADMIN_TOKEN: 'dev' }).PARLEY_ADMIN_TOKEN).toBe('dev');
  });
});

describe('against a stack', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ AUTH_FAILURES_PER_MINUTE: '5' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('/metrics: repeated bad admin tokens from one address get 429, even with the right token afterwards', async () => {
    // a fresh app (own in-process block list) whose requests come from an address of their own
    const address = `2001:db8::${Math.floor(Math.random() * 0xffff).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}`;
    const app = createApp({ config: stack.config, log: stack.log, database: stack.core.database, services: stack.core.services, temporal: stack.temporal });
    app.set('trust proxy', true);
    const api = request(app);
    await api.get('/metrics').set({ authorization: `Bearer ${ADMIN_TOKEN}`, 'x-forwarded-for': address }).expect(200);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await api.get('/metrics').set({ authorization: `Bearer guess-${i}`, 'x-forwarded-for': address });
      statuses.push(r.status);
      // the failure is counted after the answer: give the shared bucket its write
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect(statuses.slice(0, 5).every((s) => s === 401)).toBe(true);
    expect(statuses).toContain(429);
    const blocked = await api.get('/metrics').set({ authorization: `Bearer ${ADMIN_TOKEN}`, 'x-forwarded-for': address }).expect(429);
    expect(blocked.headers['retry-after']).toBeDefined();
    // another address is not affected
    await api.get('/metrics').set({ authorization: `Bearer ${ADMIN_TOKEN}`, 'x-forwarded-for': '203.0.113.9' }).expect(200);
  });

  test('/readyz answers 200 with plain checks when everything is up', async () => {
    const r = await stack.api.get('/readyz').expect(200);
    expect(r.body).toEqual({ status: 'ok', checks: { database: 'ok', temporal: 'ok' } });
  });

  test('/readyz with a failing database: 503, a generic reason, no driver text; the details go to the log', async () => {
    // a real postgres.js client pointed at a closed port: its error names the host and port
    const broken = await openDatabase({ url: 'postgres://parley:hunter2-db-password@127.0.0.1:1/parley_nowhere', max: 1 });
    try {
      const app = createApp({ config: stack.config, log: stack.log, database: broken, services: stack.core.services, temporal: stack.temporal });
      const before = stack.logLines.length;
      const r = await request(app).get('/readyz').expect(503);
      expect(r.body).toEqual({ status: 'unavailable', checks: { database: 'unavailable', temporal: 'ok' } });
      expect(r.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|:1\b|parley_nowhere|hunter2/);
      const logged = stack.logLines.slice(before).join('');
      expect(logged).toMatch(/readiness check failed/);
      expect(logged).toMatch(/ECONNREFUSED/);
      expect(logged).not.toContain('hunter2-db-password');
    } finally {
      await broken.close().catch(() => undefined);
    }
  });
});
