/**
 * Run one fake as its own process:
 *
 *   tsx fakes/main.ts graph  [--port N] [--host H] [--delay MS]
 *   tsx fakes/main.ts openai [--port N] [--host H] [--delay MS]
 *
 * Prints the fake's URL (the OpenAI one includes /v1, ready for OPENAI_BASE_URL) on stdout and
 * runs until SIGINT/SIGTERM. Drive it through its /__fake/* control endpoints.
 */
import { startFakeGraphApi } from './graph-api';
import { startFakeOpenAI } from './openai';

const USAGE = 'usage: tsx fakes/main.ts graph|openai [--port N] [--host H] [--delay MS]';

interface CliArgs {
  kind: 'graph' | 'openai';
  port?: number;
  host?: string;
  delayMs?: number;
}

export function parseArgs(argv: string[]): CliArgs {
  let kind: CliArgs['kind'] | undefined;
  const out: Omit<CliArgs, 'kind'> = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      i += 1;
      const v = argv[i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const int = (name: string, raw: string, max: number): number => {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`${name} must be an integer between 0 and ${max}`);
      return n;
    };
    switch (flag) {
      case '--port':
        out.port = int('--port', value(), 65535);
        break;
      case '--host':
        out.host = value();
        break;
      case '--delay':
        out.delayMs = int('--delay', value(), 3_600_000);
        break;
      case '-h':
      case '--help':
        throw new Error(USAGE);
      case 'graph':
      case 'graph-api':
        kind = 'graph';
        break;
      case 'openai':
        kind = 'openai';
        break;
      default:
        throw new Error(`unknown argument: ${arg}\n${USAGE}`);
    }
  }
  if (!kind) throw new Error(USAGE);
  return { kind, ...out };
}

async function main(): Promise<void> {
  let args: CliArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const opts = { port: args.port, host: args.host, delayMs: args.delayMs };
  const fake = args.kind === 'graph' ? await startFakeGraphApi(opts) : await startFakeOpenAI(opts);
  process.stdout.write(`${fake.url}\n`);
  process.stderr.write(`fake ${args.kind === 'graph' ? 'Graph API' : 'OpenAI'} listening on ${fake.url} (Ctrl-C to stop)\n`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    fake.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`failed to start fake: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
