/**
 * Test-only TLS material and a TLS front for a plain Temporal dev server (which serves no TLS
 * itself): a throwaway CA, a server certificate (localhost, 127.0.0.1) and a client
 * certificate made with `openssl`, and a proxy that terminates TLS (optionally requiring a
 * client certificate: mTLS) and pipes the HTTP/2 bytes to the dev server.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second, unrelated CA (for a server the client must not trust). */
  otherCaCert: string;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=Parley test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
}

function makeLeaf(dir: string, name: string, usage: 'serverAuth' | 'clientAuth'): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${usage === 'serverAuth' ? 'localhost' : 'parley-worker'}`], dir);
  const ext = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${usage}`,
    ...(usage === 'serverAuth' ? ['subjectAltName=DNS:localhost,IP:127.0.0.1'] : []),
  ].join('\n');
  writeFileSync(path.join(dir, `${name}.ext`), ext + '\n');
  const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`;
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial, '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

/** A throwaway PKI in a temporary directory (paths to PEM files). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-pki-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'server', 'serverAuth');
  makeLeaf(dir, 'client', 'clientAuth');
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    caCert: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    otherCaCert: p('other-ca.pem'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsFront {
  address: string;
  /** Handshakes that completed (a client certificate was verified when mTLS is on). */
  handshakes: number;
  close(): Promise<void>;
}

/** Terminate TLS (h2 by ALPN) on a free port and pipe every connection to `backend` (host:port). */
export async function startTlsFront(opts: { pki: TestPki; backend: string; requireClientCert?: boolean }): Promise<TlsFront> {
  const [host, port] = [opts.backend.slice(0, opts.backend.lastIndexOf(':')), Number(opts.backend.slice(opts.backend.lastIndexOf(':') + 1))];
  const sockets = new Set<net.Socket>();
  const front: TlsFront = { address: '', handshakes: 0, close: async () => undefined };
  const server = tls.createServer(
    {
      key: readFileSync(opts.pki.serverKey),
      cert: readFileSync(opts.pki.serverCert),
      ALPNProtocols: ['h2'],
      ...(opts.requireClientCert ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(opts.pki.caCert) } : {}),
    },
    (socket) => {
      front.handshakes++;
      const upstream = net.connect(port, host);
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      socket.pipe(upstream).pipe(socket);
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  front.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  front.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return front;
}
