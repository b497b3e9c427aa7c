/**
 * A file-backed Temporal dev server that can be stopped and started again on the same port
 * with the same SQLite file, so clients and workers must reconnect to it.
 */
import { closeSync, openSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { startDevServer, type DevServer } from '../../temporal/dev-server';
import { registerSearchAttributes } from '../../temporal/search-attributes';

export class RestartableDevServer {
  private server?: DevServer;
  private readonly logFd: number;
  /** Start-up times, ms, of every start (the first and each restart). */
  readonly startMs: number[] = [];

  constructor(
    readonly port: number,
    readonly dbFilename: string,
    logFile: string,
    readonly namespace = 'default',
  ) {
    this.logFd = openSync(logFile, 'a');
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.server?.process?.pid;
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    this.server = await startDevServer({
      port: this.port,
      uiPort: false,
      dbFilename: this.dbFilename,
      namespace: this.namespace,
      output: this.logFd,
      startTimeoutMs: 120_000,
    });
    // the CLI registers them from its command line; this checks they are there (idempotent)
    const conn = await Connection.connect({ address: this.address });
    try {
      await registerSearchAttributes(conn, this.namespace);
    } finally {
      await conn.close();
    }
    this.startMs.push(Date.now() - t0);
  }

  /** Stop the server with the given signal and wait until the process is gone. */
  async halt(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    if (signal === 'SIGKILL') s.process?.kill('SIGKILL');
    await s.stop();
  }

  async stop(): Promise<void> {
    await this.halt('SIGTERM');
    closeSync(this.logFd);
  }
}
