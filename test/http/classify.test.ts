import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ClassifyResponse, ErrorBody } from '../../src/http/schemas.js';
import { DEFAULT_HTTP, fixture, form, makeApp, useTinyApp, videoPart } from './helpers.js';

const t = useTinyApp();

const LABELS = ['left', 'right', 'up', 'down', 'still'];

/** One fixture video as a raw request body. */
const postRaw = (url: string, video: string, contentType: string) =>
  t.app.inject({ method: 'POST', url, headers: { 'content-type': contentType }, payload: readFileSync(fixture(video)) });

function expectError(res: { statusCode: number; json: () => unknown; headers: Record<string, unknown> }, status: number, code: string): ErrorBody['error'] {
  expect(res.statusCode).toBe(status);
  const body = ErrorBody.parse(res.json());
  expect(body.error.code).toBe(code);
  expect(body.error.status).toBe(status);
  expect(body.error.request_id).toBe(res.headers['x-request-id']);
  return body.error;
}

describe('POST /v1/classify, multipart', () => {
  it('takes knobs from the query string too, form fields winning', async () => {
    const { payload, headers } = form([videoPart('clip.mp4', fixture('clip.mp4')), { name: 'top_k', data: '2' }]);
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify?top_k=4&keep_ratio=0.3', payload, headers });
    expect(res.statusCode).toBe(200);
    expect(ClassifyResponse.parse(res.json()).knobs).toMatchObject({ top_k: 2, keep_ratio: 0.3 });
  });

  it('classifies a video and reports tokens, GFLOPs, knobs and timings', async () => {
    const { payload, headers } = form([videoPart('clip.mp4', fixture('clip.mp4')), { name: 'top_k', data: '3' }]);
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', payload, headers });
    expect(res.statusCode).toBe(200);
    const body = ClassifyResponse.parse(res.json());
    expect(body.model).toEqual({ name: 'tiny', version: '0.0.1' });
    expect(body.filename).toBe('clip.mp4');
    expect(body.request_id).toBe(res.headers['x-request-id']);
    expect(body.top).toHaveLength(3);
    for (const p of body.top) expect(LABELS).toContain(p.label);
    expect(body.top[0]!.probability).toBeGreaterThanOrEqual(body.top[2]!.probability);
    expect(body.knobs).toEqual({ top_k: 3, keep_ratio: 0.5, halt_threshold: 0.99, merge_mode: 'none', merge_ratio: 0 });
    expect(body.tokens.merged_per_layer).toEqual([0, 0, 0, 0]);
    expect(body.tokens.per_layer).toHaveLength(4);
    expect(body.tokens.total).toBe(body.tokens.per_layer.reduce((a, b) => a + b, 0));
    expect(body.tokens.kept_ratio).toBeCloseTo(body.tokens.total / body.tokens.dense, 5);
    expect(body.gflops).toBeGreaterThan(0);
    expect(body.gflops).toBeLessThanOrEqual(body.dense_gflops);
    expect(body.video).toMatchObject({ width: 320, height: 240, frame_count: 50 });
    expect(Object.keys(body.timings_s).sort()).toEqual(['decode', 'infer', 'post', 'queue', 'total']);
    expect(t.tempFiles()).toEqual([]);
  });

  it('takes knob fields sent before or after the file, and the same video gives the same answer', async () => {
    const clip = fixture('clip.mp4');
    const before = form([{ name: 'keep_ratio', data: '1' }, { name: 'halt_threshold', data: '4' }, videoPart('a.mp4', clip)]);
    const after = form([videoPart('a.mp4', clip), { name: 'halt_threshold', data: '4' }, { name: 'keep_ratio', data: '1' }]);
    const [r1, r2] = await Promise.all([before, after].map((f) => t.app.inject({ method: 'POST', url: '/v1/classify', ...f })));
    const [b1, b2] = [r1!, r2!].map((r) => ClassifyResponse.parse(r.json()));
    expect(b1!.knobs).toEqual({ top_k: 5, keep_ratio: 1, halt_threshold: 4, merge_mode: 'none', merge_ratio: 0 });
    // keep 1 and no halting is the dense run.
    expect(b1!.tokens.kept_ratio).toBe(1);
    expect(b1!.gflops).toBeCloseTo(b1!.dense_gflops, 4);
    expect(b2!.top).toEqual(b1!.top);
  });

  it('reads an MP4 whose moov atom is at the end (needs a seekable file, not a pipe)', async () => {
    const file = fixture('clip.mp4');
    const bytes = readFileSync(file);
    // Without +faststart ffmpeg writes mdat first and moov last.
    expect(bytes.indexOf('moov')).toBeGreaterThan(bytes.indexOf('mdat'));
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('late-moov.mp4', file)]) });
    expect(res.statusCode).toBe(200);
  });
});

describe('POST /v1/classify, raw body', () => {
  it('accepts video/* with knobs in the query string', async () => {
    const res = await postRaw('/v1/classify?top_k=2&keep_ratio=0.3', 'faststart.mp4', 'video/mp4');
    expect(res.statusCode).toBe(200);
    const body = ClassifyResponse.parse(res.json());
    expect(body.knobs).toMatchObject({ top_k: 2, keep_ratio: 0.3 });
    expect(body.top).toHaveLength(2);
    expect(body.filename).toBeNull();
  });

  it('merges tokens on request: fewer tokens per layer, the merges reported, GFLOPs with their cost', async () => {
    const url = '/v1/classify?halt_threshold=4';
    const payload = readFileSync(fixture('faststart.mp4'));
    const headers = { 'content-type': 'video/mp4' };
    const plain = ClassifyResponse.parse((await t.app.inject({ method: 'POST', url, headers, payload })).json());
    const res = await t.app.inject({ method: 'POST', url: `${url}&merge_mode=tome&merge_ratio=0.5`, headers, payload });
    expect(res.statusCode).toBe(200);
    const merged = ClassifyResponse.parse(res.json());
    expect(merged.knobs).toMatchObject({ merge_mode: 'tome', merge_ratio: 0.5 });
    // test-micro at keep 0.5, no halting: 21 tokens, each layer merges half its patches
    expect(plain.tokens.per_layer).toEqual([21, 21, 21, 21]);
    expect(merged.tokens.per_layer).toEqual([21, 11, 6, 4]);
    expect(merged.tokens.merged_per_layer).toEqual([10, 5, 2, 1]);
    expect(merged.gflops).toBeLessThan(plain.gflops);
    const refused = await t.app.inject({ method: 'POST', url: '/v1/classify?merge_ratio=0.3', headers, payload });
    expect(expectError(refused, 400, 'BAD_KNOB').message).toBe('merge_ratio=0.3 needs merge_mode tome or tldr');
  });

  it('accepts application/octet-stream', async () => {
    const res = await postRaw('/v1/classify', 'clip-audio.mp4', 'application/octet-stream');
    expect(res.statusCode).toBe(200);
  });
});

describe('request ids', () => {
  it('echoes an incoming x-request-id and uses it in the body and the logs', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', headers: { 'content-type': 'application/json', 'x-request-id': 'abc-123' }, payload: '{}' });
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE').request_id).toBe('abc-123');
    expect(t.logs.some((l) => l.request_id === 'abc-123')).toBe(true);
  });

  it('names the instance that answered only when SERVED_BY_HEADER is on', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).headers['x-served-by']).toBeUndefined();
    const named = makeApp(t.engine, { http: { ...DEFAULT_HTTP, servedBy: 'haltingvt-7c9d-x2' } });
    try {
      const res = await named.app.inject({ method: 'POST', url: '/v1/classify', headers: { 'content-type': 'application/json' }, payload: '{}' });
      expect(res.statusCode).toBe(415);
      expect(res.headers['x-served-by']).toBe('haltingvt-7c9d-x2');
    } finally {
      await named.app.close();
    }
  });

  it('replaces an id that does not look like one', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('errors', () => {
  const post = (parts: Parameters<typeof form>[0]) => t.app.inject({ method: 'POST', url: '/v1/classify', ...form(parts) });

  it('400 BAD_KNOB for a knob out of range, with the range in details', async () => {
    const err = expectError(await post([videoPart('c.mp4', fixture('clip.mp4')), { name: 'keep_ratio', data: '1.5' }]), 400, 'BAD_KNOB');
    expect(err.message).toContain('keep_ratio');
    expect(err.details).toHaveProperty('ranges');
  });

  it('400 BAD_KNOB for a knob that is not a number, in the query too', async () => {
    expectError(await post([videoPart('c.mp4', fixture('clip.mp4')), { name: 'top_k', data: 'lots' }]), 400, 'BAD_KNOB');
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify?top_k=99', headers: { 'content-type': 'video/mp4' }, payload: Buffer.from('x') });
    expectError(res, 400, 'BAD_KNOB');
    // Text that is no number, refused by the query's schema, is the same BAD_KNOB with its problems as a form field's.
    const text = expectError(await t.app.inject({ method: 'POST', url: '/v1/classify?top_k=lots&keep_ratio=abc', headers: { 'content-type': 'video/mp4' }, payload: Buffer.from('x') }), 400, 'BAD_KNOB');
    expect(text.details).toEqual({ problems: ['top_k must be an integer', 'keep_ratio must be a number'] });
    expectError(await t.app.inject({ method: 'POST', url: '/v1/classify?topk=1', headers: { 'content-type': 'video/mp4' }, payload: Buffer.from('x') }), 400, 'BAD_REQUEST');
  });

  it('a multipart upload takes the query\'s fields where the form does not send them, the form\'s where it does', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify?top_k=2&keep_ratio=0.3', ...form([videoPart('c.mp4', fixture('clip.mp4')), { name: 'keep_ratio', data: '1' }]) });
    expect(res.statusCode, res.body).toBe(200);
    const body = ClassifyResponse.parse(res.json());
    expect(body.top).toHaveLength(2);
    expect(body.knobs).toMatchObject({ top_k: 2, keep_ratio: 1 });
  });

  it('400 BAD_REQUEST for an unknown field, a missing file and two files', async () => {
    expect(expectError(await post([videoPart('c.mp4', fixture('clip.mp4')), { name: 'topk', data: '1' }]), 400, 'BAD_REQUEST').message).toContain('topk');
    expectError(await post([{ name: 'top_k', data: '1' }]), 400, 'BAD_REQUEST');
    expectError(await post([videoPart('a.mp4', fixture('clip.mp4')), videoPart('b.mp4', fixture('clip.mp4'))]), 400, 'BAD_REQUEST');
    expectError(await post([videoPart('a.mp4', fixture('clip.mp4'), 'video')]), 400, 'BAD_REQUEST');
    expectError(await post([{ name: 'file', filename: 'empty.mp4', data: '' }]), 400, 'BAD_REQUEST');
  });

  it('415 UNSUPPORTED_MEDIA_TYPE for JSON, text and no content type', async () => {
    for (const headers of [{ 'content-type': 'application/json' }, { 'content-type': 'text/plain' }, {}]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/classify', headers, payload: '{"video":"x"}' });
      expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('422 for audio only, a still image, garbage and a truncated file; the message names the upload, not the temp file', async () => {
    const cases: Array<[string, string]> = [
      ['audio.m4a', 'VIDEO_NO_STREAM'],
      ['image.png', 'VIDEO_STILL_IMAGE'],
      ['garbage.mp4', 'VIDEO_UNDECODABLE'],
    ];
    for (const [name, code] of cases) {
      const err = expectError(await post([videoPart(name, fixture(name))]), 422, code);
      expect(err.message).not.toContain(t.uploadRoot);
      expect(err.message).toContain(JSON.stringify(name));
      expect(err.details ?? {}).not.toHaveProperty('file');
      expect(err.details?.['video']).toBe(JSON.stringify(name));
    }
    const truncated = await post([videoPart('truncated.mp4', fixture('truncated.mp4'))]);
    expect(truncated.statusCode).toBe(422);
    expect(t.tempFiles()).toEqual([]);
  });

  it('404 NOT_FOUND for an unknown route', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/v1/nothing' }), 404, 'NOT_FOUND');
    expectError(await t.app.inject({ method: 'GET', url: '/v1/classify' }), 404, 'NOT_FOUND');
  });
});
