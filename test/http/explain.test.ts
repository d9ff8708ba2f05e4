/**
 * `explain`: off by default; with explain=true (/v1 field or query, OIP parameter) each result
 * carries the stop map, the sampled frames' times and PNG thumbnails of what the model saw.
 */
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { BatchResponse, ClassifyResponse, ErrorBody, Explanation } from '../../src/http/schemas.js';
import { V2InferResponse } from '../../src/http/oip-schemas.js';
import { readFileSync } from 'node:fs';
import { fixture, form, useTinyApp, videoPart } from './helpers.js';

const t = useTinyApp();

async function classify(fields: Record<string, string>, query = ''): Promise<ClassifyResponse> {
  const { payload, headers } = form([videoPart('clip.mp4', fixture('clip.mp4')), ...Object.entries(fields).map(([name, data]) => ({ name, data }))]);
  const res = await t.app.inject({ method: 'POST', url: `/v1/classify${query}`, payload, headers });
  expect(res.statusCode, res.body).toBe(200);
  return ClassifyResponse.parse(res.json());
}

/** The tiny model: 4 frames of 48×48, a 3×3 patch grid, 4 joint layers. */
function checkTiny(body: ClassifyResponse): Explanation {
  const e = body.explain!;
  expect(e).toBeDefined();
  expect(e.grid).toEqual({ frames: 4, rows: 3, cols: 3, joint_layers: 4 });
  expect(e.stop_map).toHaveLength(4);
  for (const row of e.stop_map) {
    expect(row).toHaveLength(9);
    for (const v of row) expect(v).toBeGreaterThanOrEqual(0), expect(v).toBeLessThanOrEqual(4);
  }
  // The map and the histogram the answer always carried count the same patches.
  const histogram = new Array<number>(5).fill(0);
  for (const v of e.stop_map.flat()) histogram[v]! += 1;
  expect(histogram).toEqual(body.tokens.patch_stop_histogram);
  expect(e.sampled_indices).toEqual(body.video.sampled_indices);
  // clip.mp4 is 25 frames per second.
  e.timestamps_s.forEach((ts, i) => expect(ts).toBeCloseTo(e.sampled_indices[i]! / 25, 3));
  expect(e.thumbnails.size).toBe(48);
  expect(e.thumbnails.data).toHaveLength(4);
  for (const b64 of e.thumbnails.data) {
    const png = PNG.sync.read(Buffer.from(b64, 'base64'));
    expect([png.width, png.height]).toEqual([48, 48]);
    // testsrc2 is colourful: a thumbnail that decoded to one flat colour would mean no frame data.
    const distinct = new Set<number>();
    for (let i = 0; i < png.data.length; i += 4) distinct.add((png.data[i]! << 16) | (png.data[i + 1]! << 8) | png.data[i + 2]!);
    expect(distinct.size).toBeGreaterThan(20);
  }
  expect(e.merged_per_layer).toEqual(body.tokens.merged_per_layer);
  return e;
}

describe('explain on /v1', () => {
  it('is off by default', async () => {
    expect(await classify({})).not.toHaveProperty('explain');
    expect(await classify({ explain: 'false' })).not.toHaveProperty('explain');
  });

  it('explains as a form field, and as a query parameter for a raw body and for a form', async () => {
    checkTiny(await classify({ explain: 'true' }));
    const multipart = await t.app.inject({ method: 'POST', url: '/v1/classify?explain=true', ...form([videoPart('clip.mp4', fixture('clip.mp4'))]) });
    expect(multipart.statusCode).toBe(200);
    checkTiny(ClassifyResponse.parse(multipart.json()));
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify?explain=1&keep_ratio=0.5', payload: readFileSync(fixture('clip.mp4')), headers: { 'content-type': 'video/mp4' } });
    expect(res.statusCode).toBe(200);
    checkTiny(ClassifyResponse.parse(res.json()));
  });

  it('drops exactly the patches the Glimpser did not keep', async () => {
    // keep_ratio 1/3 of a 3×3 grid keeps ceil(3) = 3 patches per frame; 1 keeps all 9.
    const low = checkTiny(await classify({ explain: 'true', keep_ratio: String(1 / 3) }));
    for (const row of low.stop_map) expect(row.filter((v) => v === 0)).toHaveLength(6);
    const full = checkTiny(await classify({ explain: 'true', keep_ratio: '1' }));
    for (const row of full.stop_map) expect(row.filter((v) => v === 0)).toHaveLength(0);
  });

  it('explains every item of a batch', async () => {
    const { payload, headers } = form([videoPart('a.mp4', fixture('clip.mp4'), 'files'), videoPart('b.mp4', fixture('clip.mp4'), 'files'), { name: 'explain', data: 'true' }]);
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify:batch', payload, headers });
    expect(res.statusCode).toBe(200);
    const body = BatchResponse.parse(res.json());
    expect(body.items).toHaveLength(2);
    for (const item of body.items) expect(item.ok && item.result.explain?.stop_map).toHaveLength(4);
  });

  it('stays small', async () => {
    const res = await classify({ explain: 'true' });
    expect(JSON.stringify(res.explain).length).toBeLessThan(64 * 1024);
  });

  it('refuses a value that is not a boolean, in words', async () => {
    const { payload, headers } = form([videoPart('clip.mp4', fixture('clip.mp4')), { name: 'explain', data: 'maybe' }]);
    const res = await t.app.inject({ method: 'POST', url: '/v1/classify', payload, headers });
    expect(res.statusCode).toBe(400);
    expect(ErrorBody.parse(res.json()).error.message).toMatch(/explain must be true or false/);
  });
});

describe('explain on the OIP routes', () => {
  const infer = (parameters: Record<string, unknown>, outputs?: unknown[]) =>
    t.app.inject({
      method: 'POST',
      url: '/v2/models/tiny/infer',
      payload: {
        parameters,
        inputs: [{ name: 'VIDEO', shape: [1, 1], datatype: 'BYTES', data: ['not a video'] }],
        ...(outputs ? { outputs } : {}),
      },
    });

  it('adds EXPLANATION with explain=true, and only then', async () => {
    const video = readFileSync(fixture('clip.mp4'));
    const raw = Buffer.concat([Buffer.from(Uint32Array.of(video.length).buffer), video]);
    const send = (parameters: Record<string, unknown>) => {
      const header = Buffer.from(JSON.stringify({ parameters, inputs: [{ name: 'VIDEO', shape: [1, 1], datatype: 'BYTES', parameters: { binary_data_size: raw.length } }] }));
      return t.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', headers: { 'inference-header-content-length': String(header.length) }, payload: Buffer.concat([header, raw]) });
    };
    const plain = V2InferResponse.parse((await send({})).json());
    expect(plain.outputs.map((o) => o.name)).not.toContain('EXPLANATION');
    const res = await send({ explain: true, keep_ratio: 0.5 });
    expect(res.statusCode, res.body).toBe(200);
    const body = V2InferResponse.parse(res.json());
    const out = body.outputs.find((o) => o.name === 'EXPLANATION')!;
    expect(out).toMatchObject({ datatype: 'BYTES', shape: [1, 1] });
    const e = Explanation.parse(JSON.parse(String(out.data![0])));
    expect(e.grid).toEqual({ frames: 4, rows: 3, cols: 3, joint_layers: 4 });
    expect(e.thumbnails.data).toHaveLength(4);
  });

  it('refuses a non-boolean explain parameter', async () => {
    const res = await infer({ explain: 'perhaps' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/explain=perhaps must be true or false/);
  });
});
