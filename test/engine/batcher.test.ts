/**
 * Dynamic batching on the real tiny model: videos batched into one session run get the same
 * results as when each runs alone (the graph halts each video of a batch on its own), only videos
 * with the same knobs share a run, and a batch size of 1 keeps one run per video.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type ClassifyResult, type Engine } from '../../src/engine/index.js';
import { createSessionHost } from '../../src/engine/inference/host.js';
import { fixture } from '../helpers/media.js';
import { TINY_MODEL } from '../helpers/paths.js';

/** An engine whose session runs are recorded by their batch size. */
async function engineWith(batchMaxSize: number, batchMaxDelayMs: number): Promise<{ engine: Engine; runs: number[] }> {
  const runs: number[] = [];
  const engine = await createEngine({
    modelDir: TINY_MODEL,
    config: { executionProviders: ['cpu'], intraOpNumThreads: 1, batchMaxSize, batchMaxDelayMs },
    createHost: (options) => {
      const host = createSessionHost(options);
      return { ...host, run: (feeds, signal) => (runs.push(feeds.video!.dims[0]!), host.run(feeds, signal)) };
    },
  });
  runs.length = 0; // the warm-up run is not a request
  return { engine, runs };
}

const VIDEOS = ['clip.mp4', 'three.mp4', 'one.mp4', 'odd.mp4'];
const same = (a: ClassifyResult, b: ClassifyResult): void => {
  expect(a.tokens).toEqual(b.tokens);
  expect(a.top.map((p) => p.index)).toEqual(b.top.map((p) => p.index));
  a.top.forEach((p, i) => expect(p.probability).toBeCloseTo(b.top[i]!.probability, 5));
  expect(a.gflops).toBeCloseTo(b.gflops, 6);
};

let alone: { engine: Engine; runs: number[] };
let batched: { engine: Engine; runs: number[] };
beforeAll(async () => {
  alone = await engineWith(1, 0);
  // A long delay: a batch leaves only when full, so the sizes below do not depend on timing.
  batched = await engineWith(2, 60_000);
});
afterAll(async () => {
  await alone?.engine.close();
  await batched?.engine.close();
});

describe('dynamic batching', () => {
  it('gives every video of a batched run the result it gets alone', async () => {
    const knobs = { keep_ratio: 0.6, halt_threshold: 0.95 };
    const single = await Promise.all(VIDEOS.map((v) => alone.engine.classify(fixture(v), alone.engine.validateKnobs(knobs))));
    expect(alone.runs).toEqual([1, 1, 1, 1]);
    const together = await Promise.all(VIDEOS.map((v) => batched.engine.classify(fixture(v), batched.engine.validateKnobs(knobs))));
    expect(batched.runs).toEqual([2, 2]);
    together.forEach((r, i) => same(r, single[i]!));
  });

  it('runs only videos with the same knobs together', async () => {
    batched.runs.length = 0;
    const knobs = [{ keep_ratio: 0.3 }, { keep_ratio: 0.9 }, { keep_ratio: 0.3 }, { keep_ratio: 0.9 }];
    const results = await Promise.all(VIDEOS.map((v, i) => batched.engine.classify(fixture(v), batched.engine.validateKnobs(knobs[i]!))));
    expect(batched.runs).toEqual([2, 2]);
    const single = await Promise.all(VIDEOS.map((v, i) => alone.engine.classify(fixture(v), alone.engine.validateKnobs(knobs[i]!))));
    results.forEach((r, i) => same(r, single[i]!));
  });

  it('keeps videos with different merge settings apart (the graph takes one setting per run)', async () => {
    batched.runs.length = 0;
    const tome = { merge_mode: 'tome' as const, merge_ratio: 0.5 };
    const knobs = [tome, {}, tome, {}];
    const results = await Promise.all(VIDEOS.map((v, i) => batched.engine.classify(fixture(v), batched.engine.validateKnobs(knobs[i]!))));
    expect(batched.runs).toEqual([2, 2]);
    const single = await Promise.all(VIDEOS.map((v, i) => alone.engine.classify(fixture(v), alone.engine.validateKnobs(knobs[i]!))));
    results.forEach((r, i) => same(r, single[i]!));
    expect(results[0]!.tokens.merged_per_layer.some((n) => n > 0)).toBe(true);
  });
});
