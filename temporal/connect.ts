/**
 * Both of Parley's Temporal connections, made from the one resolved `TemporalSettings`
 * (config.temporal, temporal/connection-config.ts): the client's `Connection` (API, tools) and
 * the worker's `NativeConnection`. TLS, mTLS, the API key and gRPC metadata are the SDK's
 * environment configuration; a failure says where it tried and how (never the key).
 */
import type { Tracer } from '@opentelemetry/api';
import { Client, type ClientInterceptors, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { PayloadCodec } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from './connection-config';
import { parleyDataConverter } from './data-converter';

/** A TLS handshake that cannot succeed or an unreachable server must fail in this time, not hang. */
export const TEMPORAL_CONNECT_TIMEOUT_MS = 10_000;

/** Errors that retrying the same settings cannot fix: TLS trust, handshake or credentials. */
const NOT_RETRYABLE = /InvalidCertificate|InvalidContentType|CertificateRequired|UnknownIssuer|fatal alert|handshake|InvalidMessage|Unauthenticated|PermissionDenied|unauthorized/i;

export class TemporalConnectError extends Error {
  /** False when the settings themselves are wrong (TLS, certificates, credentials): retrying cannot help. */
  readonly retryable: boolean;
  constructor(settings: TemporalSettings, address: string, cause: unknown) {
    const d = settings.describe();
    const how = `${d.tls === 'off' ? 'plain text' : d.tls === 'mtls' ? 'mTLS' : 'TLS'}${d.apiKey ? ', API key' : ''}${d.profile ? `, profile ${d.profile}` : ''}`;
    const reason = cause instanceof Error ? cause.message : String(cause);
    const hint =
      d.tls === 'off'
        ? 'is the server reachable, and does it expect TLS (TEMPORAL_TLS=true)?'
        : 'is the server reachable and serving TLS (TEMPORAL_TLS=false for a plain-text server), is its certificate signed by a system root or TEMPORAL_TLS_SERVER_CA_CERT_PATH, does its name match (TEMPORAL_TLS_SERVER_NAME), and does it require a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH)?';
    super(`Could not connect to Temporal at ${address} (${how}): ${reason}; ${hint}`, { cause });
    this.name = 'TemporalConnectError';
    this.retryable = !NOT_RETRYABLE.test(reason);
  }
}

/**
 * The client connection with the resolved settings; `address` overrides the settings' (a dev
 * server Parley started itself, with `plainTemporalSettings`); `payloadCodec`: Parley's payload
 * encryption (temporal/payload-codec.ts, `core.payloadCodec`).
 */
export async function connectTemporalClient(settings: TemporalSettings, opts: { address?: string; payloadCodec?: PayloadCodec; tracer?: Tracer } = {}): Promise<{ client: Client; connection: Connection }> {
  const options = settings.connectionOptions(opts.address);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: TEMPORAL_CONNECT_TIMEOUT_MS });
  } catch (err) {
    throw new TemporalConnectError(settings, options.address, err);
  }
  return { client: new Client({ connection, namespace: settings.namespace, interceptors: tracingClientInterceptors(opts.tracer), dataConverter: parleyDataConverter(opts.payloadCodec) }), connection };
}

/**
 * The SDK's OpenTelemetry client interceptor: a span around each start, signal, update and query,
 * and its context in the `_tracer-data` header the workflow interceptors read (workers/tracing.ts).
 * `tracer`: the process role's (lib/tracing.ts); absent: the global one.
 */
export function tracingClientInterceptors(tracer?: Tracer): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor(tracer ? { tracer } : {})] };
}

/** The worker's native connection with the same resolved settings. */
export async function connectTemporalWorker(settings: TemporalSettings, opts: { address?: string } = {}): Promise<NativeConnection> {
  const options = settings.connectionOptions(opts.address);
  try {
    return await NativeConnection.connect(options);
  } catch (err) {
    throw new TemporalConnectError(settings, options.address, err);
  }
}
