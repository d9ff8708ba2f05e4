/**
 * The Open Inference Protocol over HTTP through inject(): metadata, readiness, inference with the
 * binary-data and classification extensions, per-video errors in a batch, knobs in parameters with
 * /v1's ranges and messages, and the error shape. The same routes are driven by tritonclient in
 * test/oip (make test).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { V2Error, V2InferResponse, V2ModelMetadata, V2ServerMetadata } from '../../src/http/oip-schemas.js';
import { ClassifyResponse, ErrorBody } from '../../src/http/schemas.js';
import { fixture, form, makeApp, openTinyEngine, videoPart, type TestApp } from './helpers.js';

let engine: Engine;
let t: TestApp;
const clip = (): Buffer => readFileSync(fixture('clip.mp4'));

beforeAll(async () => {
  engine = await openTinyEngine();
  t = makeApp(engine, { service: { maxUploadBytes: 2 * clip().length, maxBatchItems: 4 } });
});
afterAll(async () => {
  await t?.app.close();
  await engine?.close();
});

/** BYTES elements, length-prefixed. */
function bytesTensor(elements: Buffer[]): Buffer {
  return Buffer.concat(elements.flatMap((e) => [Buffer.from(Uint32Array.of(e.length).buffer), e]));
}

/** A tritonclient-style binary request: no Content-Type, JSON header, then the VIDEO bytes. */
function binaryInfer(videos: Buffer[], extra: { parameters?: Record<string, unknown>; outputs?: unknown[]; id?: string } = {}, url = '/v2/models/tiny/infer') {
  const raw = bytesTensor(videos);
  const header = Buffer.from(
    JSON.stringify({
      ...(extra.id ? { id: extra.id } : {}),
      ...(extra.parameters ? { parameters: extra.parameters } : {}),
      inputs: [{ name: 'VIDEO', shape: [videos.length, 1], datatype: 'BYTES', parameters: { binary_data_size: raw.length } }],
      ...(extra.outputs ? { outputs: extra.outputs } : {}),
    }),
  );
  return t.app.inject({ method: 'POST', url, headers: { 'inference-header-content-length': String(header.length) }, payload: Buffer.concat([header, raw]) });
}

/** Splits a binary response into its JSON header and each binary output. */
function readBinary(res: { rawPayload: Buffer; headers: Record<string, unknown> }): { json: V2InferResponse; blobs: Map<string, Buffer> } {
  const length = Number(res.headers['inference-header-content-length']);
  const json = V2InferResponse.parse(JSON.parse(res.rawPayload.subarray(0, length).toString()));
  const blobs = new Map<string, Buffer>();
  let at = length;
  for (const o of json.outputs) {
    if (!o.parameters) continue;
    blobs.set(o.name, res.rawPayload.subarray(at, at + o.parameters.binary_data_size));
    at += o.parameters.binary_data_size;
  }
  expect(at).toBe(res.rawPayload.length);
  return { json, blobs };
}

const output = (json: V2InferResponse, name: string) => json.outputs.find((o) => o.name === name)!;

describe('OIP metadata and readiness', () => {
  it('describes the server and the model', async () => {
    const server = V2ServerMetadata.parse((await t.app.inject('/v2')).json());
    expect(server.extensions).toEqual(expect.arrayContaining(['binary_tensor_data', 'classification']));
    const model = V2ModelMetadata.parse((await t.app.inject('/v2/models/tiny')).json());
    expect(model.inputs).toEqual([{ name: 'VIDEO', datatype: 'BYTES', shape: [-1, 1] }]);
    expect(model.outputs.map((o) => o.name)).toEqual(['LABELS', 'PROBABILITIES', 'GFLOPS', 'TOKENS', 'ERROR', 'EXPLANATION']);
    expect(output(model as never, 'PROBABILITIES').shape).toEqual([-1, 5]);
    expect((await t.app.inject('/v2/models/tiny/versions/0.0.1')).statusCode).toBe(200);
    expect((await t.app.inject('/v2/models/tiny/ready')).json()).toEqual({ name: 'tiny', ready: true });
  });

  it('answers an unknown model or version with 404 and {"error"}', async () => {
    for (const url of ['/v2/models/nope', '/v2/models/tiny/versions/9/ready', '/v2/models/nope/infer', '/v2/repository/index']) {
      const res = url.endsWith('infer') ? await binaryInfer([clip()], {}, url) : await t.app.inject(url);
      expect(res.statusCode, url).toBe(404);
      const body = V2Error.parse(res.json());
      expect(body.code).toBe('NOT_FOUND');
      expect(body.error).toMatch(/tiny|version|no route/);
    }
  });
});

describe('POST /v2/models/{name}/infer', () => {
  it('classifies one video like /v1/classify with the same knobs, binary outputs on request', async () => {
    const knobs = { keep_ratio: 0.7, halt_threshold: 0.9, top_k: 3 };
    const res = await binaryInfer([clip()], {
      id: 'req-1',
      parameters: knobs,
      outputs: [{ name: 'LABELS' }, { name: 'PROBABILITIES', parameters: { binary_data: true } }, { name: 'TOKENS', parameters: { binary_data: true } }, { name: 'GFLOPS' }],
    });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
    const { json, blobs } = readBinary(res);
    expect(json.id).toBe('req-1');
    expect(json.parameters).toMatchObject({ ...knobs, succeeded: 1, failed: 0 });
    expect(json.outputs.map((o) => o.name)).toEqual(['LABELS', 'PROBABILITIES', 'TOKENS', 'GFLOPS']);

    const v1 = ClassifyResponse.parse(
      (await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('clip.mp4', fixture('clip.mp4')), ...Object.entries(knobs).map(([name, v]) => ({ name, data: String(v) }))]) })).json(),
    );
    expect(output(json, 'LABELS')).toMatchObject({ datatype: 'BYTES', shape: [1, 3] });
    expect(output(json, 'LABELS').data).toEqual(v1.top.map((p) => `${p.probability.toFixed(6)}:${p.index}:${p.label}`));
    const probabilities = new Float32Array(new Uint8Array(blobs.get('PROBABILITIES')!).buffer);
    expect(probabilities).toHaveLength(5);
    for (const p of v1.top) expect(probabilities[p.index]).toBeCloseTo(p.probability, 5);
    const tokens = Array.from(new BigInt64Array(new Uint8Array(blobs.get('TOKENS')!).buffer), Number);
    expect(tokens).toEqual(v1.tokens.per_layer);
    expect(output(json, 'GFLOPS').data![0]).toBeCloseTo(v1.gflops, 5);
  });

  it('answers each video of a batch on its own: a bad one fails alone, in ERROR', async () => {
    const res = await binaryInfer([clip(), readFileSync(fixture('garbage.mp4')), readFileSync(fixture('three.mp4'))], { parameters: { binary_data_output: false } });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
    const json = V2InferResponse.parse(res.json());
    expect(json.parameters).toMatchObject({ succeeded: 2, failed: 1 });
    const errors = output(json, 'ERROR').data as string[];
    expect(errors[0]).toBe('');
    expect(errors[1]).toMatch(/^VIDEO_UNDECODABLE: /);
    expect(errors[1]).not.toContain(t.uploadRoot);
    expect(errors[1]).toContain('video 2 of 3'); // its place in the request: the client gave it no name
    expect(errors[1]).not.toMatch(/[0-9a-f]{24}/);
    expect(errors[2]).toBe('');
    const labels = output(json, 'LABELS');
    expect(labels.shape).toEqual([3, 5]);
    expect((labels.data as string[]).slice(5, 10)).toEqual(['', '', '', '', '']);
    expect((labels.data as string[])[0]).toMatch(/^0\.\d{6}:\d:/);
    expect(t.tempFiles()).toEqual([]);
  });

  it('answers the classification extension with k "score:index:label" strings', async () => {
    const res = await binaryInfer([clip()], { outputs: [{ name: 'PROBABILITIES', parameters: { classification: 2, binary_data: false } }] });
    const json = V2InferResponse.parse(res.json());
    expect(json.outputs).toHaveLength(1);
    expect(json.outputs[0]).toMatchObject({ name: 'PROBABILITIES', datatype: 'BYTES', shape: [1, 2] });
    const [a, b] = (json.outputs[0]!.data as string[]).map((s) => Number(s.split(':')[0]));
    expect(a).toBeGreaterThanOrEqual(b!);
  });

  it('refuses a bad knob with the status and message /v1 gives', async () => {
    const v2 = await binaryInfer([clip()], { parameters: { keep_ratio: 7 } });
    const v1 = await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('clip.mp4', fixture('clip.mp4')), { name: 'keep_ratio', data: '7' }]) });
    expect(v2.statusCode).toBe(400);
    expect(v2.statusCode).toBe(v1.statusCode);
    expect(V2Error.parse(v2.json())).toEqual({ code: 'BAD_KNOB', error: ErrorBody.parse(v1.json()).error.message });
    const unknown = await binaryInfer([clip()], { parameters: { keep_ration: 0.5 } });
    expect(V2Error.parse(unknown.json()).code).toBe('BAD_REQUEST');
  });

  it('reads a number sent as text as that number (clients that send every scalar as a string), and refuses text that is none', async () => {
    const asText = await binaryInfer([clip()], { parameters: { top_k: '2', keep_ratio: '0.4', binary_data_output: false } });
    expect(asText.statusCode, asText.body).toBe(200);
    expect(V2InferResponse.parse(asText.json()).parameters).toMatchObject({ top_k: 2, keep_ratio: 0.4 });
    const notANumber = await binaryInfer([clip()], { parameters: { keep_ratio: 'half' } });
    expect(V2Error.parse(notANumber.json())).toMatchObject({ code: 'BAD_KNOB' });
  });

  it('answers a single undecodable video with its own error and status', async () => {
    const res = await binaryInfer([readFileSync(fixture('garbage.mp4'))]);
    expect(res.statusCode).toBe(422);
    expect(V2Error.parse(res.json()).code).toBe('VIDEO_UNDECODABLE');
  });

  it('refuses malformed requests, too many videos and bodies over the limit', async () => {
    const cases: Array<[string, Awaited<ReturnType<typeof binaryInfer>>, number, string]> = [
      ['not JSON', await t.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: 'nope' }), 400, 'BAD_REQUEST'],
      ['wrong input', await t.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: { inputs: [{ name: 'X', shape: [1], datatype: 'BYTES', data: ['a'] }] } }), 400, 'BAD_REQUEST'],
      ['too many', await binaryInfer([clip(), clip(), clip(), clip(), clip()].map((b) => b.subarray(0, 10))), 413, 'BATCH_TOO_LARGE'],
      ['too large', await binaryInfer([clip(), clip(), clip()]), 413, 'UPLOAD_TOO_LARGE'],
    ];
    for (const [what, res, status, code] of cases) {
      expect(res.statusCode, what).toBe(status);
      expect(V2Error.parse(res.json()).code, what).toBe(code);
    }
  });
  it('answers each framing error of the body with 400 BAD_REQUEST and a message naming it', async () => {
    const video = Buffer.from('not a video, never decoded');
    const bytesInput = (size: number, shape = [1, 1], datatype = 'BYTES') => ({ name: 'VIDEO', shape, datatype, parameters: { binary_data_size: size } });
    /** A JSON header of `inputs`, then `binary`; the header length is the header's own unless given. */
    const framed = (inputs: unknown[], binary: Buffer, headerLength?: string) => {
      const header = Buffer.from(JSON.stringify({ inputs }));
      return t.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', headers: { 'inference-header-content-length': headerLength ?? String(header.length) }, payload: Buffer.concat([header, binary]) });
    };
    const raw = bytesTensor([video]);
    const cases: Array<[string, Awaited<ReturnType<typeof framed>>, RegExp]> = [
      ['header length not an integer', await framed([bytesInput(raw.length)], raw, '12.5'), /^Inference-Header-Content-Length "12\.5" must be an integer between 0 and the body length/],
      ['header length past the body', await framed([bytesInput(raw.length)], raw, '1000000'), /^Inference-Header-Content-Length "1000000" must be an integer between 0 and the body length \(\d+\)$/],
      ['binary_data_size past the body', await framed([bytesInput(raw.length + 1)], raw), new RegExp(`^input VIDEO: binary_data_size ${raw.length + 1} goes past the end of the body$`)],
      ['bytes after the last input', await framed([bytesInput(raw.length)], Buffer.concat([raw, Buffer.from('xyz')])), /^the body has 3 bytes that no input's binary_data_size accounts for$/],
      ['length prefix cut off', await framed([bytesInput(raw.length + 2)], Buffer.concat([raw, Buffer.from([1, 0])])), new RegExp(`^input VIDEO: a BYTES element's 4-byte length is cut off at byte ${raw.length}$`)],
      ['element longer than the rest', await framed([bytesInput(7)], Buffer.from([100, 0, 0, 0, 1, 2, 3])), /^input VIDEO: a BYTES element declares 100 bytes but only 3 remain$/],
      ['shape and elements disagree', await framed([bytesInput(raw.length, [2, 1])], raw), /^input VIDEO has shape \[2, 1\] but carries 1 elements$/],
      ['not BYTES', await framed([bytesInput(raw.length, [1, 1], 'FP32')], raw), /^input VIDEO must be BYTES \(one encoded video per element\), got FP32$/],
      [
        'JSON elements not strings',
        await t.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: { inputs: [{ name: 'VIDEO', shape: [2, 1], datatype: 'BYTES', data: ['a', 1] }] } }),
        /^input VIDEO: a BYTES element must be a string in JSON/,
      ],
    ];
    for (const [what, res, message] of cases) {
      expect(res.statusCode, what).toBe(400);
      const body = V2Error.parse(res.json());
      expect(body.code, what).toBe('BAD_REQUEST');
      expect(body.error, what).toMatch(message);
    }
  });
});

describe('OIP with AUTH_TOKEN', () => {
  it('needs the bearer token for inference, not for metadata', async () => {
    const secured = makeApp(engine, { service: { authToken: 'a-token-of-16-chars-or-more' } });
    try {
      expect((await secured.app.inject('/v2/models/tiny')).statusCode).toBe(200);
      const res = await secured.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: { inputs: [] } });
      expect(res.statusCode).toBe(401);
      expect(V2Error.parse(res.json()).code).toBe('UNAUTHORIZED');
    } finally {
      await secured.app.close();
    }
  });
});
