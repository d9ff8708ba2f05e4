/**
 * Two replicas on loopback with one routing key: a stream pulled by A is inspected, watched and
 * deleted through B, which forwards to A; an altered id is never followed (a server on 127.0.0.2
 * counts any connection); a stopped A is an unknown stream; a forwarded request is not forwarded
 * again. The source is a live HTTP MPEG-TS publisher (ffmpeg) on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { createStreamIds } from '../../src/service/stream-ids.js';
import { fixture } from '../helpers/media.js';
import { freePort, listen } from '../helpers/net.js';
import { makeApp, openTinyEngine, type TestApp } from './helpers.js';

const KEY = 'replicas-share-this-key-0123456789';
let engine: Engine;
let a: TestApp;
let b: TestApp;
let urlA: string;
let urlB: string;
let publisher: ChildProcess;
let sourcePort: number;
const trap = http.createServer((_req, res) => res.end('secret'));
const trapped: string[] = [];

async function replica(port: number): Promise<TestApp> {
  const t = makeApp(engine, {
    service: {
      streams: { max: 2, idleTimeoutMs: 5000, maxDurationS: 600, routing: { key: KEY, selfUrl: `http://127.0.0.1:${port}` } },
      sources: { schemes: ['http'], allow: ['127.0.0.1/32'] },
    },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  return t;
}
const forwards = async (t: TestApp, outcome: string): Promise<number> =>
  (await t.registry.getSingleMetric('haltingvt_stream_forwards_total')!.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

beforeAll(async () => {
  engine = await openTinyEngine();
  const [portA, portB] = [await freePort(), await freePort()];
  [urlA, urlB] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`];
  a = await replica(portA);
  b = await replica(portB);
  sourcePort = await freePort();
  publisher = spawn('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-i', fixture('live-small.mpegts'), '-c', 'copy', '-f', 'mpegts', '-listen', '1', `http://127.0.0.1:${sourcePort}/live.ts`], { stdio: 'ignore' });
  trap.on('connection', (socket: Socket) => trapped.push(`a connection from port ${socket.remotePort}`));
  await listen(trap, '127.0.0.2');
  await new Promise((r) => setTimeout(r, 500));
});
afterAll(async () => {
  publisher?.kill('SIGKILL');
  trap.close();
  await b?.app.close();
  await a?.app.close();
  await engine?.close();
});

/** One GET with `target` as the request line's target, as a client may write it; the answer's head and body. */
function rawGet(base: string, target: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('pulled streams across replicas (STREAM_ROUTING_KEY)', () => {
  it('answers 503 when the holding replica accepts but does not answer, and no more than that', async () => {
    const silent = net.createServer(() => undefined);
    const port = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as AddressInfo).port)));
    try {
      const id = createStreamIds({ key: KEY, selfUrl: `http://127.0.0.1:${port}` }).mint();
      const started = performance.now();
      const res = await fetch(`${urlB}/v1/streams/${id}`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('STREAM_REPLICA_BUSY');
      expect(performance.now() - started).toBeLessThan(8000);
    } finally {
      silent.close();
    }
  }, 15_000);

  it('answers through either replica, follows only ids a replica signed, and forgets a stopped one', async () => {
    const created = await fetch(`${urlA}/v1/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: { url: `http://127.0.0.1:${sourcePort}/live.ts` }, window_s: 1 }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect(id.split('.')).toHaveLength(3);

    // Status through B is A's own answer.
    const viaB = await fetch(`${urlB}/v1/streams/${id}`);
    expect(viaB.status).toBe(200);
    expect(await viaB.json()).toMatchObject({ id, source: `http://127.0.0.1:${sourcePort}/live.ts` });
    expect(await forwards(b, 'answered')).toBe(1);
    expect(b.service.streams.list().pulled).toHaveLength(0);

    // Events through B, as they come: `started`, then windows.
    const controller = new AbortController();
    const sse = await fetch(`${urlB}/v1/streams/${id}/events`, { signal: controller.signal });
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = sse.body!.getReader();
    let text = '';
    while (!/event: window\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(text).toMatch(/^id: 1\nevent: started\n/);

    // An altered id is an unknown one: nothing is sent where it points.
    const [nonce, , tag] = id.split('.') as [string, string, string];
    const pointed = `${nonce}.${Buffer.from('http://127.0.0.2:' + (trap.address() as AddressInfo).port).toString('base64url')}.${tag}`;
    const altered = await fetch(`${urlB}/v1/streams/${pointed}`);
    expect(altered.status).toBe(404);
    expect(((await altered.json()) as { error: { code: string } }).error.code).toBe('STREAM_NOT_FOUND');
    expect(trapped).toEqual([]);

    // A request line with an absolute URL (which the router accepts) still goes to the owner, never to its host.
    const absolute = await rawGet(urlB, `http://127.0.0.2:${(trap.address() as AddressInfo).port}/v1/streams/${id}`);
    expect(absolute).toMatch(/^HTTP\/1\.1 200 /);
    expect(absolute).toContain(`"id":"${id}"`);
    expect(trapped).toEqual([]);

    // A request already forwarded is answered where it lands (two replicas cannot bounce it).
    expect((await fetch(`${urlB}/v1/streams/${id}`, { headers: { 'x-haltingvt-forwarded': '1' } })).status).toBe(404);

    // Deleted through B: gone on A, and B relays A's 404.
    expect((await fetch(`${urlB}/v1/streams/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${urlA}/v1/streams/${id}`)).status).toBe(404);
    const relayed = await fetch(`${urlB}/v1/streams/${id}`);
    expect(relayed.status).toBe(404);
    expect(((await relayed.json()) as { error: { message: string } }).error.message).toContain('no pulled stream');

    // A stops: its streams went with it.
    const second = await fetch(`${urlA}/v1/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: { url: `http://127.0.0.1:${sourcePort}/live.ts` } }) });
    const { id: orphan } = (await second.json()) as { id: string };
    const unreachable = await forwards(b, 'unreachable');
    await a.app.close();
    const gone = await fetch(`${urlB}/v1/streams/${orphan}`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { error: { message: string } }).error.message).toMatch(/cannot be reached/);
    expect(await forwards(b, 'unreachable')).toBe(unreachable + 1);
  }, 60_000);
});
