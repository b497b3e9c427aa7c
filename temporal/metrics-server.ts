/**
 * The worker's metrics endpoint: ONE scrape target with both the Temporal SDK's metrics and
 * Parley's (lib/metrics.ts). The SDK's Rust core serves its Prometheus text on its own socket
 * (temporal/runtime.ts binds it to 127.0.0.1:METRICS_CORE_PORT, never reachable from outside);
 * this server, on METRICS_PORT, fetches that text at each scrape and appends prom-client's
 * registry. Why a merge rather than a second public port: the compose file, the Prometheus
 * config and the README keep one worker target (`parley-worker:9464`), scaled replicas stay one
 * target each, and the families cannot collide (the SDK's are `temporal_*`, ours `parley_*`,
 * `process_*` and `nodejs_*`). If the core's endpoint does not answer, Parley's metrics are
 * still served, with `parley_worker_sdk_metrics_up 0`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/logger';
import { exposition, EXPOSITION_CONTENT_TYPE } from '../lib/metrics';

export interface WorkerMetricsServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** The SDK core's text, or undefined when it does not answer (2 s). */
async function coreText(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return undefined;
    return await res.text();
  } catch {
    return undefined;
  }
}

/** One exposition: the core's families, then Parley's, then whether the core answered. */
export async function mergedExposition(coreUrl: string | undefined): Promise<string> {
  const core = coreUrl ? await coreText(coreUrl) : undefined;
  const own = await exposition();
  const parts: string[] = [];
  if (core) parts.push(core.endsWith('\n') ? core : `${core}\n`); // empty until the SDK records something
  parts.push(own.endsWith('\n') ? own : `${own}\n`);
  if (coreUrl) {
    parts.push('# HELP parley_worker_sdk_metrics_up 1 when the Temporal SDK core answered this scrape (its temporal_* metrics are included).\n');
    parts.push('# TYPE parley_worker_sdk_metrics_up gauge\n');
    parts.push(`parley_worker_sdk_metrics_up ${core === undefined ? 0 : 1}\n`);
  }
  return parts.join('');
}

/** Serve GET /metrics (and nothing else) on `port`; `coreUrl` is the SDK core's endpoint. */
export async function startWorkerMetricsServer(opts: { port: number; host?: string; coreUrl?: string; log: Logger }): Promise<WorkerMetricsServer> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    mergedExposition(opts.coreUrl).then(
      (text) => res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE }).end(text),
      (err: unknown) => {
        opts.log.warn({ err: (err as Error).message }, 'metrics exposition failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return { server, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
