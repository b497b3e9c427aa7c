/**
 * The Temporal connection Parley resolves from the environment and the SDK's TOML profiles
 * (@temporalio/envconfig), as handed to Connection.connect (API) and NativeConnection.connect
 * (worker): plain, TLS with system roots, mTLS, API key, profile, environment over profile, and
 * the start-up checks (missing files named by their variable, secrets never in messages).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseEnv } from 'node:util';
import { ConfigError, loadConfig } from '../../config';
import { createLogger } from '../../lib/logger';
import { plainTemporalSettings, resolveTemporalSettings, TEMPORAL_CONNECTION_ENV } from '../../temporal/connection-config';
import { SEARCH_ATTRIBUTE_CLI_TYPES } from '../../temporal/search-attributes';
import { makeTestPki, type TestPki } from '../support/tls';

const API_KEY = 'tmprl-CANARY-api-key-1234567890';
let pki: TestPki;
let dir: string;

beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(path.join(os.tmpdir(), 'parley-envconfig-'));
});
afterAll(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const bytes = (file: string) => new Uint8Array(readFileSync(file));

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

function writeToml(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('resolved connection options', () => {
  test('plain: address and namespace only, no TLS', () => {
    const c = loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'parley' });
    expect(c.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(c.TEMPORAL_NAMESPACE).toBe('parley');
    expect(c.temporal.connectionOptions()).toEqual({ address: 'temporal:7233' });
    expect(c.temporal.describe()).toEqual({ address: 'temporal:7233', namespace: 'parley', tls: 'off', apiKey: false });
  });

  test('nothing set: no address (npm run dev starts a dev server), namespace default', () => {
    const c = loadConfig({});
    expect(c.TEMPORAL_ADDRESS).toBeUndefined();
    expect(c.TEMPORAL_NAMESPACE).toBe('default');
    expect(() => c.temporal.connectionOptions()).toThrow(/TEMPORAL_ADDRESS/);
    // the dev server's address, plain
    expect(plainTemporalSettings('127.0.0.1:7233').connectionOptions()).toEqual({ address: '127.0.0.1:7233' });
  });

  test('TLS with the system roots: TEMPORAL_TLS=true, no CA, no client certificate', () => {
    const o = loadConfig({ TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_TLS: 'true' }).temporal.connectionOptions();
    expect(o.address).toBe('temporal.example.com:7233');
    expect(o.tls).toBeInstanceOf(Object);
    const tls = o.tls as Exclude<typeof o.tls, boolean | undefined>;
    expect(tls.serverRootCACertificate).toBeUndefined();
    expect(tls.clientCertPair).toBeUndefined();
    expect(tls.serverNameOverride).toBeUndefined();
    expect(o.apiKey).toBeUndefined();
  });

  test('TLS with a private CA and a server name', () => {
    const c = loadConfig({ TEMPORAL_ADDRESS: '10.0.0.5:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' });
    const tls = c.temporal.connectionOptions().tls as { serverRootCACertificate?: Uint8Array; serverNameOverride?: string };
    expect(tls.serverRootCACertificate).toEqual(bytes(pki.caCert));
    expect(tls.serverNameOverride).toBe('temporal.internal');
    expect(c.temporal.tls).toBe('tls');
  });

  test('mTLS: client certificate and key files (and the CA)', () => {
    const c = loadConfig({
      TEMPORAL_ADDRESS: 'parley.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'parley.a1b2c',
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    });
    const o = c.temporal.connectionOptions();
    const tls = o.tls as { clientCertPair?: { crt: Uint8Array; key: Uint8Array }; serverRootCACertificate?: Uint8Array };
    expect(tls.clientCertPair?.crt).toEqual(bytes(pki.clientCert));
    expect(tls.clientCertPair?.key).toEqual(bytes(pki.clientKey));
    expect(tls.serverRootCACertificate).toBeUndefined(); // Temporal Cloud: a public CA
    expect(o.apiKey).toBeUndefined();
    expect(c.temporal.describe()).toEqual({ address: 'parley.a1b2c.tmprl.cloud:7233', namespace: 'parley.a1b2c', tls: 'mtls', apiKey: false });
  });

  test('mTLS from PEM data in the environment (the _DATA variables)', () => {
    const o = loadConfig({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_TLS_CLIENT_CERT_DATA: readFileSync(pki.clientCert, 'utf8'),
      TEMPORAL_TLS_CLIENT_KEY_DATA: readFileSync(pki.clientKey, 'utf8'),
    }).temporal.connectionOptions();
    expect((o.tls as { clientCertPair?: { key: Uint8Array } }).clientCertPair?.key).toEqual(bytes(pki.clientKey));
  });

  test('an API key implies TLS (system roots) unless TEMPORAL_TLS=false, as the SDK does', () => {
    const cloud = loadConfig({ TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'parley.a1b2c', TEMPORAL_API_KEY: API_KEY });
    expect(cloud.temporal.connectionOptions()).toEqual({ address: 'us-east-1.aws.api.temporal.io:7233', apiKey: API_KEY, tls: true });
    expect(cloud.temporal.describe()).toMatchObject({ tls: 'tls', apiKey: true });
    const plain = loadConfig({ TEMPORAL_ADDRESS: 'proxy:7233', TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' });
    expect(plain.temporal.connectionOptions()).toEqual({ address: 'proxy:7233', apiKey: API_KEY, tls: false });
    expect(plain.temporal.tls).toBe('off');
  });

  test('gRPC metadata from TEMPORAL_GRPC_META_*', () => {
    const o = loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_GRPC_META_X_TENANT_ROUTE: 'eu' }).temporal.connectionOptions();
    expect(o.metadata).toEqual({ 'x-tenant-route': 'eu' });
  });
});

describe('TOML profiles (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)', () => {
  let file: string;
  beforeAll(() => {
    file = writeToml(
      'temporal.toml',
      `[profile.default]
address = "localhost:7233"
namespace = "dev"

[profile.cloud]
address = "parley.a1b2c.tmprl.cloud:7233"
namespace = "parley.a1b2c"

[profile.cloud.tls]
client_cert_path = "${pki.clientCert}"
client_key_path = "${pki.clientKey}"

[profile.apikey]
address = "us-east-1.aws.api.temporal.io:7233"
namespace = "parley.a1b2c"
api_key = "${API_KEY}"
`,
    );
  });

  test('TEMPORAL_PROFILE selects a profile: address, namespace and mTLS from the file', () => {
    const c = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' });
    expect(c.TEMPORAL_ADDRESS).toBe('parley.a1b2c.tmprl.cloud:7233');
    expect(c.TEMPORAL_NAMESPACE).toBe('parley.a1b2c');
    const tls = c.temporal.connectionOptions().tls as { clientCertPair?: { crt: Uint8Array; key: Uint8Array } };
    expect(tls.clientCertPair?.crt).toEqual(bytes(pki.clientCert));
    expect(c.temporal.describe()).toEqual({ address: 'parley.a1b2c.tmprl.cloud:7233', namespace: 'parley.a1b2c', tls: 'mtls', apiKey: false, profile: 'cloud', configFile: file });
  });

  test('without TEMPORAL_PROFILE the profile named default is used', () => {
    const c = loadConfig({ TEMPORAL_CONFIG_FILE: file });
    expect(c.temporal.connectionOptions()).toEqual({ address: 'localhost:7233' });
    expect(c.TEMPORAL_NAMESPACE).toBe('dev');
  });

  test("an API key in a profile implies TLS; it never appears in the description", () => {
    const c = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'apikey' });
    expect(c.temporal.connectionOptions()).toEqual({ address: 'us-east-1.aws.api.temporal.io:7233', apiKey: API_KEY, tls: true });
    expect(JSON.stringify(c.temporal)).not.toContain(API_KEY);
    expect(JSON.stringify(c.temporal.describe())).not.toContain(API_KEY);
  });

  test('the environment overrides the profile, field by field', () => {
    const c = loadConfig({
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_PROFILE: 'cloud',
      TEMPORAL_NAMESPACE: 'parley-staging.a1b2c',
      TEMPORAL_TLS_SERVER_NAME: 'override.example',
    });
    expect(c.TEMPORAL_ADDRESS).toBe('parley.a1b2c.tmprl.cloud:7233'); // from the profile
    expect(c.TEMPORAL_NAMESPACE).toBe('parley-staging.a1b2c'); // from the environment
    const tls = c.temporal.connectionOptions().tls as { serverNameOverride?: string; clientCertPair?: unknown };
    expect(tls.serverNameOverride).toBe('override.example');
    expect(tls.clientCertPair).toBeDefined(); // still the profile's

    const address = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_ADDRESS: 'other:7233', TEMPORAL_TLS: 'false' });
    expect(address.temporal.connectionOptions()).toEqual({ address: 'other:7233', tls: false });
  });

  test('an empty variable is unset: it does not blank the profile (as everywhere in Parley)', () => {
    const c = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: '', TEMPORAL_API_KEY: ' ' });
    expect(c.TEMPORAL_ADDRESS).toBe('parley.a1b2c.tmprl.cloud:7233');
    expect(c.TEMPORAL_NAMESPACE).toBe('parley.a1b2c');
    expect(loadConfig({ TEMPORAL_NAMESPACE: '' }).TEMPORAL_NAMESPACE).toBe('default');
    expect(loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_TLS: '' }).temporal.tls).toBe('mtls');
    expect(c.temporal.apiKey).toBe(false);
  });

  test("the SDK's default file (XDG_CONFIG_HOME/temporalio/temporal.toml) is read when no file is named", () => {
    const xdg = path.join(dir, 'xdg');
    mkdirSync(path.join(xdg, 'temporalio'), { recursive: true });
    writeFileSync(path.join(xdg, 'temporalio', 'temporal.toml'), '[profile.default]\naddress = "from-default-file:7233"\n');
    expect(loadConfig({ XDG_CONFIG_HOME: xdg }).TEMPORAL_ADDRESS).toBe('from-default-file:7233');
    // no file there: nothing configured, no error
    expect(loadConfig({ XDG_CONFIG_HOME: path.join(dir, 'nowhere') }).TEMPORAL_ADDRESS).toBeUndefined();
  });

  test('a production worker takes its address from the profile (TEMPORAL_ADDRESS need not be set)', () => {
    const c = loadConfig(
      { NODE_ENV: 'production', PARLEY_ENCRYPTION_KEY: 'k'.repeat(64), DATABASE_URL: 'postgres://p@db:5432/parley', TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' },
      { reader: 'worker' },
    );
    expect(c.TEMPORAL_ADDRESS).toBe('parley.a1b2c.tmprl.cloud:7233');
  });
});

describe('start-up checks', () => {
  const missing = '/nonexistent/parley/client.pem';

  test('a TLS file that does not exist fails at start-up, naming the variable', () => {
    expect(problems({ TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: missing, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey })).toEqual([
      `TEMPORAL_TLS_CLIENT_CERT_PATH: no readable file at ${missing}`,
    ]);
    expect(problems({ TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.dir })).toEqual([`TEMPORAL_TLS_SERVER_CA_CERT_PATH: no readable file at ${pki.dir}`]);
  });

  test('the same in production, for the worker and the API, alongside the other problems', () => {
    const prod = { NODE_ENV: 'production', PARLEY_ENCRYPTION_KEY: 'k'.repeat(64), DATABASE_URL: 'postgres://p@db:5432/parley', TEMPORAL_ADDRESS: 't:7233' };
    for (const reader of ['worker', 'api'] as const) {
      expect(() => loadConfig({ ...prod, TEMPORAL_TLS_CLIENT_KEY_PATH: missing, TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert }, { reader })).toThrow(
        /TEMPORAL_TLS_CLIENT_KEY_PATH: no readable file/,
      );
    }
    expect(problems({ PORT: 'abc', TEMPORAL_TLS_SERVER_CA_CERT_PATH: missing }).map((p) => p.split(':')[0])).toEqual(['PORT', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH']);
  });

  test("a profile's missing file is named by its profile key and file", () => {
    const file = writeToml('missing.toml', `[profile.cloud]\naddress = "x:7233"\n[profile.cloud.tls]\nclient_cert_path = "${missing}"\nclient_key_path = "${pki.clientKey}"\n`);
    expect(problems({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' })).toEqual([
      `profile 'cloud' tls.client_cert_path in TEMPORAL_CONFIG_FILE (${file}): no readable file at ${missing}`,
    ]);
    // TLS turned off by the environment: the files are not needed
    expect(problems({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_TLS: 'false' })).toEqual([]);
  });

  test('a client certificate without its key (or the reverse) is refused, not silently dropped', () => {
    expect(problems({ TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert })).toEqual([expect.stringMatching(/^TEMPORAL_TLS_CLIENT_KEY_PATH: mTLS needs the client key/)]);
    expect(problems({ TEMPORAL_ADDRESS: 't:7233', TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey })).toEqual([expect.stringMatching(/^TEMPORAL_TLS_CLIENT_CERT_PATH: mTLS needs the client certificate/)]);
  });

  test('the config file and the profile must exist when named', () => {
    expect(problems({ TEMPORAL_CONFIG_FILE: path.join(dir, 'absent.toml') })).toEqual([`TEMPORAL_CONFIG_FILE: no readable file at ${path.join(dir, 'absent.toml')}`]);
    const file = writeToml('one.toml', '[profile.default]\naddress = "x:7233"\n');
    expect(problems({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' })).toEqual([`TEMPORAL_PROFILE: profile 'prod' not found in TEMPORAL_CONFIG_FILE (${file})`]);
    expect(problems({ TEMPORAL_PROFILE: 'prod' })).toEqual([expect.stringMatching(/^TEMPORAL_PROFILE: profile 'prod' not found in the default Temporal config file .*TEMPORAL_CONFIG_FILE names another/)]);
  });

  test('bad values: TEMPORAL_TLS, a misspelt TLS key, host verification off (unsupported by the TypeScript SDK)', () => {
    expect(problems({ TEMPORAL_TLS: 'yes' })).toEqual(['TEMPORAL_TLS: must be true or false']);
    const file = writeToml('typo.toml', `[profile.default]\naddress = "x:7233"\n[profile.default.tls]\nclient_cert_pth = "${pki.clientCert}"\n`);
    expect(problems({ TEMPORAL_CONFIG_FILE: file })).toEqual([expect.stringMatching(/^TEMPORAL_CONFIG_FILE .*unrecognized in profile\.default\.tls: client_cert_pth/)]);
    expect(problems({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_CERT_DATA: 'x', TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey })).toEqual([
      'TEMPORAL_TLS_CLIENT_CERT_PATH: set either TEMPORAL_TLS_CLIENT_CERT_PATH or TEMPORAL_TLS_CLIENT_CERT_DATA (tls.client_cert_path or _data in a profile), not both',
    ]);
    expect(problems({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).toEqual([expect.stringMatching(/^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: not supported/)]);
  });

  test('secrets never reach a problem: a TOML error on the API key line gives its position only', () => {
    const file = writeToml('broken.toml', `[profile.default]\naddress = "x:7233"\napi_key = "${API_KEY}\n`);
    const p = problems({ TEMPORAL_CONFIG_FILE: file });
    expect(p).toEqual([`TEMPORAL_CONFIG_FILE (${file}): not valid TOML (line 3, column ${p[0]?.match(/column (\d+)/)?.[1]})`]);
    expect(p.join('\n')).not.toContain('CANARY');
    // key data with a missing certificate: the problem names the variable, not the key
    const keyPem = readFileSync(pki.clientKey, 'utf8');
    const q = problems({ TEMPORAL_ADDRESS: 't:7233', TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS_CLIENT_KEY_DATA: keyPem, TEMPORAL_TLS_CLIENT_CERT_PATH: missing }).join('\n');
    expect(q).toMatch(/TEMPORAL_TLS_CLIENT_CERT_PATH/);
    expect(q).not.toContain('CANARY');
    expect(q).not.toContain(keyPem.split('\n')[1]);
  });

  test('the API key and key data never reach a log line, even when the whole config is logged', () => {
    const keyPem = readFileSync(pki.clientKey, 'utf8');
    const c = loadConfig({ TEMPORAL_ADDRESS: 't:7233', TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS_CLIENT_KEY_DATA: keyPem, TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert });
    const lines: string[] = [];
    const log = createLogger({ destination: new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) }) });
    log.info({ config: c }, 'config');
    log.info({ temporal: c.temporal }, 'settings');
    log.info({ temporal: c.temporal.describe() }, 'describe');
    log.info({ tls: c.temporal.connectionOptions().tls, apiKey: c.temporal.connectionOptions().apiKey }, 'options');
    const out = lines.join('');
    expect(out).toContain('"tls":"mtls"');
    expect(out).not.toContain('CANARY');
    expect(out).not.toContain(keyPem.split('\n')[1]);
    expect(resolveTemporalSettings({ TEMPORAL_ADDRESS: 't:7233', TEMPORAL_API_KEY: API_KEY }).settings?.describe()).toEqual({ address: 't:7233', namespace: 'default', tls: 'tls', apiKey: true });
  });
});

describe('documentation in step', () => {
  const root = path.join(__dirname, '..', '..');
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const envExample = readFileSync(path.join(root, '.env.example'), 'utf8');

  test('every Temporal connection variable is in the config schema, .env.example and the README table', async () => {
    const { configSchema } = await import('../../config');
    for (const name of TEMPORAL_CONNECTION_ENV) {
      expect(Object.keys(configSchema.shape)).toContain(name);
      expect(envExample).toMatch(new RegExp(`^${name}=`, 'm'));
      expect(readme).toMatch(new RegExp(`^\\| [^|]*\`${name}\``, 'm'));
    }
  });

  test('.env.example as it stands (empty Temporal variables) is a plain, unconfigured connection', () => {
    const c = loadConfig(parseEnv(envExample) as Record<string, string>);
    expect(c.TEMPORAL_ADDRESS).toBeUndefined();
    expect(c.TEMPORAL_NAMESPACE).toBe('default');
    expect(c.temporal.describe()).toEqual({ namespace: 'default', tls: 'off', apiKey: false });
  });

  test("the README's tcld and temporal operator commands register exactly Parley's search attributes", () => {
    const section = readme.slice(readme.indexOf('## Temporal Cloud and secured clusters'));
    const expected = Object.entries(SEARCH_ATTRIBUTE_CLI_TYPES).map(([n, t]) => `${n}=${t}`).sort();
    const tcld = section.slice(section.indexOf('tcld namespace search-attributes add'), section.indexOf('# your own cluster (the temporal CLI'));
    expect([...tcld.matchAll(/--sa (\w+=\w+)/g)].map((m) => m[1]).sort()).toEqual(expected);
    const loop = section.slice(section.indexOf('for sa in'), section.indexOf('; do'));
    expect([...loop.matchAll(/(\w+=\w+)/g)].map((m) => m[1]).sort()).toEqual(expected);
  });
});
