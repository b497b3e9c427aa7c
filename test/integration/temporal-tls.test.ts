/**
 * Secured Temporal connections against a real server. The dev server (`temporal server
 * start-dev`) has no TLS options, so a TLS front (test/support/tls.ts: throwaway CA and
 * certificates made with openssl; optionally requiring a client certificate) terminates TLS
 * and pipes to the tests' dev server. Both connections (the API's client, the worker's native
 * connection) go through the settings loadConfig resolves; a whole stack runs a lead's turn over
 * mTLS; handshakes that cannot succeed fail quickly with a clear error that holds no secret.
 */
import { loadConfig } from '../../config';
import { connectTemporalClient, connectTemporalWorker, TemporalConnectError, TEMPORAL_CONNECT_TIMEOUT_MS } from '../../temporal/connect';
import { makeTestPki, startTlsFront, type TestPki, type TlsFront } from '../support/tls';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook } from '../support/stack';

jest.setTimeout(120_000);

const API_KEY = 'tmprl-CANARY-api-key-0987654321';
const devServer = () => {
  const a = process.env.PARLEY_TEST_TEMPORAL_ADDRESS;
  if (!a) throw new Error('PARLEY_TEST_TEMPORAL_ADDRESS is not set: run through jest');
  return a;
};

let pki: TestPki;
let tlsFront: TlsFront;
let mtlsFront: TlsFront;

beforeAll(async () => {
  pki = makeTestPki();
  tlsFront = await startTlsFront({ pki, backend: devServer() });
  mtlsFront = await startTlsFront({ pki, backend: devServer(), requireClientCert: true });
});
afterAll(async () => {
  await tlsFront?.close();
  await mtlsFront?.close();
  pki?.cleanup();
});

/** Both connections with one environment: the client answers getSystemInfo, the worker's connection too. */
async function connectBoth(env: Record<string, string>): Promise<void> {
  const { temporal } = loadConfig(env);
  const { client, connection } = await connectTemporalClient(temporal);
  try {
    await client.workflowService.describeNamespace({ namespace: 'default' });
  } finally {
    await connection.close();
  }
  const native = await connectTemporalWorker(temporal);
  try {
    await native.workflowService.getSystemInfo({});
  } finally {
    await native.close();
  }
}

async function failure(p: Promise<unknown>): Promise<{ err: TemporalConnectError; ms: number }> {
  const started = Date.now();
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TemporalConnectError);
    return { err: err as TemporalConnectError, ms: Date.now() - started };
  }
  throw new Error('connected, but should have failed');
}

test('TLS with a private CA (and with a server name): client and worker connect', async () => {
  const before = tlsFront.handshakes;
  await connectBoth({ TEMPORAL_ADDRESS: tlsFront.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert });
  await connectBoth({ TEMPORAL_ADDRESS: tlsFront.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert, TEMPORAL_TLS_SERVER_NAME: 'localhost' });
  expect(tlsFront.handshakes - before).toBeGreaterThanOrEqual(4);
});

test('an API key over TLS connects (the key rides as a bearer token)', async () => {
  await connectBoth({ TEMPORAL_ADDRESS: tlsFront.address, TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert });
});

test('mTLS: with the client certificate both connect; without it the server refuses, quickly and clearly', async () => {
  const before = mtlsFront.handshakes;
  const env = { TEMPORAL_ADDRESS: mtlsFront.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert };
  await connectBoth({ ...env, TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey });
  expect(mtlsFront.handshakes - before).toBeGreaterThanOrEqual(2);

  const { temporal } = loadConfig(env);
  const worker = await failure(connectTemporalWorker(temporal).then((c) => c.workflowService.getSystemInfo({})));
  // the native connection may connect lazily: the refusal comes from the handshake either way
  expect(worker.ms).toBeLessThan(TEMPORAL_CONNECT_TIMEOUT_MS + 5000);
  const client = await failure(connectTemporalClient(temporal));
  expect(client.ms).toBeLessThan(TEMPORAL_CONNECT_TIMEOUT_MS + 5000);
  expect(client.err.message).toContain(`Could not connect to Temporal at ${mtlsFront.address} (TLS)`);
  expect(client.err.message).toMatch(/TEMPORAL_TLS_CLIENT_CERT_PATH/);
});

test('a server certificate from an untrusted CA is refused (and not retried by the worker)', async () => {
  const { temporal } = loadConfig({ TEMPORAL_ADDRESS: tlsFront.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.otherCaCert });
  const worker = await failure(connectTemporalWorker(temporal));
  expect(worker.err.message).toMatch(/UnknownIssuer/);
  expect(worker.err.retryable).toBe(false);
  const client = await failure(connectTemporalClient(temporal));
  expect(client.ms).toBeLessThan(TEMPORAL_CONNECT_TIMEOUT_MS + 5000);
});

test('TLS (an API key) against the plain dev server fails within the connect timeout, with a clear error and no key', async () => {
  const { temporal } = loadConfig({ TEMPORAL_ADDRESS: devServer(), TEMPORAL_API_KEY: API_KEY });
  expect(temporal.tls).toBe('tls');
  const worker = await failure(connectTemporalWorker(temporal));
  expect(worker.ms).toBeLessThan(5000);
  expect(worker.err.retryable).toBe(false);
  expect(worker.err.message).toContain(`Could not connect to Temporal at ${devServer()} (TLS, API key)`);
  expect(worker.err.message).toMatch(/TEMPORAL_TLS=false for a plain-text server/);
  const client = await failure(connectTemporalClient(temporal));
  expect(client.ms).toBeLessThan(TEMPORAL_CONNECT_TIMEOUT_MS + 5000);
  expect(client.err.message).toContain(`Could not connect to Temporal at ${devServer()} (TLS, API key)`);
  for (const e of [worker.err, client.err]) {
    expect(`${e.message}\n${e.stack}\n${String(e.cause)}`).not.toContain('CANARY');
  }
});

test('a whole stack over mTLS: the API signals, the worker runs the turn, the reply goes out', async () => {
  const stack = await startStack({
    TEMPORAL_ADDRESS: mtlsFront.address,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
    TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
  });
  try {
    expect(stack.config.temporal.describe()).toMatchObject({ address: mtlsFront.address, tls: 'mtls' });
    const tenant = await createTenant(stack, { credits: 10 });
    const before = stack.graph.sentMessages().length;
    await postWebhook(stack, textWebhook(tenant.phoneNumberId, randomWaId(), 'Hello over mTLS')).expect(200);
    const sent = await stack.graph.waitForSends(before + 1, 30_000);
    expect(sent.length).toBeGreaterThan(before);
  } finally {
    await stack.stop();
  }
});
