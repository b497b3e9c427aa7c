/**
 * Parley's production entry points (workers/main.ts, api/main.ts) as child processes of the
 * benchmark, configured through the environment exactly as in production, for the split
 * topology and the scale benchmark. Each child's pid is exposed so its CPU and RSS can be read
 * from /proc. The children run TypeScript through tsx's loader (the parent's execArgv).
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const ROOT = path.join(__dirname, '..');
/**
 * BENCH_BUILT=1: run the compiled entry points (`npm run build` → dist/) with plain node, as the
 * Docker image does, instead of the TypeScript sources through tsx's loader (tsx turns on
 * Node's source-map support, which makes every stack trace, and the workflow sandbox takes one
 * per promise, map its frames through the bundle's inline source map).
 */
const BUILT = process.env.BENCH_BUILT === '1';
export const WORKER_ENTRY = BUILT ? path.join(ROOT, 'dist', 'workers', 'main.js') : path.join(ROOT, 'workers', 'main.ts');
export const API_ENTRY = BUILT ? path.join(ROOT, 'dist', 'api', 'main.js') : path.join(ROOT, 'api', 'main.ts');

export interface ParleyChild {
  name: string;
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** SIGTERM (graceful: the worker finishes in-flight tasks), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough on one machine). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
let exitHook = false;

/** If the bench dies (Ctrl-C, an error), its Parley children must not outlive it. */
function killChildrenOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of live) c.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** Fork `entry` with `env` (only these variables plus PATH/HOME), forwarding its output with a prefix. */
export function forkParley(name: string, entry: string, env: Record<string, string | undefined>): ParleyChild {
  const childEnv: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k] !== undefined) childEnv[k] = process.env[k]!;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  killChildrenOnExit();
  // BENCH_CPU_PROF=<dir>: each child writes a V8 CPU profile there when it exits (open it in Chrome DevTools)
  const profDir = process.env.BENCH_CPU_PROF;
  // (one file per thread: the main thread, and the worker threads that run workflows)
  // BENCH_NODE_ARGS: extra node flags for the Parley children (e.g. `--max-semi-space-size=16`)
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const base = [...(BUILT ? [] : process.execArgv), ...extra];
  const execArgv = profDir ? [...base, '--cpu-prof', `--cpu-prof-dir=${path.join(profDir, name)}`] : base;
  const child: ChildProcess = fork(entry, [], { cwd: ROOT, env: childEnv, execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  live.add(child);
  const tail: string[] = [];
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      process.stderr.write(`[${name}] ${line.length > 400 ? `${line.slice(0, 400)}…` : line}\n`);
    }
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  let done = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(child);
      if (code !== 0 && code !== null && signal === null) process.stderr.write(`[${name}] exited with code ${code}\n`);
      resolve();
    }),
  );
  if (child.pid === undefined) throw new Error(`${name}: fork failed`);
  return {
    name,
    pid: child.pid,
    exited,
    async stop(graceMs = 30_000) {
      if (done) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function until<T>(what: string, timeoutMs: number, child: ParleyChild | undefined, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child?.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${what}: the process exited before it was ready`);
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Wait until a process with this pid polls the task queue for workflow tasks (the SDK's default
 * identity is `<pid>@<host>`). Works whatever the worker logs, on any commit.
 */
export async function waitForPoller(client: Client, taskQueue: string, child: ParleyChild, timeoutMs = 180_000): Promise<void> {
  await until(`${child.name} (pid ${child.pid}) polling ${taskQueue}`, timeoutMs, child, async () => {
    const r = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (r.pollers ?? []).some((p) => p.identity?.startsWith(`${child.pid}@`)) ? true : undefined;
  });
}

/** Wait until the API answers GET /healthz. */
export async function waitForHttp(url: string, child: ParleyChild | undefined, timeoutMs = 120_000): Promise<void> {
  await until(`${child?.name ?? 'api'} at ${url}`, timeoutMs, child, async () => {
    const res = await fetch(new URL('/healthz', url), { signal: AbortSignal.timeout(2000) });
    return res.ok ? true : undefined;
  });
}

/** Start the production worker entry point and wait until it polls. */
export async function startWorkerProcess(name: string, env: Record<string, string | undefined>, client: Client): Promise<ParleyChild> {
  const child = forkParley(name, WORKER_ENTRY, env);
  try {
    await waitForPoller(client, env.TEMPORAL_TASK_QUEUE ?? 'parley', child);
  } catch (err) {
    await child.stop(5000);
    throw err;
  }
  return child;
}

/** Start the production API entry point on a free port and wait until it answers. */
export async function startApiProcess(name: string, env: Record<string, string | undefined>): Promise<{ child: ParleyChild; url: string }> {
  const port = await freePort();
  const child = forkParley(name, API_ENTRY, { ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(url, child);
  } catch (err) {
    await child.stop(5000);
    throw err;
  }
  return { child, url };
}
