/**
 * Real store outages for the tests, for the product's client to meet
 * (shared/store/client.ts `useEndpoint`): a port nobody listens on (every
 * request refused: ECONNREFUSED) and a server that accepts connections and
 * never answers (every request hangs until its deadline, as with a frozen
 * DynamoDB).
 */
import { createServer, type Socket } from 'node:net';
import { freePort } from '#local/dynamodb.ts';

/** The URL of a port nothing listens on. */
export async function refusingEndpoint(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

export interface SilentEndpoint {
  readonly endpoint: string;
  /** Connections accepted so far (one per request in flight, keep-alive aside). */
  readonly connections: () => number;
  /** Stop listening and drop every connection (requests still waiting fail with a reset). */
  readonly close: () => Promise<void>;
}

/** A server that reads requests and never answers. */
export async function silentEndpoint(): Promise<SilentEndpoint> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
