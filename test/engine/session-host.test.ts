import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { createSessionHost, type SessionHost } from '../../src/engine/session-host.js';
import type { PlainTensor } from '../../src/engine/ort-session.js';
import { captureLogger } from '../helpers/logger.js';
import { TINY_MODEL } from '../helpers/paths.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const fakeEntry = { file: path.join(here, '..', 'fixtures', 'fake-worker.ts'), execArgv: ['--import', tsx] };

const hosts: SessionHost[] = [];
function host(modelPath: string, real = false) {
  const { logger, lines } = captureLogger();
  const h = createSessionHost({
    modelPath,
    executionProviders: ['cpu'],
    warmupScalars: { keep_ratio: 0.5, halt_threshold: 0.99 },
    logger,
    now: () => performance.now(),
    entry: real ? undefined : fakeEntry,
  });
  hosts.push(h);
  return { h, lines };
}
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

const feeds = (keep: number): Record<string, PlainTensor> => ({ keep_ratio: { dtype: 'float32', dims: [], data: Float32Array.of(keep) } });
const pidOf = (r: { outputs: Record<string, PlainTensor> }) => (r.outputs.pid?.data as Int32Array)[0];

describe('session host (fake worker)', () => {
  it('fails only the request in flight when the worker crashes, then replaces the worker', async () => {
    const { h, lines } = host('ok');
    await h.ready();
    const first = await h.run(feeds(0.1));
    const firstPid = pidOf(first);
    const crashing = h.run(feeds(0.666));
    const queued = h.run(feeds(0.2)); // waits in the host's queue while the crash happens
    const crash = await crashing.catch((e: unknown) => e);
    expect(isEngineError(crash, 'WORKER_CRASHED')).toBe(true);
    expect((crash as Error).message).toContain('signal SIGSEGV');
    const after = await queued;
    expect(pidOf(after)).not.toBe(firstPid);
    expect(h.stats().restarts).toBe(1);
    expect(lines.some((l) => l.msg === 'inference worker crashed; starting a new one')).toBe(true);
  });

  it('reports queue and infer time per request', async () => {
    const { h } = host('ok');
    await h.ready();
    const slow = h.run(feeds(0.5));
    const next = h.run(feeds(0.1));
    const [a, b] = await Promise.all([slow, next]);
    expect(Number.isFinite(a.inferS)).toBe(true);
    expect(b.queueS).toBeGreaterThan(a.queueS); // it waited in the queue while the slow one ran
  });

  it('drops a queued request whose signal aborts', async () => {
    const { h } = host('ok');
    await h.ready();
    const slow = h.run(feeds(0.5));
    const controller = new AbortController();
    const queued = h.run(feeds(0.1), controller.signal);
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
    expect(isEngineError(await h.run(feeds(0.1)).catch((e: unknown) => e), 'MODEL_INVALID')).toBe(true);
  });

  it('gives up after workers keep dying during start', async () => {
    const { h } = host('die-on-start');
    const error = await h.ready().catch((e: unknown) => e);
    expect(isEngineError(error, 'MODEL_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/died 3 times while starting \(exit code 7/);
  });

  it('refuses work after close and fails what was queued', async () => {
    const { h } = host('ok');
    await h.ready();
    const slow = h.run(feeds(0.5)).catch((e: unknown) => e);
    const queued = h.run(feeds(0.1)).catch((e: unknown) => e);
    await h.close();
    expect(isEngineError(await queued, 'ENGINE_CLOSED')).toBe(true);
    expect(isEngineError(await h.run(feeds(0.1)).catch((e: unknown) => e), 'ENGINE_CLOSED')).toBe(true);
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
    expect(h.stats().pid).not.toBe(process.pid);
    const video = { dtype: 'float32' as const, dims: [1, 3, 4, 48, 48], data: new Float32Array(3 * 4 * 48 * 48) };
    const out = await h.run({ video, keep_ratio: feeds(0.5).keep_ratio as PlainTensor, halt_threshold: { dtype: 'float32', dims: [], data: Float32Array.of(0.99) }, ...noMerge });
    expect(out.outputs.logits?.dims).toEqual([1, 5]);
    expect(out.outputs.active_tokens?.data).toBeInstanceOf(BigInt64Array);
    const bad = await h.run({ video }).catch((e: unknown) => e);
    expect(isEngineError(bad, 'FEED_MISMATCH')).toBe(true);
    expect((bad as Error).message).toContain('missing input "keep_ratio"');
  });

  it('survives a real worker being killed and serves the next request', async () => {
    const { h } = host(path.join(TINY_MODEL, 'model.onnx'), true);
    await h.ready();
    const pid = h.stats().pid as number;
    process.kill(pid, 'SIGKILL');
    // A request sent in the instant between the kill and the exit event would fail as in flight;
    // wait until the host has noticed, as a caller retrying a WORKER_CRASHED error would.
    await vi.waitFor(() => expect(h.stats().restarts).toBe(1), { timeout: 10_000 });
    const video = { dtype: 'float32' as const, dims: [1, 3, 4, 48, 48], data: new Float32Array(3 * 4 * 48 * 48) };
    const scalars = { keep_ratio: feeds(0.5).keep_ratio as PlainTensor, halt_threshold: feeds(0.99).keep_ratio as PlainTensor, ...noMerge };
    const out = await h.run({ video, ...scalars });
    expect(out.outputs.logits?.dims).toEqual([1, 5]);
    expect(h.stats().pid).not.toBe(pid);
    expect(h.stats().restarts).toBe(1);
  });
});
