/**
 * Limits, backpressure, auth, readiness and the generic 500: each answer's status, code and
 * headers, and that no temp file survives any of them.
 */
import { readFileSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Engine } from '../../src/engine/index.js';
import type { EnginePort } from '../../src/service/index.js';
import { ClassifyResponse, ErrorBody, Readiness } from '../../src/http/schemas.js';
import { engineFromConfig, fixture, form, gatedEngine, longSmallVideo, makeApp, openTinyEngine, TINY_MODEL, until, videoPart, type TestApp } from './helpers.js';
import { familyText } from '../helpers/metrics.js';

let engine: Engine;
const apps: TestApp[] = [];
const app = (...args: Parameters<typeof makeApp>): TestApp => {
  const made = makeApp(...args);
  apps.push(made);
  return made;
};

beforeAll(async () => {
  engine = await openTinyEngine();
});
afterAll(async () => {
  for (const a of apps) await a.app.close();
  await engine?.close();
});

function errorOf(res: { statusCode: number; json: () => unknown }): ErrorBody['error'] {
  return ErrorBody.parse(res.json()).error;
}

const clipForm = () => form([videoPart('clip.mp4', fixture('clip.mp4'))]);

const gated = () => gatedEngine(engine);

describe('upload size (413 UPLOAD_TOO_LARGE)', () => {
  const size = statSync(fixture('clip.mp4')).size;

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const t = app(engine, { service: { maxUploadBytes: 1000 } });
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', headers: { 'content-type': 'video/mp4' }, payload: readFileSync(fixture('clip.mp4')) });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).code).toBe('UPLOAD_TOO_LARGE');
    expect(res.headers.connection).toBe('close');
    expect(t.tempFiles()).toEqual([]);
  });

  it('stops a streamed raw body with no Content-Length at the limit', async () => {
    const t = app(engine, { service: { maxUploadBytes: size - 1 } });
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/classify',
      headers: { 'content-type': 'video/mp4' },
      payload: Readable.from([readFileSync(fixture('clip.mp4'))]),
    });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).code).toBe('UPLOAD_TOO_LARGE');
    expect(t.tempFiles()).toEqual([]);
  });

  it('stops a multipart file at the limit even when the whole body passes the early check', async () => {
    const t = app(engine, { service: { maxUploadBytes: size - 1 } });
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).code).toBe('UPLOAD_TOO_LARGE');
    expect(t.tempFiles()).toEqual([]);
  });

  it('accepts a file of exactly the limit', async () => {
    const t = app(engine, { service: { maxUploadBytes: size } });
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(res.statusCode).toBe(200);
  });
});

describe('duration, pixel and decode-time limits (the engine as server.ts builds it from the environment)', () => {
  const engines: Engine[] = [];
  const limited = async (env: Record<string, string>): Promise<TestApp> => {
    const config = loadConfig({ MODEL_DIR: TINY_MODEL, EXECUTION_PROVIDERS: 'cpu', INTRA_OP_THREADS: '1', ...env });
    const e = await engineFromConfig(config, pino({ level: 'silent' }));
    engines.push(e);
    return app(e);
  };
  afterAll(async () => {
    for (const e of engines) await e.close();
  });

  it('422 VIDEO_TOO_LONG past MAX_DURATION_S, 422 VIDEO_TOO_LARGE past MAX_PIXELS; videos inside both pass', async () => {
    const t = await limited({ MAX_DURATION_S: '2.5', MAX_PIXELS: String(320 * 240 - 1) });
    const long = await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('long.mp4', longSmallVideo())]) });
    expect(long.statusCode).toBe(422);
    expect(errorOf(long).code).toBe('VIDEO_TOO_LONG');
    const big = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(big.statusCode).toBe(422);
    expect(errorOf(big)).toMatchObject({ code: 'VIDEO_TOO_LARGE', details: { width: 320, height: 240 } });
    const small = await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('odd.mp4', fixture('odd.mp4'))]) });
    expect(small.statusCode).toBe(200);
    expect(t.tempFiles()).toEqual([]);
  });

  it('504 DECODE_TIMEOUT when decoding takes longer than DECODE_TIMEOUT_MS', async () => {
    const t = await limited({ DECODE_TIMEOUT_MS: '1' });
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(res.statusCode).toBe(504);
    expect(errorOf(res).code).toBe('DECODE_TIMEOUT');
    expect(t.tempFiles()).toEqual([]);
  });
});

describe('queue', () => {
  it('429 QUEUE_FULL with Retry-After when every slot and queue place is taken; the held request still succeeds', async () => {
    const g = gated();
    const t = app(g.port, { service: { concurrency: 1, queueSize: 0 }, http: { retryAfterS: 7 } });
    const first = t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    await until(() => g.entered() === 1, 'the first request to reach the engine');
    const second = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(second.statusCode).toBe(429);
    expect(second.headers['retry-after']).toBe('7');
    expect(errorOf(second).code).toBe('QUEUE_FULL');
    g.open();
    expect((await first).statusCode).toBe(200);
    expect(t.tempFiles()).toEqual([]);
  });

  it('queues up to QUEUE_SIZE behind the running request and reports the wait as queue time', async () => {
    const g = gated();
    const t = app(g.port, { service: { concurrency: 1, queueSize: 1 } });
    const first = t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    await until(() => g.entered() === 1, 'the first request to reach the engine');
    const second = t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    await until(async () => (await familyText(t.registry, 'haltingvt_queue_depth')).includes('haltingvt_queue_depth 1'), 'the second request to queue');
    const third = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(third.statusCode).toBe(429);
    g.open();
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1.statusCode).toBe(200);
    expect(r2.statusCode).toBe(200);
    const queued = ClassifyResponse.parse(r2.json());
    expect(queued.timings_s.queue).toBeGreaterThan(0);
  });
});

describe('readiness and draining (503)', () => {
  it('503 NOT_READY while the engine loads, then ready', async () => {
    let resolve!: (e: EnginePort) => void;
    const t = app(new Promise<EnginePort>((r) => (resolve = r)));
    const starting = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(starting.statusCode).toBe(503);
    expect(starting.headers['retry-after']).toBeDefined();
    expect(errorOf(starting).code).toBe('NOT_READY');
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(Readiness.parse(ready.json()).status).toBe('starting');
    expect((await t.app.inject({ method: 'GET', url: '/v2/health/ready' })).statusCode).toBe(503);
    expect((await t.app.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(503);
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v2/health/live' })).json()).toEqual({ live: true });
    resolve(engine);
    await until(() => t.service.lifecycle.status() === 'ready', 'ready');
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
    expect((await t.app.inject({ method: 'GET', url: '/v2/health/ready' })).json()).toEqual({ ready: true });
    expect((await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() })).statusCode).toBe(200);
  });

  it('reports a failed engine as not ready', async () => {
    const t = app(Promise.reject(new Error('no model')));
    await until(() => t.service.lifecycle.status() === 'failed', 'failed');
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'failed' });
    expect(errorOf(await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() })).code).toBe('NOT_READY');
  });

  it('draining: readiness 503, new work 503 DRAINING, the request in flight finishes (closing its connection), then drain() resolves', async () => {
    const g = gated();
    const t = app(g.port);
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).headers.connection).not.toBe('close');
    const inflight = t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    await until(() => g.entered() === 1, 'the request to reach the engine');
    let drained = false;
    const drain = t.service.lifecycle.drain().then(() => (drained = true));
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'draining' });
    const refused = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(errorOf(refused).code).toBe('DRAINING');
    expect(drained).toBe(false);
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).headers.connection).toBe('close');
    g.open();
    const finished = await inflight;
    expect(finished.statusCode).toBe(200);
    // Its client reconnects, through its load balancer, to an instance that is not going away.
    expect(finished.headers.connection).toBe('close');
    await drain;
    expect(drained).toBe(true);
    // Model metadata stays readable while draining.
    expect((await t.app.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(200);
  });
});

describe('auth (401 UNAUTHORIZED)', () => {
  const token = 'a-long-enough-test-token';

  it('guards the inference routes only', async () => {
    const t = app(engine, { service: { authToken: token } });
    const none = await t.app.inject({ method: 'POST', url: '/v1/classify', ...clipForm() });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(errorOf(none).code).toBe('UNAUTHORIZED');
    const f = clipForm();
    const wrong = await t.app.inject({ method: 'POST', url: '/v1/classify', payload: f.payload, headers: { ...f.headers, authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    const batch = await t.app.inject({ method: 'POST', url: '/v1/classify:batch', ...clipForm() });
    expect(batch.statusCode).toBe(401);
    const right = await t.app.inject({ method: 'POST', url: '/v1/classify', payload: f.payload, headers: { ...f.headers, authorization: `Bearer ${token}` } });
    expect(right.statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    expect(t.tempFiles()).toEqual([]);
  });
});

describe('500 INTERNAL', () => {
  it('answers a generic message and logs the whole error under the request id', async () => {
    const broken: EnginePort = { ...engine, manifest: engine.manifest, info: engine.info, validateKnobs: (k) => engine.validateKnobs(k), stats: () => engine.stats(), classify: async () => {
      throw new Error('secret internals at /srv/model');
    } };
    const t = app(broken);
    const f = clipForm();
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', payload: f.payload, headers: { ...f.headers, 'x-request-id': 'req-500' } });
    expect(res.statusCode).toBe(500);
    const err = errorOf(res);
    expect(err).toMatchObject({ code: 'INTERNAL', message: 'internal error', request_id: 'req-500' });
    expect(JSON.stringify(res.json())).not.toContain('secret');
    const logged = t.logs.find((l) => l.request_id === 'req-500' && l.level >= 50);
    expect(logged?.err?.message).toContain('secret internals');
    expect(logged?.err?.stack).toContain('limits.test.ts');
    expect(t.tempFiles()).toEqual([]);
  });
});
