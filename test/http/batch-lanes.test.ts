/**
 * A batch's videos run side by side up to CONCURRENCY, and a single request that arrives during a
 * batch is served before the batch's later videos (each lane queues its next video only when its
 * previous one is done, and the queue is FIFO). The engine is held per call, so order is exact.
 */
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BatchResponse } from '../../src/http/schemas.js';
import { fixture, form, gate, heldEngine, until, useTinyApp, videoPart } from './helpers.js';

/** One entry per classify call, in call order: which fixture, and the gate that holds it. */
const calls: Array<{ video: string; release: () => void }> = [];
const sizes = new Map(['clip.mp4', 'three.mp4'].map((name) => [statSync(fixture(name)).size, name]));

const t = useTinyApp({
  wrap: (engine) =>
    heldEngine(engine, (file) => {
      const g = gate();
      calls.push({ video: sizes.get(statSync(file).size) ?? '?', release: g.open });
      return g.promise;
    }),
  overrides: { service: { concurrency: 2, queueSize: 16 } },
});

describe('batch lanes', () => {
  it('runs a batch two videos at a time and lets a single request in between', async () => {
    const batch = t.app.inject({ method: 'POST', url: '/v1/classify:batch', ...form([1, 2, 3, 4].map((i) => videoPart(`${i}.mp4`, fixture('clip.mp4'), 'files'))) });
    await until(() => calls.length === 2, 'two batch videos in the engine');
    const single = t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('single.mp4', fixture('three.mp4'))]) });
    await until(() => t.service.lifecycle.inflight() === 2, 'the single request admitted');
    expect(calls.map((c) => c.video)).toEqual(['clip.mp4', 'clip.mp4']);
    calls[0]!.release();
    await until(() => calls.length === 3, 'the next video');
    expect(calls[2]!.video).toBe('three.mp4');
    for (let i = 1; i < 5; i++) {
      await until(() => calls.length > i, `call ${i + 1}`);
      calls[i]!.release();
    }
    const [b, s] = await Promise.all([batch, single]);
    expect(s.statusCode).toBe(200);
    const body = BatchResponse.parse(b.json());
    expect(body.items.map((i) => i.ok)).toEqual([true, true, true, true]);
    expect(calls.map((c) => c.video)).toEqual(['clip.mp4', 'clip.mp4', 'three.mp4', 'clip.mp4', 'clip.mp4']);
  });
});
