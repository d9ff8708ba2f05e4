/**
 * Dynamic batching on the real tiny model: videos batched into one session run get the same
 * results as when each runs alone (the graph halts each video of a batch on its own), only videos
 * with the same knobs share a run, and a batch size of 1 keeps one run per video. Then the batcher
 * alone over a session host whose runs the test answers: the delay, cancellations and failed runs.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBatcher, type BatchOptions } from '../../src/engine/batcher.js';
import { createEngine, type ClassifyResult, type Engine } from '../../src/engine/index.js';
import type { InferResult } from '../../src/engine/infer.js';
import { createSessionHost, type RunResult, type SessionHost, type VideoFrames } from '../../src/engine/inference/host.js';
import type { Knobs } from '../../src/engine/knobs.js';
import { EngineError, isEngineError } from '../../src/errors.js';
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
      return { ...host, run: (job, signal) => (runs.push(job.videos!.length), host.run(job, signal)) };
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

describe('dynamic batching', () => {
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

/** One session run the fake host holds until the test answers or fails it. */
interface HeldRun {
  /** The ids of the videos in the run, in batch order. */
  videos: number[];
  signal: AbortSignal | undefined;
  answer(): void;
  fail(error: unknown): void;
}

/** A video of two values, both its id: the fake host reads the ids of a batch back from its tensor. */
/** A video whose one frame's first byte is its id. */
const video = (id: number): VideoFrames => ({ rgb: Uint8Array.of(id, 0, 0), slotToFrame: [0] });
const knobs = { top_k: 1, keep_ratio: 0.5, halt_threshold: 0.9 } as Knobs;

/** A session host whose runs wait for the test; each video's outputs carry its id, so a mix-up shows. */
function heldHost(): { host: SessionHost; runs: HeldRun[] } {
  const runs: HeldRun[] = [];
  const host: SessionHost = {
    ready: () => Promise.resolve({ executionProvider: 'fake', inputs: [], outputs: [], warmupMs: 0 }),
    run: (job, signal) =>
      new Promise<RunResult>((resolve, reject) => {
        const ids = (job.videos ?? []).map((v) => v.rgb[0]!);
        const n = ids.length;
        runs.push({
          videos: ids,
          signal,
          fail: reject,
          answer: () =>
            resolve({
              outputs: {
                logits: { dtype: 'float32', dims: [n, 2], data: Float32Array.from(ids.flatMap((id) => [id, -id])) },
                active_tokens: { dtype: 'int64', dims: [n, 1], data: BigInt64Array.from(ids, (id) => BigInt(id)) },
                patch_stop_layer: { dtype: 'int64', dims: [n, 2], data: BigInt64Array.from(ids.flatMap((id) => [BigInt(id), 0n])) },
              },
              queueS: 0,
              inferS: 0.01,
            }),
        });
      }),
    accepting: () => true,
    stats: () => ({ state: 'up', workers: 1, alive: 1, busy: runs.length, queued: 0, restarts: 0, retired: 0, failedStarts: 0, failuresInRow: 0, pids: [] }),
    close: () => Promise.resolve(),
  };
  return { host, runs };
}

/** A promise's outcome, readable without awaiting it (a video still waiting stays 'pending'). */
function track(promise: Promise<InferResult>): { state: 'pending' | 'fulfilled' | 'rejected'; result?: InferResult; error?: unknown } {
  const outcome: ReturnType<typeof track> = { state: 'pending' };
  promise.then(
    (result) => Object.assign(outcome, { state: 'fulfilled', result }),
    (error: unknown) => Object.assign(outcome, { state: 'rejected', error }),
  );
  return outcome;
}
/** Lets every promise reaction queued so far run (setImmediate is left real below). */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const logitsOf = (r: InferResult | undefined): number[] => Array.from(r?.outputs.logits ?? []);

describe('the batcher over a held session host', () => {
  // The batch delay is a setTimeout and the batcher's clock is Date.now: both move only when the test says.
  beforeEach(() => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] }));
  afterEach(() => void vi.useRealTimers());
  const batcher = (host: SessionHost, options: BatchOptions) => createBatcher(host, options, () => Date.now());

  it('holds a lone video for maxDelayMs then runs it alone; a second one within the delay joins its run', async () => {
    const { host, runs } = heldHost();
    const infer = batcher(host, { maxSize: 4, maxDelayMs: 50 });

    const lone = infer(video(1), knobs);
    await vi.advanceTimersByTimeAsync(49);
    expect(runs).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs.map((r) => r.videos)).toEqual([[1]]);
    runs[0]!.answer();
    expect(logitsOf(await lone)).toEqual([1, -1]);

    const first = infer(video(2), knobs);
    await vi.advanceTimersByTimeAsync(30);
    const second = infer(video(3), knobs);
    await vi.advanceTimersByTimeAsync(19);
    expect(runs).toHaveLength(1); // the delay counts from the oldest waiting video
    await vi.advanceTimersByTimeAsync(1);
    expect(runs.map((r) => r.videos)).toEqual([[1], [2, 3]]);
    runs[1]!.answer();
    const [a, b] = await Promise.all([first, second]);
    expect(logitsOf(a)).toEqual([2, -2]);
    expect(logitsOf(b)).toEqual([3, -3]);
    // The time held for the batch is queue time, each video's own.
    expect(a.queueS).toBeCloseTo(0.05, 6);
    expect(b.queueS).toBeCloseTo(0.02, 6);
  });

  it('rejects a video cancelled while it waits for its batch with ABORTED at once, and leaves it out of the run', async () => {
    const { host, runs } = heldHost();
    const infer = batcher(host, { maxSize: 4, maxDelayMs: 50 });
    const controller = new AbortController();
    const leaving = track(infer(video(1), knobs, controller.signal));
    const staying = infer(video(2), knobs);
    controller.abort();
    await settled(); // not at the end of the delay: now
    expect(leaving.state).toBe('rejected');
    expect(isEngineError(leaving.error, 'ABORTED')).toBe(true);
    expect(runs).toEqual([]);
    await vi.advanceTimersByTimeAsync(50);
    expect(runs.map((r) => r.videos)).toEqual([[2]]);
    runs[0]!.answer();
    expect(logitsOf(await staying)).toEqual([2, -2]);
  });

  it('answers a video cancelled inside a running batch at once, and the others of the run when it ends', async () => {
    const { host, runs } = heldHost();
    const infer = batcher(host, { maxSize: 2, maxDelayMs: 60_000 });
    const controller = new AbortController();
    const leaving = track(infer(video(1), knobs, controller.signal));
    const staying = track(infer(video(2), knobs));
    expect(runs.map((r) => r.videos)).toEqual([[1, 2]]); // a full batch leaves without waiting
    controller.abort();
    await settled();
    expect(leaving.state).toBe('rejected');
    expect(isEngineError(leaving.error, 'ABORTED')).toBe(true);
    expect(staying.state).toBe('pending');
    runs[0]!.answer();
    await settled();
    expect(staying.state).toBe('fulfilled');
    expect(logitsOf(staying.result)).toEqual([2, -2]);
    expect(leaving.state).toBe('rejected');
  });

  it("fails every video of a failed run with the run's error, then runs the next batch", async () => {
    const { host, runs } = heldHost();
    const infer = batcher(host, { maxSize: 2, maxDelayMs: 60_000 });
    const failing = [track(infer(video(1), knobs)), track(infer(video(2), knobs))];
    // These wait while the worker is busy with the first batch.
    const next = [infer(video(3), knobs), infer(video(4), knobs)];
    expect(runs).toHaveLength(1);
    const crash = new EngineError('WORKER_CRASHED', 'the inference worker died (exit code none, signal SIGSEGV) while running this request');
    runs[0]!.fail(crash);
    await settled();
    for (const video of failing) expect(video).toMatchObject({ state: 'rejected', error: crash });
    expect(runs.map((r) => r.videos)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    runs[1]!.answer();
    expect((await Promise.all(next)).map(logitsOf)).toEqual([
      [3, -3],
      [4, -4],
    ]);
  });
});
