/**
 * Rate-limiter benchmark: how many `take`s per second the database token bucket
 * (services/rate-limit.ts) does, and what it adds to one send (waitForSendSlot: the pair slot
 * plus the business-number slot, two statements).
 *
 *   npm run bench:rate-limit                       # embedded PGlite in memory
 *   DATABASE_URL=postgres://… npm run bench:rate-limit   # PostgreSQL (a scratch database: it migrates)
 *   BENCH_SECONDS=5 npm run bench:rate-limit
 *
 * Writes bench/results/rate-limit-<timestamp>.json and bench/results/rate-limit-latest.json.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitForSendSlot, type SendRateLimits } from '../activities/channels/send-rate-limit';
import { migrateDatabase, openDatabase, type Database } from '../db/client';
import { createRateLimiter, type RateLimiter, type TakeOptions } from '../services/rate-limit';
import { nowMs, round, summarize, type LatencySummary } from './stats';

interface Row {
  name: string;
  concurrency: number;
  ops: number;
  opsPerS: number;
  granted: number;
  refused: number;
  latencyMs: LatencySummary;
}

/** Run `op` from `concurrency` loops for `seconds`; one op = one call. */
async function measure(name: string, concurrency: number, seconds: number, op: (worker: number, i: number) => Promise<boolean>): Promise<Row> {
  const latencies: number[] = [];
  let granted = 0;
  let refused = 0;
  const start = nowMs();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; nowMs() < end; i++) {
        const t0 = nowMs();
        const ok = await op(w, i);
        latencies.push(nowMs() - t0);
        if (ok) granted++;
        else refused++;
      }
    }),
  );
  const elapsed = (nowMs() - start) / 1000;
  return { name, concurrency, ops: latencies.length, opsPerS: round(latencies.length / elapsed), granted, refused, latencyMs: summarize(latencies) };
}

async function run(database: Database, seconds: number): Promise<Row[]> {
  const limiter: RateLimiter = createRateLimiter(database.db);
  const rows: Row[] = [];
  // never refuses: measures the statement itself
  const open: TakeOptions = { ratePerSec: 1e6, burst: 1e6 };
  const warm = `bench:warm:${randomUUID()}`;
  for (let i = 0; i < 200; i++) await limiter.take(warm, open);

  for (const c of [1, 8, 32]) {
    const key = `bench:one:${randomUUID()}`;
    rows.push(await measure('take, one key (a business number)', c, seconds, async () => (await limiter.take(key, open)).ok));
  }
  const run = randomUUID();
  rows.push(await measure('take, a new key each time (pairs)', 32, seconds, async (w, i) => (await limiter.take(`bench:pair:${run}:${w}:${i}`, open)).ok));
  const tight = `bench:tight:${randomUUID()}`;
  rows.push(await measure('take, one key at 50/s (mostly refused)', 8, seconds, async () => (await limiter.take(tight, { ratePerSec: 50, burst: 5 })).ok));

  // one send's limiter work: pair slot + number slot, never waiting (one user per call)
  const limits: SendRateLimits = { limiter, messagesPerSecond: 1e6, pairIntervalMs: 1, pairBurst: 1, maxSleepMs: 0 };
  const channel = randomUUID();
  for (const c of [1, 32]) {
    rows.push(
      await measure('send overhead (pair + number slot)', c, seconds, async (w, i) => {
        await waitForSendSlot(limits, { channelAccountId: channel, to: `${c}-${w}-${i}` });
        return true;
      }),
    );
  }
  return rows;
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const url = process.env.DATABASE_URL || undefined;
  const database = await openDatabase({ url, pgliteDataDir: 'memory://', max: 16 });
  await migrateDatabase(database);
  try {
    const rows = await run(database, seconds);
    const result = {
      kind: 'rate-limit',
      at: new Date().toISOString(),
      database: database.describe,
      machine: { cpus: os.cpus().length, node: process.version, loadavg1: round(os.loadavg()[0] ?? 0, 2) },
      secondsPerRow: seconds,
      rows,
    };
    const line = (r: Row) =>
      `${r.name.padEnd(42)} ${String(r.concurrency).padStart(5)} ${String(r.opsPerS).padStart(10)} ${String(r.latencyMs.p50).padStart(8)} ${String(r.latencyMs.p99).padStart(8)} ${String(r.refused).padStart(8)}`;
    console.log(`rate limiter on ${database.describe}, ${seconds} s per row, load ${result.machine.loadavg1} on ${result.machine.cpus} cpus`);
    console.log(`${'measurement'.padEnd(42)} ${'conc'.padStart(5)} ${'ops/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'refused'.padStart(8)}`);
    for (const r of rows) console.log(line(r));
    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const json = `${JSON.stringify(result, null, 2)}\n`;
    const file = path.join(dir, `rate-limit-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, json);
    writeFileSync(path.join(dir, 'rate-limit-latest.json'), json);
    console.log(`results written to ${path.relative(process.cwd(), file)}`);
  } finally {
    await database.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
