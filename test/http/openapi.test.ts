/**
 * openapi.yaml is generated from the zod schemas; this file checks that the committed copy is not
 * stale, that it is a well-formed OpenAPI 3.1 document as far as JSON Schema 2020-12 goes, and
 * that real responses of every documented route (success and error) validate against it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { LightMyRequestResponse } from 'fastify';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import type { EnginePort } from '../../src/service/index.js';
import { openApiYaml } from '../../src/http/openapi.js';
import { fixture, form, gatedEngine, makeApp, openTinyEngine, ROOT, until, videoPart, type TestApp } from './helpers.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const committed = readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8');
const doc = parse(committed) as Json;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, 'openapi.json');

/** Every (path, method) the document lists; the tests below must visit each. */
const documented = new Set(Object.entries(doc.paths as Json).flatMap(([p, methods]) => Object.keys(methods as Json).map((m) => `${m.toUpperCase()} ${p}`)));
const visited = new Set<string>();

function deref(node: Json): Json {
  if (typeof node.$ref !== 'string') return node;
  let target: unknown = doc;
  for (const key of node.$ref.replace(/^#\//, '').split('/')) target = (target as Json)[key.replace(/~1/g, '/').replace(/~0/g, '~')];
  return target as Json;
}

/** Fails unless `res` is a documented response of `method specPath` and its body validates. */
function conforms(method: string, specPath: string, res: LightMyRequestResponse): void {
  const key = `${method} ${specPath}`;
  visited.add(key);
  const op = (doc.paths as Json)[specPath]?.[method.toLowerCase()] as Json | undefined;
  expect(op, `${key} is not in openapi.yaml`).toBeDefined();
  const response = op!.responses[String(res.statusCode)] as Json | undefined;
  expect(response, `${key} answered ${res.statusCode}, which openapi.yaml does not list`).toBeDefined();
  const spec = deref(response!);
  if (!spec.content) return void expect(res.body, `${key} ${res.statusCode} has a body openapi.yaml does not describe`).toBe('');
  const type = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  const media = (spec.content as Json | undefined)?.[type] as Json | undefined;
  expect(media, `${key} ${res.statusCode} answered ${type}, which openapi.yaml does not list`).toBeDefined();
  for (const header of Object.keys((spec.headers as Json | undefined) ?? {})) {
    expect(res.headers[header.toLowerCase()], `${key} ${res.statusCode} lacks the ${header} header`).toBeDefined();
  }
  const schema = media!.schema as Json;
  // NDJSON: the schema is each line's.
  const bodies: unknown[] = type === 'application/json' ? [res.json()] : type === 'application/x-ndjson' ? res.body.trim().split('\n').map((l) => JSON.parse(l) as unknown) : [res.body];
  const validate = ajv.compile(typeof schema.$ref === 'string' ? { $ref: `openapi.json${schema.$ref}` } : schema);
  for (const body of bodies) {
    const ok = validate(body);
    expect(ok, `${key} ${res.statusCode}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`).toBe(true);
  }
}

let engine: Engine;
let t: TestApp;
let guarded: TestApp;

beforeAll(async () => {
  engine = await openTinyEngine();
  t = makeApp(engine, { service: { maxBatchItems: 2 } });
  guarded = makeApp(engine, { service: { authToken: 'a-long-enough-test-token' } });
});
afterAll(async () => {
  await t?.app.close();
  await guarded?.app.close();
  await engine?.close();
});

describe('openapi.yaml', () => {
  it('is what `npm run openapi` generates from the zod schemas (not stale)', () => {
    expect(committed).toBe(openApiYaml());
  });

  it('is OpenAPI 3.1 and every component schema compiles as JSON Schema 2020-12', () => {
    expect(doc.openapi).toBe('3.1.0');
    for (const name of Object.keys(doc.components.schemas as Json)) expect(() => ajv.getSchema(`openapi.json#/components/schemas/${name}`), name).not.toThrow();
  });

  it('documents every error code of the catalogue', () => {
    const codes = (doc.components.schemas.Error as Json).properties.error.properties.code.enum as string[];
    for (const [status, response] of Object.entries(doc.components.responses as Json)) {
      expect(String((response as Json).description)).toContain(`Error ${status.slice(1)}`);
    }
    expect(codes).toContain('QUEUE_FULL');
    expect(codes.length).toBeGreaterThan(20);
  });
});

describe('responses conform to openapi.yaml', () => {
  const clip = () => form([videoPart('clip.mp4', fixture('clip.mp4'))]);

  it('POST /v1/classify: 200 multipart and raw, 400, 401, 413, 415, 422', async () => {
    const post = (opts: Json) => t.app.inject({ method: 'POST', url: '/v1/classify', ...opts });
    conforms('POST', '/v1/classify', await post(clip()));
    conforms('POST', '/v1/classify', await post({ url: '/v1/classify?top_k=1', headers: { 'content-type': 'video/mp4' }, payload: readFileSync(fixture('three.mp4')) }));
    const explained = await post({ url: '/v1/classify?explain=true', headers: { 'content-type': 'video/mp4' }, payload: readFileSync(fixture('clip.mp4')) });
    expect(explained.json()).toHaveProperty('explain.stop_map');
    conforms('POST', '/v1/classify', explained);
    conforms('POST', '/v1/classify', await post(form([videoPart('c.mp4', fixture('clip.mp4')), { name: 'top_k', data: '0' }])));
    conforms('POST', '/v1/classify', await guarded.app.inject({ method: 'POST', url: '/v1/classify', ...clip() }));
    conforms('POST', '/v1/classify', await post({ headers: { 'content-type': 'video/mp4', 'content-length': String(1 << 30) }, payload: 'x' }));
    conforms('POST', '/v1/classify', await post({ headers: { 'content-type': 'application/json' }, payload: '{}' }));
    conforms('POST', '/v1/classify', await post(form([videoPart('a.m4a', fixture('audio.m4a'))])));
  });

  it('POST /v1/classify: 429 and 503 with Retry-After, 500', async () => {
    const { port: held, entered, open } = gatedEngine(engine);
    const busy = makeApp(held, { service: { concurrency: 1, queueSize: 0 } });
    const first = busy.app.inject({ method: 'POST', url: '/v1/classify', ...clip() });
    await until(() => entered() === 1, 'the first request to reach the engine');
    conforms('POST', '/v1/classify', await busy.app.inject({ method: 'POST', url: '/v1/classify', ...clip() }));
    open();
    await first;
    await busy.app.close();

    const starting = makeApp(new Promise<EnginePort>(() => {}));
    conforms('POST', '/v1/classify', await starting.app.inject({ method: 'POST', url: '/v1/classify', ...clip() }));
    conforms('GET', '/v1/models', await starting.app.inject({ method: 'GET', url: '/v1/models' }));
    conforms('GET', '/readyz', await starting.app.inject({ method: 'GET', url: '/readyz' }));
    conforms('GET', '/v2/health/ready', await starting.app.inject({ method: 'GET', url: '/v2/health/ready' }));
    await starting.app.close();

    const broken = makeApp({ ...held, classify: async () => Promise.reject(new Error('boom')) });
    conforms('POST', '/v1/classify', await broken.app.inject({ method: 'POST', url: '/v1/classify', ...clip() }));
    await broken.app.close();
  });

  it('POST /v1/classify:batch: 200 with mixed items, 400, 413, 415', async () => {
    const post = (opts: Json) => t.app.inject({ method: 'POST', url: '/v1/classify:batch', ...opts });
    conforms('POST', '/v1/classify:batch', await post(form([videoPart('a.mp4', fixture('three.mp4'), 'files'), videoPart('b.mp4', fixture('garbage.mp4'), 'files')])));
    conforms('POST', '/v1/classify:batch', await post(form([{ name: 'top_k', data: '1' }])));
    conforms('POST', '/v1/classify:batch', await post(form([1, 2, 3].map((i) => videoPart(`${i}.mp4`, fixture('one.mp4'), 'files')))));
    conforms('POST', '/v1/classify:batch', await post({ headers: { 'content-type': 'video/mp4' }, payload: 'x' }));
  });

  it('pulled streams: POST (JSON) 201, 400, 403; GET list and one; events; DELETE 204 and 404', async () => {
    const pulling = makeApp(engine, { service: { sources: { schemes: ['http'], allow: ['127.0.0.1/32'] } } });
    const post = (payload: Json) => pulling.app.inject({ method: 'POST', url: '/v1/streams', headers: { 'content-type': 'application/json' }, payload });
    // A source nobody serves: the stream exists, connecting and reconnecting.
    const created = await post({ source: { url: 'http://127.0.0.1:9/none.ts' }, give_up_s: 60 });
    expect(created.statusCode).toBe(201);
    conforms('POST', '/v1/streams', created);
    conforms('POST', '/v1/streams', await post({ source: { url: 'http://127.0.0.2/x.ts' } }));
    conforms('POST', '/v1/streams', await post({ source: {} }));
    const id = (created.json() as { id: string }).id;
    conforms('GET', '/v1/streams', await pulling.app.inject({ method: 'GET', url: '/v1/streams' }));
    conforms('GET', '/v1/streams/{id}', await pulling.app.inject({ method: 'GET', url: `/v1/streams/${id}` }));
    conforms('GET', '/v1/streams/{id}', await pulling.app.inject({ method: 'GET', url: '/v1/streams/0123456789abcdef' }));
    conforms('DELETE', '/v1/streams/{id}', await pulling.app.inject({ method: 'DELETE', url: `/v1/streams/${id}` }));
    conforms('DELETE', '/v1/streams/{id}', await pulling.app.inject({ method: 'DELETE', url: `/v1/streams/${id}` }));
    const other = (await post({ source: { url: 'http://127.0.0.1:9/none.ts' } })).json() as { id: string };
    await pulling.service.streams.get(other.id).stop('deleted');
    const events = await pulling.app.inject({ method: 'GET', url: `/v1/streams/${other.id}/events`, headers: { 'last-event-id': '0' } });
    expect(events.body).toMatch(/event: ended/);
    conforms('GET', '/v1/streams/{id}/events', events);
    await pulling.app.close();
  });

  it('GET routes: models, health, metrics, openapi.yaml, docs', async () => {
    const get = (url: string) => t.app.inject({ method: 'GET', url });
    conforms('GET', '/v1/models', await get('/v1/models'));
    conforms('GET', '/v1/models/{name}', await get('/v1/models/tiny'));
    conforms('GET', '/v1/models/{name}', await get('/v1/models/other'));
    for (const url of ['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready', '/metrics', '/openapi.yaml', '/docs', '/demo', '/live']) conforms('GET', url, await get(url));
  });

  it('OIP /v2: metadata, readiness, infer in JSON and binary, errors in the OIP shape', async () => {
    const get = (url: string) => t.app.inject({ method: 'GET', url });
    conforms('GET', '/v2', await get('/v2'));
    for (const [spec, base] of [
      ['/v2/models/{name}', '/v2/models/tiny'],
      ['/v2/models/{name}/versions/{version}', '/v2/models/tiny/versions/0.0.1'],
    ] as const) {
      conforms('GET', spec, await get(base));
      conforms('GET', spec, await get(base.replace('tiny', 'other')));
      conforms('GET', `${spec}/ready`, await get(`${base}/ready`));
      conforms('GET', `${spec}/ready`, await get(`${base.replace('tiny', 'other')}/ready`));
      const video = readFileSync(fixture('clip.mp4'));
      const raw = Buffer.concat([Buffer.from(Uint32Array.of(video.length).buffer), video]);
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'VIDEO', shape: [1, 1], datatype: 'BYTES', parameters: { binary_data_size: raw.length } }], outputs: [{ name: 'LABELS' }, { name: 'TOKENS', parameters: { binary_data: true } }] }));
      const infer = (payload: Json | Buffer, headers: Json = {}) => t.app.inject({ method: 'POST', url: `${base}/infer`, payload, headers });
      conforms('POST', `${spec}/infer`, await infer(Buffer.concat([header, raw]), { 'inference-header-content-length': String(header.length) }));
      conforms('POST', `${spec}/infer`, await infer({ inputs: [{ name: 'VIDEO', shape: [1], datatype: 'BYTES', data: ['not a video'] }] }));
      conforms('POST', `${spec}/infer`, await infer({ inputs: [{ name: 'VIDEO', shape: [1], datatype: 'FP32', data: [1] }] }));
      const secured = await guarded.app.inject({ method: 'POST', url: `${base}/infer`, payload: { inputs: [] } });
      conforms('POST', `${spec}/infer`, secured);
    }
  });

  it('POST and PUT /v1/streams: 200 with NDJSON events, 400, 415, 429', async () => {
    const clip = readFileSync(fixture('live.mpegts'));
    const headers = { 'content-type': 'video/mp2t' };
    const ok = await t.app.inject({ method: 'POST', url: '/v1/streams?window_s=2', headers, payload: clip });
    expect(ok.body.trim().split('\n').length).toBe(7); // started, 5 windows, ended
    conforms('POST', '/v1/streams', ok);
    conforms('PUT', '/v1/streams', await t.app.inject({ method: 'PUT', url: '/v1/streams?window_s=3&stride_s=3', headers, payload: clip }));
    conforms('POST', '/v1/streams', await t.app.inject({ method: 'POST', url: '/v1/streams?window_s=0.1', headers, payload: clip }));
    conforms('PUT', '/v1/streams', await t.app.inject({ method: 'PUT', url: '/v1/streams', headers: { 'content-type': 'text/plain' }, payload: 'x' }));
    const none = makeApp(engine, { service: { streams: { max: 0, idleTimeoutMs: 1000, maxDurationS: 10 } } });
    try {
      conforms('POST', '/v1/streams', await none.app.inject({ method: 'POST', url: '/v1/streams', headers, payload: clip }));
    } finally {
      await none.app.close();
    }
  });

  it('visited every documented route', () => {
    expect([...documented].filter((k) => !visited.has(k))).toEqual([]);
  });
});
