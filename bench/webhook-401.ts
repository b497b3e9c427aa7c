/**
 * What a webhook POST with a bad signature costs Parley: database statements and time per
 * request, for a body naming 1 and 10,000 distinct phone_number_ids (an attacker needs no
 * credentials for either), then what happens when one address keeps sending them.
 *
 *   npx tsx bench/webhook-401.ts                         # embedded PGlite in memory
 *   DATABASE_URL=postgres://… npx tsx bench/webhook-401.ts   # PostgreSQL (a scratch database: it migrates)
 *   BENCH_LABEL=before npx tsx bench/webhook-401.ts      # name of the result file
 *
 * Only the API runs (a bad signature never reaches Temporal). Statements are counted on the
 * drizzle session (test/support/query-counter.ts), so the count is the same on both drivers.
 * Writes bench/results/webhook-401-<label>.json (label defaults to a timestamp).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createApp } from '../api/app';
import { loadConfig } from '../config';
import { migrateDatabase, openDatabase } from '../db/client';
import { createSecretBox, parseEncryptionKey } from '../lib/crypto';
import { createLogger } from '../lib/logger';
import { createServices } from '../services';
import type { ParleyTemporal } from '../temporal/client';
import { countQueries } from '../test/support/query-counter';
import { round, summarize, type LatencySummary } from './stats';

const APP_SECRET = 'bench-app-secret-0123456789';

/** A WhatsApp body with `ids` distinct phone_number_ids, laid out as Meta nests them (100 changes per entry). */
function bodyWith(ids: number): string {
  const entry: unknown[] = [];
  for (let e = 0; e * 100 < ids; e++) {
    const changes: unknown[] = [];
    for (let c = e * 100; c < Math.min(ids, (e + 1) * 100); c++) {
      changes.push({
        field: 'messages',
        value: { messaging_product: 'whatsapp', metadata: { phone_number_id: String(randomInt(100_000_000_000, 999_999_999_999)), display_phone_number: '15550000000' }, messages: [] },
      });
    }
    entry.push({ id: String(randomInt(1e13, 9e13)), changes });
  }
  return JSON.stringify({ object: 'whatsapp_business_account', entry });
}

interface Scenario {
  name: string;
  ids: number;
  requests: number;
  statuses: Record<string, number>;
  queriesPerRequest: { mean: number; max: number; min: number };
  timeMs: LatencySummary;
  bodyBytes: number;
  /** Bytes of log written per request (the old code logs every id). */
  logBytesPerRequest: number;
}

async function main() {
  const label = process.env.BENCH_LABEL ?? new Date().toISOString().replace(/[:.]/g, '-');
  const authFailuresPerMinute = process.env.BENCH_AUTH_FAILURES_PER_MINUTE;
  let logBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logBytes += chunk.length;
      cb();
    },
  });
  const log = createLogger({ level: 'info', destination: sink });
  const database = await openDatabase({ url: process.env.DATABASE_URL, pgliteDataDir: 'memory://' });
  await migrateDatabase(database);
  const box = createSecretBox(parseEncryptionKey(randomBytes(32).toString('base64')));
  const services = createServices(database.db, box, { defaultCreditsPerReply: 1 });

  const scenarios: Scenario[] = [];
  function appWith(authFailures: string) {
    const config = loadConfig({
      NODE_ENV: 'test',
      PARLEY_ADMIN_TOKEN: 'bench-admin-token-0123456789',
      META_APP_SECRET: APP_SECRET,
      META_VERIFY_TOKEN: 'bench-verify',
      AUTH_FAILURES_PER_MINUTE: authFailures,
    });
    return createApp({ config, log, database, services, temporal: {} as ParleyTemporal });
  }
  async function run(name: string, app: ReturnType<typeof appWith>, opts: { ids: number; requests: number }): Promise<Scenario> {
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/whatsapp`;
    const counter = countQueries(database.db);
    const queries: number[] = [];
    const times: number[] = [];
    const statuses: Record<string, number> = {};
    let bodyBytes = 0;
    const logBefore = logBytes;
    try {
      for (let i = 0; i < opts.requests; i++) {
        const body = bodyWith(opts.ids); // fresh random ids every request: no cache helps
        bodyBytes = Buffer.byteLength(body);
        counter.reset();
        const t0 = performance.now();
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${randomBytes(32).toString('hex')}` },
          body,
        });
        await res.arrayBuffer();
        times.push(performance.now() - t0);
        // the failed-auth limiter counts a 401 after the response: let it finish before reading the count
        await new Promise((r) => setTimeout(r, 20));
        queries.push(counter.count);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    } finally {
      counter.restore();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const s: Scenario = {
      name,
      ids: opts.ids,
      requests: opts.requests,
      statuses,
      queriesPerRequest: { mean: round(queries.reduce((a, b) => a + b, 0) / queries.length), max: Math.max(...queries), min: Math.min(...queries) },
      timeMs: summarize(times),
      bodyBytes,
      logBytesPerRequest: Math.round((logBytes - logBefore) / opts.requests),
    };
    scenarios.push(s);
    console.log(
      `${name.padEnd(44)} statuses ${JSON.stringify(statuses).padEnd(20)} queries/req mean ${String(s.queriesPerRequest.mean).padStart(7)} max ${String(s.queriesPerRequest.max).padStart(6)}  time p50 ${String(s.timeMs.p50).padStart(8)} ms mean ${String(s.timeMs.mean).padStart(8)} ms  log ${s.logBytesPerRequest} B/req`,
    );
    return s;
  }

  // the cost of one 401 (failed-auth limiter far away)
  const open = appWith(authFailuresPerMinute ?? '100000');
  await run('bad signature, 1 phone_number_id', open, { ids: 1, requests: 50 });
  await run('bad signature, 10,000 phone_number_ids', open, { ids: 10_000, requests: 5 });
  // one address that keeps trying, at the default limit (30 failures a minute)
  const limited = appWith('30');
  await run('one address, 60 bad requests (limit 30/min)', limited, { ids: 1, requests: 60 });
  await run('one address, 10 x 10,000 ids after that', limited, { ids: 10_000, requests: 10 });

  const result = {
    bench: 'webhook-401',
    label,
    at: new Date().toISOString(),
    database: database.describe,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGb: round(os.totalmem() / 2 ** 30), node: process.version },
    scenarios,
  };
  await database.close();
  const dir = path.join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `webhook-401-${label}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
