import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isEngineError, type EngineError } from '../../src/errors.js';
import { engineConfig } from '../../src/engine/config.js';
import { createSessionHost, inferenceInit, type InferenceJob, type SessionHost } from '../../src/engine/inference/host.js';
import { Preprocessor, type VideoInputSpec } from '../../src/engine/preprocess.js';
import type { WorkerSupervision } from '../../src/engine/workers/pool.js';
import type { PlainTensor } from '../../src/engine/inference/ort-session.js';
import { captureLogger } from '../helpers/logger.js';
import { TINY_MODEL } from '../helpers/paths.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fakeEntry = { file: path.join(here, '..', 'fixtures', 'fake-worker.mjs'), execArgv: [] };

const hosts: SessionHost[] = [];
function host(modelPath: string, real = false, extra: { supervision?: Partial<WorkerSupervision>; onFatal?: (e: EngineError) => void; timeoutMs?: number } = {}) {
  const { logger, lines } = captureLogger();
  const config = engineConfig({ executionProviders: ['cpu'] });
  const h = createSessionHost({
    init: inferenceInit(config, modelPath, TINY_INPUT, { keep_ratio: 0.5, halt_threshold: 0.99 }),
    supervision: { ...config, ...extra.supervision },
    timeoutMs: extra.timeoutMs ?? config.inferenceTimeoutMs,
    logger,
    now: () => performance.now(),
    entry: real ? undefined : fakeEntry,
    onFatal: extra.onFatal,
  });
  hosts.push(h);
  return { h, lines };
}
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

/** The tiny model's input (4 frames of 48 x 48) and its normalisation. */
const TINY_INPUT: VideoInputSpec = { frames: 4, size: 48, mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };
const scalar = (value: number): PlainTensor => ({ dtype: 'float32', dims: [], data: Float32Array.of(value) });
/** A run of the fake worker: keep_ratio picks its behaviour (fake-worker.mjs). */
const job = (keep: number): InferenceJob => ({ feeds: { keep_ratio: scalar(keep) } });
const pidOf = (r: { outputs: Record<string, PlainTensor> }) => (r.outputs.pid?.data as Int32Array)[0];

describe('session host (fake worker)', () => {
  it('fails only the request in flight when the worker crashes, then replaces the worker', async () => {
    const { h, lines } = host('ok');
    await h.ready();
    const first = await h.run(job(0.1));
    const firstPid = pidOf(first);
    const crashing = h.run(job(0.666));
    const queued = h.run(job(0.2)); // waits in the host's queue while the crash happens
    const crash = await crashing.catch((e: unknown) => e);
    expect(isEngineError(crash, 'WORKER_CRASHED')).toBe(true);
    expect((crash as Error).message).toContain('signal SIGSEGV');
    const after = await queued;
    expect(pidOf(after)).not.toBe(firstPid);
    expect(h.stats().restarts).toBe(1);
    expect(lines.some((l) => l.msg === 'inference worker crashed; starting a new one')).toBe(true);
  });

  it('kills a run stuck past the time limit: INFERENCE_TIMEOUT for it, the worker replaced, the queued run served by the new one', async () => {
    const { h } = host('ok', false, { timeoutMs: 300 });
    await h.ready();
    const before = h.stats().pids[0];
    const stuck = h.run(job(0.777)).catch((e: unknown) => e);
    const queued = h.run(job(0.1));
    const error = await stuck;
    expect(isEngineError(error, 'INFERENCE_TIMEOUT')).toBe(true);
    expect((error as EngineError).status).toBe(504);
    expect(pidOf(await queued)).not.toBe(before);
    expect(h.stats()).toMatchObject({ restarts: 1, failedStarts: 0 });
  });

  it('reports queue and infer time per request', async () => {
    const { h } = host('ok');
    await h.ready();
    const slow = h.run(job(0.5));
    const next = h.run(job(0.1));
    const [a, b] = await Promise.all([slow, next]);
    expect(Number.isFinite(a.inferS)).toBe(true);
    expect(b.queueS).toBeGreaterThan(a.queueS); // it waited in the queue while the slow one ran
  });

  it('drops a queued request whose signal aborts', async () => {
    const { h } = host('ok');
    await h.ready();
    const slow = h.run(job(0.5));
    const controller = new AbortController();
    const queued = h.run(job(0.1), controller.signal);
    controller.abort();
    expect(isEngineError(await queued.catch((e: unknown) => e), 'ABORTED')).toBe(true);
    expect(h.stats().queued).toBe(0);
    await slow;
  });

  it('does not restart a worker that cannot open the model', async () => {
    const { h } = host('init-fail');
    const error = await h.ready().catch((e: unknown) => e);
    expect(isEngineError(error, 'MODEL_INVALID')).toBe(true);
    expect((error as Error).message).toBe('cannot open fake.onnx');
    expect(isEngineError(await h.run(job(0.1)).catch((e: unknown) => e), 'MODEL_INVALID')).toBe(true);
  });

  it('keeps retrying with backoff while replacements die as they start, refusing work meanwhile, then recovers', async () => {
    const { h, lines } = host('slow-start', false, { supervision: { workerRestartBackoffMs: 50, workerRestartBackoffMaxMs: 100, workerMaxDownMs: 0 } });
    await h.ready();
    let pid = h.stats().pids[0] as number;
    process.kill(pid, 'SIGKILL'); // the ready worker: replaced at once, work may wait for it
    await vi.waitFor(() => expect(h.stats()).toMatchObject({ state: 'restarting', restarts: 1 }));
    expect(h.accepting()).toBe(true);
    // Kill each replacement while it starts, three times in a row.
    for (let failed = 1; failed <= 3; failed += 1) {
      await vi.waitFor(() => expect(h.stats().pids[0] ?? pid).not.toBe(pid), { timeout: 5_000 });
      pid = h.stats().pids[0] as number;
      process.kill(pid, 'SIGKILL');
      await vi.waitFor(() => expect(h.stats()).toMatchObject({ state: 'down', failedStarts: failed, failuresInRow: failed, alive: 0 }), { timeout: 5_000 });
      expect(h.accepting()).toBe(false);
      const refused = await h.run(job(0.1)).catch((e: unknown) => e);
      expect(isEngineError(refused, 'WORKER_UNAVAILABLE')).toBe(true);
    }
    // Left alone, the next one starts and serves.
    await vi.waitFor(() => expect(h.stats()).toMatchObject({ state: 'up', alive: 1, failuresInRow: 0 }), { timeout: 5_000 });
    expect(h.accepting()).toBe(true);
    expect(pidOf(await h.run(job(0.1)))).toBe(h.stats().pids[0]);
    expect(h.stats()).toMatchObject({ restarts: 1, failedStarts: 3 });
    const retries = lines.filter((l) => l.msg === 'inference worker died while starting; retrying after a backoff').map((l) => l.retryInMs);
    expect(retries).toEqual([50, 100, 100]); // doubles, capped
  });

  it('gives up with WORKER_UNAVAILABLE when no worker starts within maxDownMs', async () => {
    const { h } = host('die-on-start', false, { supervision: { workerRestartBackoffMs: 20, workerMaxDownMs: 1000 } });
    const error = await h.ready().catch((e: unknown) => e);
    expect(isEngineError(error, 'WORKER_UNAVAILABLE')).toBe(true);
    expect((error as Error).message).toMatch(/^no inference worker could start for \d+ ms/);
    expect(h.stats().state).toBe('stopped');
    const { failedStarts } = h.stats();
    await new Promise((r) => setTimeout(r, 200));
    expect(h.stats().failedStarts).toBe(failedStarts); // nothing more is started
    expect(isEngineError(await h.run(job(0.1)).catch((e: unknown) => e), 'WORKER_UNAVAILABLE')).toBe(true);
  });

  it('kills a worker that does not become ready within workerStartTimeoutMs, counts a failed start and refuses work while it retries', async () => {
    const { h, lines } = host('never-ready', false, { supervision: { workerStartTimeoutMs: 300, workerRestartBackoffMs: 50, workerRestartBackoffMaxMs: 100, workerMaxDownMs: 0 } });
    const firstPid = h.stats().pids[0] as number;
    await vi.waitFor(() => expect(h.stats().failedStarts).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
    expect(lines.find((l) => l.msg === 'inference worker did not become ready in time; killing it')).toMatchObject({ timeoutMs: 300, pid: firstPid });
    expect(lines.find((l) => l.msg === 'inference worker died while starting; retrying after a backoff')).toMatchObject({ killedFor: 'start-timeout', signal: 'SIGKILL' });
    // Down until a worker is ready, through the backoff and the replacement's own start.
    expect(h.stats()).toMatchObject({ state: 'down', alive: 0 });
    expect(h.accepting()).toBe(false);
    expect(isEngineError(await h.run(job(0.1)).catch((e: unknown) => e), 'WORKER_UNAVAILABLE')).toBe(true);
  });

  it('gives up with WORKER_UNAVAILABLE when workers keep timing out at start for workerMaxDownMs, leaving no process behind', async () => {
    // The start timeout is well inside the limit: the pool gives up on starts that timed out, not on a first one still loading.
    const { h, lines } = host('never-ready', false, { supervision: { workerStartTimeoutMs: 300, workerRestartBackoffMs: 50, workerRestartBackoffMaxMs: 100, workerMaxDownMs: 1000 } });
    const error = await h.ready().catch((e: unknown) => e);
    expect(isEngineError(error, 'WORKER_UNAVAILABLE')).toBe(true);
    expect((error as Error).message).toMatch(/^no inference worker could start for \d+ ms/);
    expect(lines.some((l) => l.msg === 'inference worker did not become ready in time; killing it')).toBe(true);
    expect(h.stats().state).toBe('stopped');
    expect(h.accepting()).toBe(false);
    await vi.waitFor(() => expect(h.stats().workers).toBe(0), { timeout: 10_000 }); // the start still hanging is killed too
  });

  it('after serving, giving up is reported through onFatal', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-host-test-'));
    try {
      const fatal: EngineError[] = [];
      const { h } = host(`once:${path.join(dir, 'started')}`, false, { supervision: { workerRestartBackoffMs: 20, workerMaxDownMs: 3000 }, onFatal: (e) => fatal.push(e) });
      await h.ready();
      process.kill(h.stats().pids[0] as number, 'SIGKILL');
      await vi.waitFor(() => expect(fatal).toHaveLength(1), { timeout: 10_000 });
      expect(fatal[0]?.code).toBe('WORKER_UNAVAILABLE');
      expect(h.accepting()).toBe(false);
      expect(isEngineError(await h.run(job(0.1)).catch((e: unknown) => e), 'WORKER_UNAVAILABLE')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses work after close and fails what was queued', async () => {
    const { h } = host('ok');
    await h.ready();
    const slow = h.run(job(0.5)).catch((e: unknown) => e);
    const queued = h.run(job(0.1)).catch((e: unknown) => e);
    await h.close();
    expect(isEngineError(await queued, 'ENGINE_CLOSED')).toBe(true);
    expect(isEngineError(await h.run(job(0.1)).catch((e: unknown) => e), 'ENGINE_CLOSED')).toBe(true);
    await slow;
  });
});

describe('session host (real worker, tiny model)', () => {
  const noMerge: Record<string, PlainTensor> = {
    merge_mode: { dtype: 'int64', dims: [], data: BigInt64Array.of(0n) },
    merge_ratio: { dtype: 'float32', dims: [], data: Float32Array.of(0) },
  };

  it('opens the model in a child process, warms up, runs, and checks feeds there', async () => {
    const { h } = host(path.join(TINY_MODEL, 'model.onnx'), true);
    const info = await h.ready();
    expect(info.executionProvider).toBe('cpu');
    expect(info.inputs.map((i) => i.name)).toEqual(['video', 'keep_ratio', 'halt_threshold', 'merge_mode', 'merge_ratio']);
    expect(h.stats().pids[0]).not.toBe(process.pid);
    const video = { dtype: 'float32' as const, dims: [1, 3, 4, 48, 48], data: new Float32Array(3 * 4 * 48 * 48) };
    const out = await h.run({ feeds: { video, keep_ratio: scalar(0.5), halt_threshold: scalar(0.99), ...noMerge } });
    expect(out.outputs.logits?.dims).toEqual([1, 5]);
    expect(out.outputs.active_tokens?.data).toBeInstanceOf(BigInt64Array);
    const bad = await h.run({ feeds: { video } }).catch((e: unknown) => e);
    expect(isEngineError(bad, 'FEED_MISMATCH')).toBe(true);
    expect((bad as Error).message).toContain('missing input "keep_ratio"');
  });

  it('normalises frames sent as bytes in the worker: a batch of two gives what each normalised tensor gives alone', async () => {
    const { h } = host(path.join(TINY_MODEL, 'model.onnx'), true);
    await h.ready();
    const scalars = { keep_ratio: scalar(0.5), halt_threshold: scalar(0.99), ...noMerge };
    // Two videos of 4 distinct frames each, from different seeds, one of them with a repeated slot.
    const frames = (seed: number, slotToFrame: number[]) => ({ rgb: Uint8Array.from({ length: 4 * 48 * 48 * 3 }, (_, i) => (i * seed + seed * 7) % 251), slotToFrame });
    const videos = [frames(3, [0, 1, 2, 3]), frames(5, [0, 1, 1, 3])];
    const pre = new Preprocessor(TINY_INPUT);
    const alone = await Promise.all(
      videos.map((v) => h.run({ feeds: { video: { dtype: 'float32', dims: [1, 3, 4, 48, 48], data: pre.toTensor_(v.rgb, v.slotToFrame, new Float32Array(pre.tensorLength)) }, ...scalars } })),
    );
    const together = await h.run({ feeds: scalars, videos });
    expect(together.outputs.logits?.dims).toEqual([2, 5]);
    const logits = Array.from(together.outputs.logits?.data as Float32Array);
    alone.forEach((a, i) => Array.from(a.outputs.logits?.data as Float32Array).forEach((x, k) => expect(logits[i * 5 + k]).toBeCloseTo(x, 5)));
    expect(logits.slice(0, 5)).not.toEqual(logits.slice(5)); // the two videos really differ
  });

  it('survives a real worker being killed and serves the next request', async () => {
    const { h } = host(path.join(TINY_MODEL, 'model.onnx'), true);
    await h.ready();
    const pid = h.stats().pids[0] as number;
    process.kill(pid, 'SIGKILL');
    // A request sent in the instant between the kill and the exit event would fail as in flight;
    // wait until the host has noticed, as a caller retrying a WORKER_CRASHED error would.
    await vi.waitFor(() => expect(h.stats().restarts).toBe(1), { timeout: 10_000 });
    const video = { dtype: 'float32' as const, dims: [1, 3, 4, 48, 48], data: new Float32Array(3 * 4 * 48 * 48) };
    const out = await h.run({ feeds: { video, keep_ratio: scalar(0.5), halt_threshold: scalar(0.99), ...noMerge } });
    expect(out.outputs.logits?.dims).toEqual([1, 5]);
    expect(h.stats().pids[0]).not.toBe(pid);
    expect(h.stats().restarts).toBe(1);
  });
});
