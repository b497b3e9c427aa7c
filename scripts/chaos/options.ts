/** Command-line flags of `npm run chaos`; see the README's "Chaos test" section. */

export interface ChaosOptions {
  /** Unique inbound messages (each a WhatsApp text webhook with its own wamid). */
  messages: number;
  /** Leads (wa_ids); the messages are spread evenly over them, in random order. */
  leads: number;
  /** SIGKILLs of the worker process during the run. */
  workerKills: number;
  /** Stops + restarts of the Temporal dev server (same SQLite file, same port). */
  serverRestarts: number;
  /** Longest time the dev server stays down on a restart, seconds (each outage: 3 s to this). */
  serverDownS: number;
  /** How the dev server is stopped for a restart: SIGTERM (graceful) or SIGKILL. */
  serverSignal: 'SIGTERM' | 'SIGKILL';
  /** Offered rate of new inbound messages, per second (redeliveries come on top). */
  rate: number;
  /** Share of accepted webhooks that "Meta" delivers a second time, later. */
  duplicateRate: number;
  /** Meta's status webhooks (sent, delivered) for every reply the Graph API accepted. */
  statusWebhooks: boolean;
  /** How long "Meta" waits for the webhook's answer before it counts as failed, seconds. */
  webhookTimeoutS: number;
  /** Longest wait for the workflows to settle after the last message, seconds. */
  drainTimeoutS: number;
  /** PRNG seed: the same seed gives the same messages, order and chaos schedule. */
  seed: number;
  quick: boolean;
  /** Keep the database and the temp dir (Temporal SQLite file, logs) after the run. */
  keep: boolean;
  /** Parley's log level in the API and worker log files. */
  logLevel: string;
}

const USAGE = `usage: npm run chaos -- [--quick] [--messages N] [--leads N] [--worker-kills N] [--server-restarts N]
                        [--rate N] [--duplicate-rate F] [--webhook-timeout S] [--drain-timeout S]
                        [--server-signal TERM|KILL] [--server-down S] [--no-status-webhooks]
                        [--seed N] [--keep] [--log-level L]`;

export function parseChaosOptions(argv: string[], env: Record<string, string | undefined> = process.env): ChaosOptions {
  const quick = argv.includes('--quick') || env.CHAOS_QUICK === '1';
  const o: ChaosOptions = quick
    ? { messages: 300, leads: 30, workerKills: 4, serverRestarts: 1, rate: 6, drainTimeoutS: 150, ...common() }
    : { messages: 2000, leads: 200, workerKills: 20, serverRestarts: 3, rate: 5, drainTimeoutS: 300, ...common() };
  function common() {
    return {
      serverSignal: 'SIGTERM' as const,
      serverDownS: 15,
      duplicateRate: 0.05,
      webhookTimeoutS: 30,
      statusWebhooks: true,
      seed: Math.floor(Math.random() * 2 ** 31),
      quick,
      keep: false,
      logLevel: env.LOG_LEVEL ?? 'info',
    };
  }
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--messages':
        o.messages = Math.floor(num(flag, value(), 1));
        break;
      case '--leads':
        o.leads = Math.floor(num(flag, value(), 1));
        break;
      case '--worker-kills':
        o.workerKills = Math.floor(num(flag, value(), 0));
        break;
      case '--server-restarts':
        o.serverRestarts = Math.floor(num(flag, value(), 0));
        break;
      case '--rate':
        o.rate = num(flag, value(), 0.1);
        break;
      case '--duplicate-rate':
        o.duplicateRate = Math.min(1, num(flag, value(), 0));
        break;
      case '--no-status-webhooks':
        o.statusWebhooks = false;
        break;
      case '--server-down':
        o.serverDownS = num(flag, value(), 3);
        break;
      case '--webhook-timeout':
        o.webhookTimeoutS = num(flag, value(), 1);
        break;
      case '--drain-timeout':
        o.drainTimeoutS = num(flag, value(), 10);
        break;
      case '--seed':
        o.seed = Math.floor(num(flag, value(), 0));
        break;
      case '--log-level':
        o.logLevel = String(value());
        break;
      case '--server-signal': {
        const v = String(value()).toUpperCase().replace(/^SIG/, '');
        if (v !== 'TERM' && v !== 'KILL') throw new Error(`--server-signal is TERM or KILL\n${USAGE}`);
        o.serverSignal = v === 'TERM' ? 'SIGTERM' : 'SIGKILL';
        break;
      }
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag ${a}\n${USAGE}`);
    }
  }
  if (o.leads > o.messages) throw new Error('--leads cannot exceed --messages (every lead sends at least one message)');
  return o;
}

/** mulberry32: a small seeded PRNG, so a run's schedule can be repeated with --seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
