/** The parent's handle on the "outside world" child process (bench/world.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { FromWorld, RepliesQuery, RepliesResult, ToWorld, WebhookLoad, WebhookSend } from './protocol';
import type { OpenLoopSummary } from './open-loop';

type Pending = { resolve: (m: FromWorld) => void; reject: (e: Error) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export interface World {
  graphUrl: string;
  llmUrl: string;
  pid: number;
  webhooks(load: WebhookLoad): Promise<{ summary: OpenLoopSummary; sends: WebhookSend[] }>;
  replies(query: RepliesQuery): Promise<RepliesResult>;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

export interface WorldOptions {
  /** How long the fake LLM takes to answer, ms (default 0). */
  llmDelayMs?: number;
}

export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  // fork() reuses this process's execArgv, i.e. tsx's loader, so the child runs TypeScript too.
  const env = { ...process.env, BENCH_LLM_DELAY_MS: String(opts.llmDelayMs ?? 0) };
  const child: ChildProcess = fork(path.join(__dirname, 'world.ts'), [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const ready = new Promise<Extract<FromWorld, { type: 'ready' }>>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      exited = true;
      const err = new Error(`bench world process exited (code ${code}, signal ${signal})`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
    child.on('message', (msg: FromWorld) => {
      if (msg.type === 'ready') {
        resolve(msg);
        return;
      }
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new Error(`bench world: ${msg.message}`));
      else p.resolve(msg);
    });
  });

  const request = <T extends FromWorld['type']>(msg: DistributiveOmit<ToWorld, 'id'>): Promise<Extract<FromWorld, { type: T }>> => {
    if (exited) return Promise.reject(new Error('bench world process is not running'));
    const id = nextId;
    nextId += 1;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve: resolve as (m: FromWorld) => void, reject });
      child.send({ ...msg, id } as ToWorld);
    });
  };

  const info = await ready;
  return {
    graphUrl: info.graphUrl,
    llmUrl: info.llmUrl,
    pid: info.pid,
    async webhooks(load) {
      const r = await request<'webhooks'>({ type: 'webhooks', load });
      return { summary: r.summary, sends: r.sends };
    },
    async replies(query) {
      return (await request<'replies'>({ type: 'replies', query })).result;
    },
    async cpuMs() {
      return (await request<'cpu'>({ type: 'cpu' })).cpuMs;
    },
    async stop() {
      if (exited) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      try {
        await request<'stopped'>({ type: 'stop' });
      } catch {
        child.kill('SIGTERM');
      }
      await exitPromise;
      clearTimeout(timer);
    },
  };
}
