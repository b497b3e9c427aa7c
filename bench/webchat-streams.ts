/**
 * Web chat stream flood benchmark: database queries per second while N SSE streams are open
 * against ONE web chat channel, half of them for visitors with a conversation (a lead and
 * messages), half for visitors without one.
 *
 *   npx tsx bench/webchat-streams.ts                       # N = 1, 50, 200, 10 s each
 *   BENCH_N=1,50,200 BENCH_SECONDS=10 BENCH_LABEL=after npx tsx bench/webchat-streams.ts
 *
 * Embedded PGlite in memory; every statement the API sends is counted by wrapping PGlite's
 * `query`/`exec` (exact, whatever the code under test does). No Temporal is needed: streams
 * only read the database (the messages are seeded with the lead service).
 *
 * Runs on today's code and on the code before the stream hub (it detects which API it
 * talks to: `POST /webchat/:key/visitors` → signed visitor tokens in a header; otherwise the old
 * `?visitorId=` query). The per-address and per-process stream caps are raised for the scaling
 * runs (so every stream opens), then one run with the default caps records how many of N
 * streams from one address are refused.
 *
 * Writes bench/results/webchat-streams-<label>-<timestamp>.json and …-<label>-latest.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createApp } from '../api/app';
import { loadConfig } from '../config';
import { createLogger } from '../lib/logger';
import type { ParleyTemporal } from '../temporal/client';
import { buildCore } from '../composition/core';

const ADMIN = 'bench-admin-token-0123456789abcdef';
const Ns = (process.env.BENCH_N ?? '1,50,200').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const LABEL = process.env.BENCH_LABEL ?? 'run';
const WARMUP_MS = 2000;

let queries = 0;
/** Count every statement: the same module instance db/client.ts loads (a dynamic import). */
async function countQueries() {
  const { PGlite } = await import('@electric-sql/pglite');
  const proto = PGlite.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ['query', 'exec', 'transaction']) {
    const orig = proto[name]!;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      queries += 1;
      return orig.apply(this, args);
    };
  }
}

interface Visitor {
  /** Old API: the visitor id in the query string; new API: the signed token in a header. */
  query: string;
  headers: Record<string, string>;
  contactId: string;
}

interface StreamHandle {
  status: number;
  close(): void;
}

function openStream(url: string, headers: Record<string, string>): Promise<StreamHandle> {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      res.on('data', () => {});
      res.on('error', () => {});
      resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
    });
    req.on('error', () => resolve({ status: 0, close: () => {} }));
  });
}

async function main() {
  await countQueries();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const log = createLogger({ level: 'warn', destination: sink });
  const base = {
    NODE_ENV: 'test',
    PGLITE_DATA_DIR: 'memory://',
    PARLEY_ADMIN_TOKEN: ADMIN,
    PARLEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    META_APP_SECRET: 'bench-app-secret',
    // new visitors and streams from one address: the scaling runs open them all
    WEBCHAT_NEW_CONVERSATIONS_PER_HOUR: '100000',
    WEBCHAT_NEW_CONVERSATIONS_PER_HOUR_PER_ADDRESS: '100000',
  } as Record<string, string>;
  const config = loadConfig({ ...base, WEBCHAT_MAX_STREAMS_PER_ADDRESS: '10000', WEBCHAT_MAX_STREAMS: '10000', WEBCHAT_MAX_READS_PER_MINUTE_PER_ADDRESS: '0' });
  const defaults = loadConfig(base);
  const core = await buildCore(config, { log, migrate: true });
  const temporal = { ping: async () => {}, signalInbound: async () => ({ workflowId: 'bench' }) } as unknown as ParleyTemporal;
  const listen = async (cfg: typeof config) => {
    const app = createApp({ config: cfg, log, database: core.database, services: core.services, temporal });
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { app, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  const main = await listen(config);
  const api = request(main.app);

  const tenant = await api.post('/v1/tenants').set('authorization', `Bearer ${ADMIN}`).send({ name: 'Bench' }).expect(201);
  const key = tenant.body.apiKey as string;
  const agent = await api.post('/v1/agents').set('authorization', `Bearer ${key}`).send({ name: 'Bot', systemPrompt: 'Help.', model: 'gpt-4o-mini' }).expect(201);
  const channel = await api.post('/v1/channels').set('authorization', `Bearer ${key}`).send({ platform: 'webchat', agentId: agent.body.id }).expect(201);
  const widgetKey = channel.body.widgetKey as string;
  const channelId = channel.body.id as string;

  // which API: signed visitor tokens (new) or a visitor id in the query string (old)
  const probe = await api.post(`/webchat/${widgetKey}/visitors`).send({});
  const tokens = probe.status === 201;
  let contactIdOf: ((token: string) => string) | undefined;
  if (tokens) {
    const mod = (await import('../services/webchat-visitors')) as unknown as { createVisitorTokens(secret: Buffer): { verify(channelId: string, token: string): { contactId: string } | undefined } };
    const { webChatVisitorSecret } = (await import('../services/webchat-visitors')) as unknown as { webChatVisitorSecret(cfg: unknown): Buffer };
    const vt = mod.createVisitorTokens(webChatVisitorSecret(config));
    contactIdOf = (t) => vt.verify(channelId, t)!.contactId;
  }
  async function newVisitor(): Promise<Visitor> {
    if (tokens) {
      const r = await api.post(`/webchat/${widgetKey}/visitors`).send({}).expect(201);
      const token = r.body.visitorToken as string;
      return { query: '', headers: { authorization: `Bearer ${token}` }, contactId: contactIdOf!(token) };
    }
    const v = `v_${randomBytes(12).toString('base64url')}`;
    return { query: `?visitorId=${v}`, headers: {}, contactId: v };
  }
  async function withConversation(v: Visitor) {
    const lead = await core.services.leads.ensure({ tenantId: tenant.body.id, channelAccountId: channelId, channel: 'webchat', contactId: v.contactId, workflowId: `lead:${channelId}:${v.contactId}` });
    const leadId = lead.leadId;
    await core.services.leads.recordInbound({
      tenantId: tenant.body.id,
      leadId,
      messages: [{ providerMessageId: `webchat:${v.contactId}:bench-1`, channel: 'webchat', contactId: v.contactId, sentAt: new Date().toISOString(), type: 'text', text: 'Hello' }],
    });
  }

  const maxN = Math.max(...Ns);
  const visitors: { v: Visitor; conversation: boolean }[] = [];
  for (let i = 0; i < maxN; i++) {
    const v = await newVisitor();
    const conversation = i % 2 === 0;
    if (conversation) await withConversation(v);
    visitors.push({ v, conversation });
  }

  async function run(url: string, n: number, caps: string, only?: 'withoutConversation', warmupMs = WARMUP_MS) {
    const picked = (only ? visitors.filter((p) => !p.conversation) : visitors).slice(0, n);
    const streams = await Promise.all(picked.map((p) => openStream(`${url}/webchat/${widgetKey}/stream${p.v.query}`, p.v.headers)));
    await new Promise((r) => setTimeout(r, warmupMs));
    const q0 = queries;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const q = queries - q0;
    const s = (performance.now() - t0) / 1000;
    for (const st of streams) st.close();
    await new Promise((r) => setTimeout(r, 1500));
    const row = {
      caps,
      n,
      warmupS: warmupMs / 1000,
      withConversation: picked.filter((p) => p.conversation).length,
      withoutConversation: picked.filter((p) => !p.conversation).length,
      opened: streams.filter((x) => x.status === 200).length,
      refused: streams.filter((x) => x.status !== 200).length,
      refusedStatuses: [...new Set(streams.filter((x) => x.status !== 200).map((x) => x.status))],
      seconds: Math.round(s * 10) / 10,
      queries: q,
      queriesPerS: Math.round((q / s) * 10) / 10,
    };
    console.log(JSON.stringify(row));
    return row;
  }

  const rows = [];
  for (const n of Ns) rows.push(await run(main.url, n, 'raised'));
  // visitors without a conversation only, measured after the 30 s grace a new stream gets
  rows.push(await run(main.url, Math.floor(maxN / 2), 'raised', 'withoutConversation', Number(process.env.BENCH_GRACE_WAIT_MS ?? 32_000)));
  // the default caps: N streams from one client address
  const def = await listen(defaults);
  rows.push(await run(def.url, maxN, 'default'));
  const idle = queries;
  await new Promise((r) => setTimeout(r, 2000));
  const result = {
    bench: 'webchat-streams',
    label: LABEL,
    api: tokens ? 'visitor tokens (header)' : 'visitorId (query)',
    at: new Date().toISOString(),
    pollMs: config.WEBCHAT_POLL_MS,
    database: 'pglite (in memory), statements counted at the driver',
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
    rows,
    idleQueriesPerSAfterClose: (queries - idle) / 2,
  };
  const dir = path.join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = result.at.replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `webchat-streams-${LABEL}-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(path.join(dir, `webchat-streams-${LABEL}-latest.json`), JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify({ label: LABEL, api: result.api, idleQueriesPerSAfterClose: result.idleQueriesPerSAfterClose }));
  for (const x of [main.server, def.server]) {
    x.closeAllConnections();
    x.close();
  }
  await core.database.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
