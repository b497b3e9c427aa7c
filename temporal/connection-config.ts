/**
 * Where Parley's processes find Temporal: the SDK's environment configuration
 * (`@temporalio/envconfig`), resolved once by `loadConfig` and mapped onto both the client's
 * `Connection.connect` (API) and the worker's `NativeConnection.connect`.
 *
 * Precedence (the SDK's own): a `TEMPORAL_*` environment variable, then the selected profile of
 * the TOML config file, then Parley's default (`namespace` = `default`; no address = `npm run
 * dev` starts a dev server). The profile is `TEMPORAL_PROFILE` (else `default`), the file
 * `TEMPORAL_CONFIG_FILE` (else the SDK's default path, `~/.config/temporalio/temporal.toml`).
 * An API key turns TLS on unless `TEMPORAL_TLS=false` (or the profile's `tls.disabled`).
 *
 * Secrets (the API key, a private key's data) never appear in problems, descriptions or logs:
 * only `connectionOptions()` returns them, to hand to the SDK.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';

/** The environment variables of the SDK's convention that Parley reads (plus `TEMPORAL_GRPC_META_*` headers). */
export const TEMPORAL_CONNECTION_ENV = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
] as const;

export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

/** What both connections are given: the SDK's `ConnectionOptions` / `NativeConnectionOptions` subset. */
export interface TemporalConnectOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

export type TemporalTlsMode = 'off' | 'tls' | 'mtls';

export interface TemporalSettings {
  /** Resolved frontend `host:port`; undefined = none configured (`npm run dev` starts a dev server). */
  address?: string;
  namespace: string;
  tls: TemporalTlsMode;
  /** Whether an API key is configured (never the key itself). */
  apiKey: boolean;
  /** The profile and file the settings came from, when a file was read. */
  profile?: string;
  configFile?: string;
  /** Safe to log: no secret. */
  describe(): { address?: string; namespace: string; tls: TemporalTlsMode; apiKey: boolean; profile?: string; configFile?: string };
  /**
   * The options for `Connection.connect` / `NativeConnection.connect` (reads the certificate
   * and key files); for another address (a dev server) pass `address`.
   */
  connectionOptions(address?: string): TemporalConnectOptions;
}

/** A plain connection to `address` (the dev server, the tests' server). */
export function plainTemporalSettings(address: string | undefined, namespace = DEFAULT_TEMPORAL_NAMESPACE): TemporalSettings {
  return settingsFrom({ address, namespace }, {});
}

/** Empty values are unset (as everywhere in Parley's config), except gRPC metadata where empty removes a header (SDK). */
function withoutEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (v.trim() === '' && !k.startsWith('TEMPORAL_GRPC_META_')) continue;
    out[k] = v;
  }
  return out;
}

function isTomlError(err: unknown): err is Error & { line: number; column: number } {
  return err instanceof Error && typeof (err as { line?: unknown }).line === 'number' && typeof (err as { column?: unknown }).column === 'number';
}

/**
 * Resolve the Temporal connection from the environment with the SDK's loader. Returns the
 * settings, or the problems (each naming the variable or profile key, never a secret).
 */
export function resolveTemporalSettings(rawEnv: Record<string, string | undefined>): { settings?: TemporalSettings; problems: string[] } {
  const env = withoutEmpty(rawEnv);
  const problems: string[] = [];
  const fileVar = env.TEMPORAL_CONFIG_FILE;
  if (fileVar !== undefined && !isReadableFile(fileVar)) {
    return { problems: [`TEMPORAL_CONFIG_FILE: no readable file at ${fileVar}`] };
  }
  if (env.TEMPORAL_TLS !== undefined && !['true', 'false', '1', '0'].includes(env.TEMPORAL_TLS)) {
    problems.push('TEMPORAL_TLS: must be true or false');
  }
  if (env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION !== undefined) {
    problems.push('TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: not supported by the TypeScript SDK (set TEMPORAL_TLS_SERVER_NAME to the name in the server certificate instead)');
  }
  const where = fileVar ? `TEMPORAL_CONFIG_FILE (${fileVar})` : 'the default Temporal config file (~/.config/temporalio/temporal.toml; TEMPORAL_CONFIG_FILE names another)';
  let profile: ClientConfigProfile;
  try {
    // strict: a misspelt key in a security setting must not be silently ignored
    profile = loadClientConfigProfile({ overrideEnvVars: env, configFileStrict: true });
  } catch (err) {
    const msg = (err as Error).message;
    // a TOML error quotes the offending line, which may hold a key: only its position
    const both = /^Cannot specify both (\w+)_path and \w+_data/.exec(msg);
    if (isTomlError(err)) problems.push(`${where}: not valid TOML (line ${err.line}, column ${err.column})`);
    else if (both) {
      const v = `TEMPORAL_TLS_${both[1]!.toUpperCase()}`;
      problems.push(`${v}_PATH: set either ${v}_PATH or ${v}_DATA (tls.${both[1]}_path or _data in a profile), not both`);
    }
    else if (/^Profile '.*' not found/.test(msg)) problems.push(`TEMPORAL_PROFILE: profile '${env.TEMPORAL_PROFILE}' not found in ${where}`);
    else problems.push(`${where}: ${msg.replace(/^Validation error: /, '')}`);
    return { problems };
  }
  const profileName = env.TEMPORAL_PROFILE ?? 'default';
  const inProfile = (key: string) => `profile '${profileName}' tls.${key} in ${where}`;
  const tls = profile.tls;
  if (tls && tls.disabled !== true) {
    const sources: [ConfigDataSource | undefined, string, string][] = [
      [tls.clientCert, 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'client_cert_path'],
      [tls.clientKey, 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'client_key_path'],
      [tls.serverCACert, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'server_ca_cert_path'],
    ];
    for (const [source, envName, tomlKey] of sources) {
      if (!source || !('path' in source) || isReadableFile(source.path)) continue;
      const named = env[envName] === source.path ? envName : inProfile(tomlKey);
      problems.push(`${named}: no readable file at ${source.path}`);
    }
    if (Boolean(tls.clientCert) !== Boolean(tls.clientKey)) {
      problems.push(
        tls.clientCert
          ? 'TEMPORAL_TLS_CLIENT_KEY_PATH: mTLS needs the client key too (TEMPORAL_TLS_CLIENT_KEY_PATH or tls.client_key_path) when a client certificate is set'
          : 'TEMPORAL_TLS_CLIENT_CERT_PATH: mTLS needs the client certificate too (TEMPORAL_TLS_CLIENT_CERT_PATH or tls.client_cert_path) when a client key is set',
      );
    }
  }
  if (problems.length) return { problems };
  const fromFile = fileVar !== undefined || env.TEMPORAL_PROFILE !== undefined;
  return {
    settings: settingsFrom(profile, { profile: fromFile ? profileName : undefined, configFile: fileVar }),
    problems,
  };
}

function isReadableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function settingsFrom(profile: ClientConfigProfile, source: { profile?: string; configFile?: string }): TemporalSettings {
  // the SDK's own mapping (API key ⇒ TLS unless disabled); it reads the files, so only on demand
  const tlsMode: TemporalTlsMode =
    profile.tls?.disabled === true
      ? 'off'
      : profile.tls?.clientCert && profile.tls.clientKey
        ? 'mtls'
        : profile.tls !== undefined || profile.apiKey !== undefined
          ? 'tls'
          : 'off';
  const describe = () => ({
    address: profile.address,
    namespace: profile.namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    tls: tlsMode,
    apiKey: profile.apiKey !== undefined,
    ...(source.profile ? { profile: source.profile } : {}),
    ...(source.configFile ? { configFile: source.configFile } : {}),
  });
  const settings: TemporalSettings = {
    ...describe(),
    describe,
    connectionOptions(address?: string): TemporalConnectOptions {
      const target = address ?? profile.address;
      if (!target) throw new Error('TEMPORAL_ADDRESS: no Temporal address configured (environment or profile)');
      const { connectionOptions: o } = toClientOptions(profile);
      return {
        address: target,
        ...(o.tls !== undefined && o.tls !== null ? { tls: o.tls } : {}),
        ...(o.apiKey !== undefined ? { apiKey: o.apiKey } : {}),
        ...(profile.grpcMeta !== undefined ? { metadata: profile.grpcMeta } : {}),
      };
    },
  };
  // JSON.stringify / a logger serialize the safe description only
  Object.defineProperty(settings, 'toJSON', { value: describe, enumerable: false });
  return settings;
}
