/**
 * A TLS front for DynamoDB Local: the cold start proxy's processes reach the
 * store over https, as a deployed decide reaches DynamoDB's regional
 * endpoint. DynamoDB Local speaks plain HTTP only; through this front the
 * first request of a fresh process loads `node:https` and `node:tls`, builds
 * the default secure context (Node's bundled root certificates and the extra
 * one named by NODE_EXTRA_CA_CERTS) and makes a TLS handshake, with an RSA
 * 2048 certificate like DynamoDB's, all of which a deployed cold start pays
 * and a plain-HTTP proxy would leave out.
 *
 * The certificate is made for the run with the `openssl` command (OpenSSL's
 * own tool, as Debian and macOS ship it), self-signed for 127.0.0.1, and
 * trusted by the processes through NODE_EXTRA_CA_CERTS (verification stays
 * on). The front runs in the calling process: call it only where that
 * process's event loop is free while the children run (async spawn, never
 * spawnSync).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';

export interface TlsFront {
  /** `https://127.0.0.1:<port>`: the endpoint to give the processes (DYNAMODB_ENDPOINT). */
  readonly endpoint: string;
  /** The certificate's PEM file, for NODE_EXTRA_CA_CERTS. */
  readonly caFile: string;
  /** Stop listening, end the open connections and remove the certificate. */
  close(): Promise<void>;
}

/**
 * Listen on a free port of 127.0.0.1 and forward every TLS connection's
 * bytes to `target` (an http:// URL, DynamoDB Local's endpoint), both ways.
 * Throws when `openssl` is not installed or fails (with its message).
 */
export async function startTlsFront(target: string): Promise<TlsFront> {
  const upstream = new URL(target);
  if (upstream.protocol !== 'http:') throw new Error(`startTlsFront(${target}): the target must be an http:// endpoint`);
  const dir = mkdtempSync(join(tmpdir(), 'kairos-tls-front-'));
  const keyFile = join(dir, 'key.pem');
  const caFile = join(dir, 'cert.pem');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { encoding: 'utf8' },
  );
  if (made.error || made.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`the cold start proxy's TLS front needs the openssl command: ${made.error?.message ?? made.stderr.trim()}`);
  }
  const sockets = new Set<Socket>();
  const server = createServer({ key: readFileSync(keyFile), cert: readFileSync(caFile) }, (client) => {
    const store = connect(Number(upstream.port || 80), upstream.hostname);
    sockets.add(client);
    sockets.add(store);
    const end = () => {
      client.destroy();
      store.destroy();
      sockets.delete(client);
      sockets.delete(store);
    };
    client.on('error', end).on('close', end);
    store.on('error', end).on('close', end);
    client.pipe(store).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the TLS front has no port');
  return {
    endpoint: `https://127.0.0.1:${address.port}`,
    caFile,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
