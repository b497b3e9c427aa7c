/**
 * Runs the real worker entry point (workers/main.ts) as a child process, like a process
 * manager would: SIGKILLs it on request, restarts it after a short pause, and restarts it
 * whenever it exits on its own (e.g. when the Temporal server went away). Every incarnation
 * is recorded, so a duplicate send can be traced to the kill that caused it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { PROJECT_ROOT } from '../../temporal/binaries';

export interface WorkerIncarnation {
  n: number;
  pid: number;
  spawnedAt: number;
  /** When it logged "worker started" (bundled, connected, about to poll). */
  readyAt?: number;
  exitedAt?: number;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** Exit caused by the chaos schedule (SIGKILL) rather than by the worker itself. */
  killedByChaos: boolean;
  /** When the SIGKILL was sent. */
  killedAt?: number;
  /** Last lines the worker wrote before an unplanned exit (why it stopped). */
  lastLines?: string[];
}

export interface WorkerSupervisorOptions {
  env: Record<string, string | undefined>;
  logFile: string;
  /** Project root the worker runs from (its workers/main.ts); default this checkout. */
  projectRoot?: string;
  /** Pause before restarting after a chaos kill, ms. */
  restartPauseMs: () => number;
}

export class WorkerSupervisor {
  readonly incarnations: WorkerIncarnation[] = [];
  private child?: ChildProcess;
  private current?: WorkerIncarnation;
  private stopping = false;
  private readonly log: WriteStream;
  private readyWaiters: (() => void)[] = [];
  private quickFailures = 0;
  private readonly killAll = () => this.child?.kill('SIGKILL');

  constructor(private readonly opts: WorkerSupervisorOptions) {
    this.log = createWriteStream(opts.logFile, { flags: 'a' });
    process.on('exit', this.killAll);
  }

  start(): void {
    if (this.stopping) return;
    const n = this.incarnations.length + 1;
    // node --import tsx (not the tsx CLI): the pid we SIGKILL is the worker itself, not a wrapper
    const root = this.opts.projectRoot ?? PROJECT_ROOT;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'workers', 'main.ts')], {
      cwd: root,
      env: this.opts.env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const inc: WorkerIncarnation = { n, pid: child.pid ?? -1, spawnedAt: Date.now(), killedByChaos: false };
    this.incarnations.push(inc);
    this.child = child;
    this.current = inc;
    this.log.write(`\n===== worker #${n} pid ${inc.pid} spawned at ${new Date(inc.spawnedAt).toISOString()}\n`);
    const tail: string[] = [];
    const onLine = (line: string) => {
      this.log.write(`[#${n}] ${line}\n`);
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (inc.readyAt === undefined && line.includes('worker started')) {
        inc.readyAt = Date.now();
        const waiters = this.readyWaiters;
        this.readyWaiters = [];
        for (const w of waiters) w();
      }
    };
    readline.createInterface({ input: child.stdout! }).on('line', onLine);
    readline.createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code, signal) => {
      inc.exitedAt = Date.now();
      inc.exit = { code, signal };
      this.log.write(`===== worker #${n} pid ${inc.pid} exited (code ${code}, signal ${signal})${inc.killedByChaos ? ' [chaos SIGKILL]' : ''}\n`);
      if (!inc.killedByChaos) inc.lastLines = tail.filter((l) => !/^\s+at /.test(l)).slice(-5);
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      let pause: number;
      if (inc.killedByChaos) {
        pause = this.opts.restartPauseMs();
        this.quickFailures = 0;
      } else {
        // died by itself (the server went away, a start-up error): back off a little
        this.quickFailures = inc.readyAt === undefined ? this.quickFailures + 1 : 0;
        pause = Math.min(10_000, 1000 * 2 ** Math.min(this.quickFailures, 4));
      }
      setTimeout(() => this.start(), pause);
    });
  }

  /** The live worker; undefined while it is down, restarting or already killed (exit not yet seen). */
  get running(): WorkerIncarnation | undefined {
    return this.child && this.current && !this.current.killedByChaos ? this.current : undefined;
  }

  /** Resolves when a worker is up (has logged "worker started"); rejects after timeoutMs. */
  waitReady(timeoutMs: number): Promise<WorkerIncarnation> {
    const ready = () => {
      const r = this.running;
      return r?.readyAt !== undefined && r.exitedAt === undefined ? r : undefined;
    };
    const now = ready();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        if (timer === undefined) return; // settled
        const r = ready();
        if (r) {
          clearInterval(timer);
          timer = undefined;
          resolve(r);
        } else if (this.quickFailures >= 8) {
          clearInterval(timer);
          timer = undefined;
          const last = this.incarnations.at(-1)?.lastLines?.join('\n    ') ?? '';
          reject(new Error(`the worker exited ${this.quickFailures} times in a row before it was ready (see ${this.opts.logFile}); last lines:\n    ${last}`));
        } else if (Date.now() > deadline) {
          clearInterval(timer);
          timer = undefined;
          reject(new Error(`no worker became ready within ${Math.round(timeoutMs / 1000)} s (see ${this.opts.logFile})`));
        }
      };
      // a worker may exit again before it is ready: poll, and also wake at once on "worker started"
      timer = setInterval(check, 500);
      this.readyWaiters.push(check);
    });
  }

  /** SIGKILL the running worker; it is restarted after restartPauseMs(). */
  kill(): WorkerIncarnation | undefined {
    const inc = this.running;
    if (!inc || !this.child) return undefined;
    inc.killedByChaos = true;
    inc.killedAt = Date.now();
    this.child.kill('SIGKILL');
    return inc;
  }

  /** Which incarnation was alive (spawned and not yet exited) at time t. */
  aliveAt(t: number): WorkerIncarnation | undefined {
    return this.incarnations.find((i) => i.spawnedAt <= t && (i.exitedAt === undefined || i.exitedAt >= t));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    process.removeListener('exit', this.killAll);
    await new Promise<void>((r) => this.log.end(() => r()));
  }
}
