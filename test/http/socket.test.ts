/**
 * Over a real socket (the app listening on 127.0.0.1): what inject() cannot show, i.e. clients
 * that go away. Their temp files must go, and a request dropped while queued must never reach the
 * engine.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { ClassifyResponse, ErrorBody } from '../../src/http/schemas.js';
import { fixture, form, gatedEngine, makeApp, openTinyEngine, until, videoPart, type TestApp } from './helpers.js';
import { familyText } from '../helpers/metrics.js';

let engine: Engine;
let t: TestApp;
let base: string;
let held: ReturnType<typeof gatedEngine>;

beforeAll(async () => {
  engine = await openTinyEngine();
  held = gatedEngine(engine);
  t = makeApp(held.port, { service: { concurrency: 1, queueSize: 4 } });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  held?.open();
  await t?.app.close();
  await engine?.close();
});

/** Starts a raw-body upload and returns the request without ending it. */
function startUpload(declaredBytes: number): { req: http.ClientRequest; response: Promise<http.IncomingMessage | Error> } {
  const req = http.request(`${base}/v1/classify`, { method: 'POST', headers: { 'content-type': 'video/mp4', 'content-length': String(declaredBytes) } });
  const response = new Promise<http.IncomingMessage | Error>((resolve) => {
    req.on('response', resolve);
    req.on('error', resolve);
  });
  return { req, response };
}

async function gauge(name: string): Promise<number> {
  const text = await t.registry.getSingleMetricAsString(name);
  return Number(/ (\S+)$/m.exec(text.split('\n').filter((l) => l.startsWith(name)).join('\n'))?.[1]);
}

/** errors_total{code="ABORTED"}, 0 before the first. */
async function aborts(): Promise<number> {
  const line = (await familyText(t.registry, 'haltingvt_errors_total')).split('\n').find((l) => l.includes('code="ABORTED"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('over a real socket', () => {
  it('classifies a video sent with fetch and FormData', async () => {
    held.open();
    const body = new FormData();
    body.append('file', new Blob([readFileSync(fixture('clip.mp4'))], { type: 'video/mp4' }), 'clip.mp4');
    body.append('top_k', '1');
    const res = await fetch(`${base}/v1/classify`, { method: 'POST', body, headers: { 'x-request-id': 'socket-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('socket-1');
    const json = ClassifyResponse.parse(await res.json());
    expect(json.top).toHaveLength(1);
    expect(json.request_id).toBe('socket-1');
  });

  it('removes the temp file when the client goes away mid-upload', async () => {
    const video = readFileSync(fixture('clip.mp4'));
    const { req, response } = startUpload(video.length);
    req.write(video.subarray(0, 4096));
    await until(() => t.tempFiles().length === 1, 'the upload to start spooling');
    req.destroy();
    await response;
    await until(() => t.tempFiles().length === 0, 'the temp file to be removed');
    await until(() => t.service.lifecycle.inflight() === 0, 'the request to end');
  });

  it('drops a queued request whose client went away: it never reaches the engine', async () => {
    held.rearm();
    const video = readFileSync(fixture('clip.mp4'));
    const holder = startUpload(video.length);
    holder.req.end(video);
    await until(() => held.entered() === 1, 'the first request to reach the engine');

    const abortedBefore = await aborts();
    const { req, response } = startUpload(video.length);
    req.end(video);
    await until(async () => (await gauge('haltingvt_queue_depth')) === 1, 'the second request to wait in the queue');
    req.destroy();
    await response;
    await until(async () => (await gauge('haltingvt_queue_depth')) === 0, 'the queue to drop it');
    await until(() => t.service.lifecycle.inflight() === 1, 'the request to be answered');
    expect(await aborts()).toBe(abortedBefore + 1); // one request that left, one ABORTED (its video's error is not counted again)

    held.open();
    const first = await holder.response;
    expect(first).toBeInstanceOf(http.IncomingMessage);
    expect((first as http.IncomingMessage).statusCode).toBe(200);
    (first as http.IncomingMessage).resume();
    expect(held.entered()).toBe(1);
    await until(() => t.tempFiles().length === 0, 'every temp file to be removed');
  });

  it('removes the temp file when the client goes away while its video is being processed', async () => {
    held.rearm();
    const video = readFileSync(fixture('clip.mp4'));
    const { req, response } = startUpload(video.length);
    req.end(video);
    await until(() => held.entered() === 1, 'the request to reach the engine');
    expect(t.tempFiles()).toHaveLength(1);
    req.destroy();
    await response;
    held.open(); // the engine now sees an aborted signal
    await until(() => t.tempFiles().length === 0, 'the temp file to be removed');
    await until(() => t.service.lifecycle.inflight() === 0, 'the request to end');
    // The service is still fine afterwards.
    const ok = await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('three.mp4', fixture('three.mp4'))]) });
    expect(ok.statusCode).toBe(200);
  });
});

describe('request timeout', () => {
  it('a client that stops sending mid-upload is cut off at REQUEST_TIMEOUT_MS and its temp file removed', async () => {
    // Long enough that the upload has surely begun to spool before the deadline on a loaded machine.
    const slow = makeApp(engine, { http: { requestTimeoutMs: 2000 } });
    try {
      await slow.app.listen({ host: '127.0.0.1', port: 0 });
      const url = `http://127.0.0.1:${(slow.app.server.address() as AddressInfo).port}/v1/classify`;
      const video = readFileSync(fixture('clip.mp4'));
      const req = http.request(url, { method: 'POST', headers: { 'content-type': 'video/mp4', 'content-length': String(video.length) } });
      const outcome = new Promise<number | string>((resolve) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? 'error'));
      });
      req.write(video.subarray(0, 4096));
      await until(() => slow.tempFiles().length === 1, 'the upload to start spooling');
      // Nothing more is sent: the server must give up on its own.
      expect(await outcome).toBe(408);
      await until(() => slow.tempFiles().length === 0, 'the temp file to be removed');
      await until(() => slow.service.lifecycle.inflight() === 0, 'the request to end');
      req.destroy();
    } finally {
      await slow.app.close();
    }
  });
});

describe('refused before fastify has a request', () => {
  it('a client that stalls in its headers gets 408 REQUEST_TIMEOUT in the error format, counted', async () => {
    const slow = makeApp(engine, { http: { requestTimeoutMs: 300 } });
    try {
      await slow.app.listen({ host: '127.0.0.1', port: 0 });
      const socket = net.connect((slow.app.server.address() as AddressInfo).port, '127.0.0.1');
      let raw = '';
      socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
      const ended = new Promise((resolve) => socket.on('close', resolve));
      socket.write('POST /v1/classify HTTP/1.1\r\nHost: x\r\n'); // and nothing more
      await ended;
      expect(raw.startsWith('HTTP/1.1 408 ')).toBe(true);
      expect(ErrorBody.parse(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).error).toMatchObject({ code: 'REQUEST_TIMEOUT', status: 408 });
      expect(await familyText(slow.registry, 'haltingvt_errors_total')).toContain('haltingvt_errors_total{code="REQUEST_TIMEOUT"} 1');
      expect(await familyText(slow.registry, 'haltingvt_requests_total')).toContain('status="408"} 1');
    } finally {
      await slow.app.close();
    }
  });
});

describe('while the listener closes', () => {
  it('a request arriving on an open connection gets 503 DRAINING in the error format with Retry-After', async () => {
    const g = gatedEngine(engine);
    const closing = makeApp(g.port);
    await closing.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = closing.app.server.address() as AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
    const ended = new Promise((resolve) => socket.on('close', resolve));
    const { payload, headers } = form([videoPart('clip.mp4', fixture('clip.mp4'))]);
    socket.write(`POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: ${headers['content-type']}\r\nContent-Length: ${payload.length}\r\n\r\n`);
    socket.write(payload);
    await until(() => g.entered() === 1, 'the request to reach the engine');
    const closed = closing.app.close(); // waits for the busy connection
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => closing.logs.some((l) => l.code === 'DRAINING'), 'the second request to be refused');
    g.open();
    await closed;
    await ended;
    const answers = raw.split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 503']);
    const refusal = answers[1] as string;
    expect(refusal.toLowerCase()).toContain('retry-after: 2\r\n');
    expect(refusal.toLowerCase()).toContain('connection: close\r\n');
    expect(ErrorBody.parse(JSON.parse(refusal.slice(refusal.indexOf('\r\n\r\n') + 4))).error.code).toBe('DRAINING');
  });
});
