/**
 * The cold start proxy's TLS front (bench/tls-front.ts): a process that
 * trusts its certificate reaches the plain-HTTP target over https, byte for
 * byte both ways; one that does not is refused (verification stays on).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTlsFront, type TlsFront } from '#bench/tls-front.ts';

function get(endpoint: string, body: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${endpoint}/echo`, { method: 'POST', ...(ca ? { ca } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the TLS front of the cold start proxy', () => {
  let target: Server;
  let front: TlsFront;

  beforeAll(async () => {
    target = createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      req.on('end', () => res.end(`${req.method} ${req.url} ${text}`));
    }).listen(0, '127.0.0.1');
    await once(target, 'listening');
    const address = target.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    front = await startTlsFront(`http://127.0.0.1:${address.port}`);
  });

  afterAll(async () => {
    await front?.close();
    target?.close();
  });

  it('forwards a request and its answer over https, trusting the certificate it made', async () => {
    expect(front.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = 'x'.repeat(100_000);
    const answer = await get(front.endpoint, body, readFileSync(front.caFile));
    expect(answer).toEqual({ status: 200, body: `POST /echo ${body}` });
  });

  it('is refused by a client that does not trust the certificate', async () => {
    await expect(get(front.endpoint, 'x')).rejects.toThrow(/self-signed certificate/);
  });

  it('refuses a target that is not plain http', async () => {
    await expect(startTlsFront('https://127.0.0.1:1')).rejects.toThrow(/must be an http:\/\/ endpoint/);
  });
});
