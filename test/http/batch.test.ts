import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BatchResponse, ClassifyResponse, ErrorBody } from '../../src/http/schemas.js';
import { fixture, form, useTinyApp, videoPart } from './helpers.js';

// Just over clip.mp4, under clip-audio.mp4: one item of a batch can be too large on its own.
const t = useTinyApp({ overrides: { service: { maxUploadBytes: statSync(fixture('clip.mp4')).size + 10, maxBatchItems: 5 } } });

const batch = (parts: Parameters<typeof form>[0], url = '/v1/classify:batch') => t.app.inject({ method: 'POST', url, ...form(parts) });

describe('POST /v1/classify:batch', () => {
  it('answers one item per file in upload order; bad items fail alone', async () => {
    const res = await batch([
      { name: 'top_k', data: '2' },
      videoPart('first.mp4', fixture('clip.mp4'), 'files'),
      videoPart('noise.mp4', fixture('garbage.mp4'), 'files'),
      videoPart('big.mp4', fixture('clip-audio.mp4'), 'files'),
      videoPart('sound.m4a', fixture('audio.m4a'), 'files'),
      videoPart('last.mp4', fixture('three.mp4'), 'files'),
    ]);
    expect(res.json()).not.toHaveProperty('error');
    expect(res.statusCode).toBe(200);
    const body = BatchResponse.parse(res.json());
    expect(body.request_id).toBe(res.headers['x-request-id']);
    expect(body.knobs.top_k).toBe(2);
    expect(body.items.map((i) => i.index)).toEqual([0, 1, 2, 3, 4]);
    expect(body.items.map((i) => (i.ok ? 'ok' : i.error.code))).toEqual(['ok', 'VIDEO_UNDECODABLE', 'UPLOAD_TOO_LARGE', 'VIDEO_NO_STREAM', 'ok']);
    expect({ succeeded: body.succeeded, failed: body.failed }).toEqual({ succeeded: 2, failed: 3 });
    const [first, noise, , , last] = body.items;
    expect(first!.ok && first!.result.filename).toBe('first.mp4');
    expect(first!.ok && first!.result.top).toHaveLength(2);
    expect(last!.ok && last!.result.filename).toBe('last.mp4');
    expect(!noise!.ok && noise!.filename).toBe('noise.mp4');
    expect(!noise!.ok && noise!.error.message).toContain('"noise.mp4"');
    expect(!noise!.ok && noise!.error.request_id).toBe(body.request_id);
    expect(t.tempFiles()).toEqual([]);
  });

  it('gives the same result for a video as /v1/classify', async () => {
    const parts = [videoPart('clip.mp4', fixture('clip.mp4'), 'files')];
    const one = ClassifyResponse.parse((await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('clip.mp4', fixture('clip.mp4'))]) })).json());
    const many = BatchResponse.parse((await batch(parts)).json());
    const item = many.items[0]!;
    expect(item.ok).toBe(true);
    if (item.ok) {
      expect(item.result.top).toEqual(one.top);
      expect(item.result.tokens).toEqual(one.tokens);
    }
  });

  it('accepts "file" as the part name too', async () => {
    const body = BatchResponse.parse((await batch([videoPart('a.mp4', fixture('three.mp4')), videoPart('b.mp4', fixture('one.mp4'))])).json());
    expect(body.succeeded).toBe(2);
  });

  it('413 BATCH_TOO_LARGE past MAX_BATCH_ITEMS', async () => {
    const parts = Array.from({ length: 6 }, (_, i) => videoPart(`${i}.mp4`, fixture('one.mp4'), 'files'));
    const res = await batch(parts);
    expect(res.statusCode).toBe(413);
    expect(ErrorBody.parse(res.json()).error).toMatchObject({ code: 'BATCH_TOO_LARGE', details: { maxItems: 5 } });
    expect(t.tempFiles()).toEqual([]);
  });

  it('400 for no files, bad knobs or an unexpected part; 415 when not multipart', async () => {
    const code = async (res: Awaited<ReturnType<typeof batch>>) => [res.statusCode, ErrorBody.parse(res.json()).error.code];
    expect(await code(await batch([{ name: 'top_k', data: '1' }]))).toEqual([400, 'BAD_REQUEST']);
    expect(await code(await batch([videoPart('a.mp4', fixture('one.mp4'), 'files'), { name: 'keep_ratio', data: '0' }]))).toEqual([400, 'BAD_KNOB']);
    expect(await code(await batch([videoPart('a.mp4', fixture('one.mp4'), 'video')]))).toEqual([400, 'BAD_REQUEST']);
    const raw = await t.app.inject({ method: 'POST', url: '/v1/classify:batch', headers: { 'content-type': 'video/mp4' }, payload: readFileSync(fixture('one.mp4')) });
    expect(await code(raw)).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    expect(t.tempFiles()).toEqual([]);
  });

  it('routes the literal colon: other suffixes are 404, not a parameter match', async () => {
    const parts = [videoPart('a.mp4', fixture('one.mp4'), 'files')];
    for (const url of ['/v1/classify:other', '/v1/classifybatch', '/v1/classify:batch/x', '/v1/classify:batch2']) {
      const res = await batch(parts, url);
      expect(res.statusCode, url).toBe(404);
    }
  });
});
