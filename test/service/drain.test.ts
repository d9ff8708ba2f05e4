/**
 * Draining while a multi-video request is half done: every video of an admitted request still runs
 * (its later videos are not refused as new work), drain() waits for the whole request, and new
 * requests are refused meanwhile. For /v1's batch route and for a multi-video OIP request.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { V2InferResponse } from '../../src/http/oip-schemas.js';
import { BatchResponse, ErrorBody } from '../../src/http/schemas.js';
import { fixture, form, gatedEngine, makeApp, openTinyEngine, until, videoPart, type TestApp } from '../http/helpers.js';

let engine: Engine;
const apps: TestApp[] = [];
beforeAll(async () => {
  engine = await openTinyEngine();
});
afterAll(async () => {
  for (const t of apps) await t.app.close();
  await engine?.close();
});

/** An app whose engine holds every video at a gate, one video at a time in the engine (CONCURRENCY 1). */
function heldApp() {
  const g = gatedEngine(engine);
  const t = makeApp(g.port, { service: { concurrency: 1 } });
  apps.push(t);
  return { g, t };
}

async function drainDuring(t: TestApp, g: ReturnType<typeof gatedEngine>, request: Promise<{ statusCode: number; body: string }>, videos: number) {
  await until(() => g.entered() === 1, 'the first video to reach the engine');
  let drained = false;
  const drain = t.service.lifecycle.drain().then(() => (drained = true));
  const refused = await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('clip.mp4', fixture('clip.mp4'))]) });
  expect(ErrorBody.parse(refused.json()).error.code).toBe('DRAINING');
  // The request's other videos were queued behind the first: each goes on once the one before ends.
  for (let entered = 1; entered < videos; entered += 1) {
    g.openOne();
    await until(() => g.entered() === entered + 1, `video ${entered + 1} to reach the engine`);
    expect(drained).toBe(false);
  }
  g.open();
  const answer = await request;
  await drain;
  expect(drained).toBe(true);
  expect(t.service.lifecycle.inflight()).toBe(0);
  return answer;
}

describe('a drain during a multi-video request', () => {
  it('/v1/classify:batch: every item is classified, then drain() resolves', async () => {
    const { g, t } = heldApp();
    const parts = ['clip.mp4', 'one.mp4', 'three.mp4'].map((f) => videoPart(f, fixture(f), 'files'));
    const batch = t.app.inject({ method: 'POST', url: '/v1/classify:batch', ...form(parts) });
    const answer = await drainDuring(t, g, batch, 3);
    expect(answer.statusCode, answer.body).toBe(200);
    expect(BatchResponse.parse(JSON.parse(answer.body))).toMatchObject({ succeeded: 3, failed: 0 });
  });

  it('OIP with two videos: both are classified, then drain() resolves', async () => {
    const { g, t } = heldApp();
    const videos = ['clip.mp4', 'one.mp4'].map((f) => readFileSync(fixture(f)));
    const raw = Buffer.concat(videos.flatMap((v) => [Buffer.from(Uint32Array.of(v.length).buffer), v]));
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [2, 1], parameters: { binary_data_size: raw.length } }], outputs: [{ name: 'ERROR' }] }));
    const infer = t.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', headers: { 'inference-header-content-length': String(header.length) }, payload: Buffer.concat([header, raw]) });
    const answer = await drainDuring(t, g, infer, 2);
    expect(answer.statusCode, answer.body).toBe(200);
    expect(V2InferResponse.parse(JSON.parse(answer.body)).parameters).toMatchObject({ succeeded: 2, failed: 0 });
  });
});
