/**
 * Benchmark parameters from flags (`--rate 200`, `--rate=200`) or the environment
 * (`BENCH_RATE=200`); flags win. `--quick` switches to small defaults for a smoke run.
 */
export interface BenchOptions {
  /** Offered webhook / signalWithStart rate, requests per second. */
  rate: number;
  /** How long the (a) and (b) phases offer load, seconds. */
  seconds: number;
  /** End-to-end burst: how many leads (one message each). */
  leads: number;
  /** End-to-end burst: offered rate of the lead webhooks, per second. */
  leadRate: number;
  /** Load-generator sockets (http.Agent maxSockets). */
  maxSockets: number;
  /** Longest wait for replies after a phase (drain) and for the end-to-end burst, seconds. */
  drainTimeoutS: number;
  /** Warm-up requests of each kind before measuring. */
  warmup: number;
  quick: boolean;
  /** `single`: API + worker in the bench process (npm run dev); `split`: each in its own process (production). */
  topology: 'single' | 'split';
  /** Ordinary turns: how many leads of (c), already answered once and idle, write again (0 = skip). */
  turns: number;
  /** Rate sweep of (a)+(b): offered rates in ascending order (empty = skip). */
  rates: number[];
  /** Seconds of load per rate of the sweep. */
  rateSeconds: number;
  /** Diagnostic: no worker at all, only (a) + (b) (the acceptance path without the worker's CPU). */
  noWorker: boolean;
  logLevel: string;
}

const FLAGS: Record<string, { key: keyof BenchOptions; env: string }> = {
  '--rate': { key: 'rate', env: 'BENCH_RATE' },
  '--seconds': { key: 'seconds', env: 'BENCH_SECONDS' },
  '--leads': { key: 'leads', env: 'BENCH_LEADS' },
  '--lead-rate': { key: 'leadRate', env: 'BENCH_LEAD_RATE' },
  '--max-sockets': { key: 'maxSockets', env: 'BENCH_MAX_SOCKETS' },
  '--drain-timeout': { key: 'drainTimeoutS', env: 'BENCH_DRAIN_TIMEOUT' },
  '--warmup': { key: 'warmup', env: 'BENCH_WARMUP' },
  '--turns': { key: 'turns', env: 'BENCH_TURNS' },
  '--rate-seconds': { key: 'rateSeconds', env: 'BENCH_RATE_SECONDS' },
};

export const USAGE = `usage: npm run bench -- [--quick] [--no-worker] [--topology single|split] [--rate N] [--seconds N]
                         [--leads N] [--lead-rate N] [--turns N] [--rates N,N,...] [--rate-seconds N]
                         [--max-sockets N] [--drain-timeout S] [--warmup N]
  env: BENCH_RATE, BENCH_SECONDS, BENCH_LEADS, BENCH_LEAD_RATE, BENCH_TURNS, BENCH_RATES, BENCH_RATE_SECONDS,
       BENCH_TOPOLOGY, BENCH_MAX_SOCKETS, BENCH_DRAIN_TIMEOUT, BENCH_WARMUP, BENCH_QUICK=1, BENCH_NO_WORKER=1,
       LOG_LEVEL (default warn), DATABASE_URL, WORKER_MAX_CONCURRENT_ACTIVITIES, WORKER_MAX_CONCURRENT_WORKFLOW_TASKS
  --topology split: the API and the worker each in their own process (their production entry points); needs DATABASE_URL
  --no-worker: diagnostic; runs only (a) + (b), with no worker in the process (nothing is answered)`;

function parseRates(raw: string, from: string): number[] {
  const rates = raw.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  if (rates.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${from}: expected rates like 50,100,200, got ${JSON.stringify(raw)}\n${USAGE}`);
  return [...new Set(rates)].sort((a, b) => a - b);
}

function parseTopology(raw: string, from: string): 'single' | 'split' {
  if (raw === 'single' || raw === 'split') return raw;
  throw new Error(`${from}: expected single or split, got ${JSON.stringify(raw)}\n${USAGE}`);
}

export function parseOptions(argv: string[], env: Record<string, string | undefined> = process.env): BenchOptions {
  const quick = argv.includes('--quick') || env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const opts: BenchOptions = quick
    ? { rate: 50, seconds: 3, leads: 30, leadRate: 30, maxSockets: 64, drainTimeoutS: 30, warmup: 10, quick, noWorker: false, logLevel: 'warn', topology: 'single', turns: 10, rates: [], rateSeconds: 3 }
    : { rate: 200, seconds: 10, leads: 300, leadRate: 100, maxSockets: 64, drainTimeoutS: 60, warmup: 50, quick, noWorker: false, logLevel: 'warn', topology: 'single', turns: 30, rates: [], rateSeconds: 4 };
  opts.logLevel = env.LOG_LEVEL?.trim() || 'warn';
  opts.noWorker = argv.includes('--no-worker') || env.BENCH_NO_WORKER === '1' || env.BENCH_NO_WORKER === 'true';
  const set = (key: keyof BenchOptions, raw: string, from: string) => {
    const n = Number(raw);
    const min = key === 'warmup' || key === 'turns' ? 0 : 1;
    if (!Number.isFinite(n) || n < min || (key !== 'seconds' && key !== 'drainTimeoutS' && !Number.isInteger(n))) {
      throw new Error(`${from}: expected a number >= ${min}, got ${JSON.stringify(raw)}\n${USAGE}`);
    }
    (opts as unknown as Record<string, number>)[key] = n;
  };
  for (const { key, env: name } of Object.values(FLAGS)) {
    const v = env[name];
    if (v !== undefined && v.trim() !== '') set(key, v, name);
  }
  if (env.BENCH_RATES?.trim()) opts.rates = parseRates(env.BENCH_RATES, 'BENCH_RATES');
  if (env.BENCH_TOPOLOGY?.trim()) opts.topology = parseTopology(env.BENCH_TOPOLOGY.trim(), 'BENCH_TOPOLOGY');
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--quick' || arg === '--no-worker') continue;
    if (arg === '--help' || arg === '-h') throw new Error(USAGE);
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (flag === '--rates' || flag === '--topology') {
      let v: string | undefined = eq > 0 ? arg.slice(eq + 1) : argv[(i += 1)];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      v = v.trim();
      if (flag === '--rates') opts.rates = parseRates(v, flag);
      else opts.topology = parseTopology(v, flag);
      continue;
    }
    const spec = FLAGS[flag];
    if (!spec) throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    let value: string | undefined = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (value === undefined) {
      i += 1;
      value = argv[i];
    }
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    set(spec.key, value, flag);
  }
  return opts;
}
