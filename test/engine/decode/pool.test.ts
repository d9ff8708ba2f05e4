/**
 * The decode pool with real processes: a fake worker (test/fixtures/fake-decode-worker.ts) for the
 * faults, the real worker (node-av) for real videos and for the NVDEC fallback.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeVideo, type DecodeJob } from '../../../src/engine/decode/decode-video.js';
import { engineConfig } from '../../../src/engine/config.js';
import { createDecodePool, type DecodePool, type Hwaccel } from '../../../src/engine/decode/pool.js';
import type { WorkerSupervision } from '../../../src/engine/workers/pool.js';
import { isEngineError } from '../../../src/errors.js';
import { captureLogger } from '../../helpers/logger.js';
import { fixture } from '../../helpers/media.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const fakeEntry = { file: path.join(here, '..', '..', 'fixtures', 'fake-decode-worker.ts'), execArgv: ['--import', tsx] };

const pools: DecodePool[] = [];
interface PoolSettings {
  fake?: boolean;
  workers?: number;
  timeoutMs?: number;
  maxVideosPerWorker?: number;
  hwaccel?: Hwaccel;
  supervision?: Partial<WorkerSupervision>;
  onFatal?: (e: unknown) => void;
}
function pool({ fake = true, workers = 1, timeoutMs = 20_000, maxVideosPerWorker, hwaccel = 'none', supervision, onFatal }: PoolSettings = {}) {
  const { logger, lines } = captureLogger();
  const p = createDecodePool({
    workers,
    init: { threads: 1, hwaccel },
    timeoutMs,
    maxVideosPerWorker,
    supervision: { ...engineConfig(), workerRestartBackoffMs: 20, workerRestartBackoffMaxMs: 200, workerMaxDownMs: 0, ...supervision },
    logger,
    now: () => performance.now(),
    onFatal,
    entry: fake ? fakeEntry : undefined,
  });
  pools.push(p);
  return { p, lines };
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  delete process.env.FAKE_DECODE_DIE_AT_START;
  delete process.env.FAKE_DECODE_INIT_FAIL;
  delete process.env.FAKE_DECODE_NEVER_READY;
});

const job = (file: string): DecodeJob => ({ file, name: file, frames: 8, size: 112, resizeShortSide: 128, scaleFlags: 'bilinear', limits: { maxDurationS: 3600, maxPixels: 1e8 } });
const pidOf = async (p: DecodePool) => (await p.run(job('ok'))).seeks;
/** Worker starts go through tsx: allow for a loaded machine. */
const WAIT = { timeout: 20_000, interval: 20 };
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('decode pool (fake worker)', () => {
  it('kills a worker stuck past the wall-clock limit, fails that video with DECODE_TIMEOUT, and replaces the worker', async () => {
    const { p } = pool({ timeoutMs: 300 });
    await p.ready();
    const before = await pidOf(p);
    const error = await p.run(job('hang')).catch((e: unknown) => e);
    expect(isEngineError(error, 'DECODE_TIMEOUT')).toBe(true);
    await vi.waitFor(() => expect(alive(before)).toBe(false), WAIT);
    const after = await pidOf(p);
    expect(after).not.toBe(before);
    expect(p.stats().restarts).toBe(1);
  });

  it('retires a worker after maxVideosPerWorker videos for a fresh one, failing none, the old process gone, counted apart from crashes', async () => {
    const { p, lines } = pool({ maxVideosPerWorker: 3 });
    await p.ready();
    const one = [await pidOf(p), await pidOf(p), await pidOf(p)];
    expect(new Set(one).size).toBe(1);
    // Queued behind the retirement: they wait for the fresh worker and all succeed.
    const two = await Promise.all([pidOf(p), pidOf(p), pidOf(p), pidOf(p)]);
    expect(new Set(two.slice(0, 3)).size).toBe(1);
    expect(two[0]).not.toBe(one[0]);
    expect(two[3]).not.toBe(two[0]);
    await vi.waitFor(() => expect(alive(one[0] as number)).toBe(false), WAIT);
    expect(p.stats()).toMatchObject({ retired: 2, restarts: 0, failedStarts: 0, workers: 1 });
    expect(lines.filter((l) => l.msg === 'decode worker retired after its job limit; a fresh one takes its place').map((l) => l.jobs)).toEqual([3, 3]);
    expect(lines.some((l) => /crashed|died/.test(String(l.msg)))).toBe(false);
  });

  it('retires one slot at a time, so a decode worker is always ready while two reach the limit together', async () => {
    const { p } = pool({ workers: 2, maxVideosPerWorker: 2 });
    await p.ready();
    await vi.waitFor(() => expect(p.stats().alive).toBe(2), WAIT);
    let fewest = 2;
    const watch = setInterval(() => (fewest = Math.min(fewest, p.stats().alive)), 2);
    try {
      // A slot that reaches the limit while the other's successor starts serves on until it is ready.
      for (let round = 0; round < 400 && p.stats().retired < 3; round++) {
        await Promise.all([pidOf(p), pidOf(p)]);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      clearInterval(watch);
    }
    expect(fewest).toBe(1);
    expect(p.stats().retired).toBeGreaterThanOrEqual(3);
    expect(p.stats().restarts).toBe(0);
  });

  it('counts a successor that dies while starting as a failed start, not a restart, and recovers with backoff', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'decode-pool-'));
    const flag = path.join(dir, 'die');
    const { p } = pool({ maxVideosPerWorker: 1 });
    try {
      await p.ready();
      writeFileSync(flag, '');
      process.env.FAKE_DECODE_DIE_AT_START = flag; // the successors, forked from now on, die at start
      await pidOf(p);
      await vi.waitFor(() => expect(p.stats().failedStarts).toBeGreaterThanOrEqual(1), WAIT);
      expect(p.stats()).toMatchObject({ retired: 1, restarts: 0 });
      rmSync(flag);
      // Refused fast while the slot is down (DECODER_UNAVAILABLE), served once a start succeeds.
      await vi.waitFor(async () => expect(await pidOf(p)).toBeGreaterThan(0), WAIT);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails only the video whose worker crashed, with a clear error, while the other worker carries on', async () => {
    const { p, lines } = pool({ workers: 2 });
    await p.ready();
    await vi.waitFor(() => expect(p.stats().alive).toBe(2), WAIT);
    const [crashed, slow] = await Promise.allSettled([p.run(job('crash')), p.run(job('slow'))]);
    expect(crashed.status).toBe('rejected');
    const error = (crashed as PromiseRejectedResult).reason as Error;
    expect(isEngineError(error, 'DECODER_CRASHED')).toBe(true);
    expect(error.message).toMatch(/died while decoding crash \(exit code none, signal SIGSEGV\)/);
    expect(slow.status).toBe('fulfilled');
    await vi.waitFor(() => expect(p.stats().alive).toBe(2), WAIT);
    expect(lines.some((l) => l.msg === 'decode worker crashed; starting a new one' && l.signal === 'SIGSEGV')).toBe(true);
    expect((await p.run(job('ok'))).frameCount).toBe(1);
  });

  it('restarts workers that die before they are ready with backoff, reports itself unavailable meanwhile, and recovers', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'decode-pool-'));
    const flag = path.join(dir, 'die');
    writeFileSync(flag, '');
    process.env.FAKE_DECODE_DIE_AT_START = flag;
    try {
      const { p, lines } = pool();
      const died = 'decode worker died while starting; retrying after a backoff';
      await vi.waitFor(() => expect(lines.filter((l) => l.msg === died).length).toBeGreaterThanOrEqual(3), WAIT);
      expect(p.stats().alive).toBe(0);
      const delays = lines.filter((l) => l.msg === died).map((l) => l.retryInMs as number);
      expect(delays.slice(0, 3)).toEqual([20, 40, 80]);
      const refused = await p.run(job('ok')).catch((e: unknown) => e);
      expect(isEngineError(refused, 'DECODER_UNAVAILABLE')).toBe(true);
      rmSync(flag);
      await p.ready();
      await vi.waitFor(() => expect(p.stats().alive).toBe(1), WAIT);
      expect((await p.run(job('ok'))).frameCount).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives up after maxDownMs without a ready worker once started: onFatal once, state stopped, not accepting', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'decode-pool-'));
    const flag = path.join(dir, 'die');
    process.env.FAKE_DECODE_DIE_AT_START = flag;
    try {
      const fatal: unknown[] = [];
      // Counted from the first failure (supervisor.ts), here the kill below.
      const { p } = pool({ supervision: { workerMaxDownMs: 5_000 }, onFatal: (e) => fatal.push(e) });
      await p.ready();
      expect(p.stats()).toMatchObject({ state: 'up', alive: 1, failedStarts: 0 });
      writeFileSync(flag, ''); // every replacement from now on dies as it starts
      process.kill(await pidOf(p), 'SIGKILL');
      await vi.waitFor(() => expect(fatal).toHaveLength(1), WAIT);
      expect(isEngineError(fatal[0], 'DECODER_UNAVAILABLE')).toBe(true);
      expect(p.accepting()).toBe(false);
      expect(p.stats().state).toBe('stopped');
      expect(p.stats().failedStarts).toBeGreaterThanOrEqual(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('kills a worker that does not become ready within workerStartTimeoutMs, counts a failed start and refuses work while it retries', async () => {
    process.env.FAKE_DECODE_NEVER_READY = '1';
    const { p, lines } = pool({ supervision: { workerStartTimeoutMs: 500 } });
    const firstPid = p.stats().pids[0] as number;
    await vi.waitFor(() => expect(p.stats().failedStarts).toBeGreaterThanOrEqual(1), WAIT);
    expect(lines.find((l) => l.msg === 'decode worker did not become ready in time; killing it')).toMatchObject({ timeoutMs: 500, pid: firstPid });
    expect(lines.find((l) => l.msg === 'decode worker died while starting; retrying after a backoff')).toMatchObject({ killedFor: 'start-timeout', signal: 'SIGKILL' });
    // Down until a worker is ready, through the backoff and the replacement's own start.
    expect(p.stats()).toMatchObject({ state: 'down', alive: 0 });
    expect(p.accepting()).toBe(false);
    expect(alive(firstPid)).toBe(false);
    await expect(p.run(job('ok'))).rejects.toMatchObject({ code: 'DECODER_UNAVAILABLE' });
  });

  it('gives up with DECODER_UNAVAILABLE when workers keep timing out at start for workerMaxDownMs, leaving no process behind', async () => {
    process.env.FAKE_DECODE_NEVER_READY = '1';
    // The start timeout is well inside the limit: the pool gives up on starts that timed out, not on a first one still loading.
    const { p, lines } = pool({ supervision: { workerStartTimeoutMs: 500, workerMaxDownMs: 1500 } });
    await expect(p.ready()).rejects.toMatchObject({ code: 'DECODER_UNAVAILABLE', message: expect.stringMatching(/^no decode worker could start for \d+ ms; giving up$/) });
    expect(lines.some((l) => l.msg === 'decode worker did not become ready in time; killing it')).toBe(true);
    expect(p.stats().state).toBe('stopped');
    expect(p.accepting()).toBe(false);
    await vi.waitFor(() => expect(p.stats().workers).toBe(0), WAIT); // the start still hanging is killed too
  });

  it('refuses to start when the worker cannot initialise node-av at all', async () => {
    process.env.FAKE_DECODE_INIT_FAIL = '1';
    const { p } = pool();
    await expect(p.ready()).rejects.toMatchObject({ code: 'DECODE_FAILED', message: 'node-av cannot load' });
    await expect(p.run(job('ok'))).rejects.toMatchObject({ code: 'DECODE_FAILED' });
  });

  it('drops a queued video when its request is cancelled, and kills the worker of a running one', async () => {
    const { p } = pool({ timeoutMs: 60_000 });
    await p.ready();
    const before = await pidOf(p);
    const running = new AbortController();
    const queued = new AbortController();
    const a = p.run(job('hang'), running.signal).catch((e: unknown) => e);
    const b = p.run(job('ok'), queued.signal).catch((e: unknown) => e);
    queued.abort();
    expect(isEngineError(await b, 'ABORTED')).toBe(true);
    running.abort();
    expect(isEngineError(await a, 'ABORTED')).toBe(true);
    await vi.waitFor(() => expect(alive(before)).toBe(false), WAIT);
    expect(await pidOf(p)).not.toBe(before);
  });

  it('leaves no process behind when closed, even one stuck in a video', async () => {
    const { p } = pool({ workers: 2 });
    await p.ready();
    await vi.waitFor(() => expect(p.stats().alive).toBe(2), WAIT);
    const pid = await pidOf(p);
    const stuck = p.run(job('hang')).catch((e: unknown) => e);
    await p.close();
    expect(isEngineError(await stuck, 'ENGINE_CLOSED')).toBe(true);
    expect(alive(pid)).toBe(false);
    expect(p.stats().workers).toBe(0);
    await expect(p.run(job('ok'))).rejects.toMatchObject({ code: 'ENGINE_CLOSED' });
  });
});

describe('decode pool (real worker, node-av)', () => {
  it('decodes a video in a worker process and explains libav refusals', async () => {
    const { p } = pool({ fake: false });
    const info = await p.ready();
    expect(info).toMatchObject({ workers: 1, threads: 1, hardware: 'cpu' });
    expect(info.libav).toMatch(/^FFmpeg 8\./);
    const r = await p.run(job(fixture('clip.mp4')));
    expect(r.indices).toEqual([3, 9, 15, 21, 28, 34, 40, 46]);
    expect(r.rgb).toBeInstanceOf(Uint8Array);
    const error = (await p.run(job(fixture('truncated.mp4'))).catch((e: unknown) => e)) as Error;
    expect(isEngineError(error, 'VIDEO_UNDECODABLE')).toBe(true);
    expect(error.message).toMatch(/moov atom not found/);
  });

  it('gives each video its own frames from the worker\'s one buffer, and a retired worker exits cleanly', async () => {
    const { p, lines } = pool({ fake: false, maxVideosPerWorker: 3 });
    await p.ready();
    const fresh = (name: string) => decodeVideo(job(fixture(name)), { threads: 1, hardware: null }).rgb;
    // The same worker, the same buffer: a longer video, then one with fewer distinct frames, whose
    // answer must be its own frames only, then one left as a file for the inference worker.
    expect((await p.run(job(fixture('clip.mp4')))).rgb).toEqual(fresh('clip.mp4'));
    const short = await p.run(job(fixture('three.mp4')));
    expect(short.rgb).toEqual(fresh('three.mp4'));
    expect(short.rgb.length).toBeLessThan(fresh('clip.mp4').length);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'decode-pool-'));
    try {
      const framesFile = path.join(dir, 'frames');
      const filed = await p.run({ ...job(fixture('gop.mp4')), framesFile });
      expect(filed.rgb.length).toBe(0);
      expect(new Uint8Array(readFileSync(framesFile))).toEqual(fresh('gop.mp4'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await vi.waitFor(() => expect(p.stats()).toMatchObject({ retired: 1, restarts: 0, alive: 1 }), WAIT);
    expect((await p.run(job(fixture('clip.mp4')))).rgb).toEqual(fresh('clip.mp4')); // a fresh worker
    expect(lines.some((l) => Number(l.level) >= 40)).toBe(false);
  });

  // On one core libavfilter's default is one thread too: the test could not tell the two apart.
  it.skipIf(os.availableParallelism() < 2)('filters on the decoder\'s threads: no thread starts in the worker while it decodes', async () => {
    const { p } = pool({ fake: false });
    await p.ready();
    await p.run(job(fixture('clip.mp4'))); // the worker's lazily made threads (libuv, V8) exist now
    const pid = p.stats().pids[0] as number;
    const threads = (): number => {
      try {
        return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      } catch {
        return Number.NaN; // the worker gone: fails below rather than throwing in the timer
      }
    };
    const idle = threads();
    // libavfilter's default would start threads for each video's graph, alive while its frames are scaled.
    const seen: number[] = [];
    const sampler = setInterval(() => seen.push(threads()), 1);
    try {
      for (let i = 0; i < 20; i++) await p.run(job(fixture('clip.mp4')));
    } finally {
      clearInterval(sampler);
    }
    expect(seen.length).toBeGreaterThan(20);
    expect(seen.filter((n) => !Number.isFinite(n))).toEqual([]);
    expect(Math.max(...seen)).toBeLessThanOrEqual(idle);
  });

  it('kills and replaces a real worker that runs past the limit', async () => {
    const { p } = pool({ fake: false, timeoutMs: 1 });
    await p.ready();
    const error = await p.run(job(fixture('gop.mp4'))).catch((e: unknown) => e);
    expect(isEngineError(error, 'DECODE_TIMEOUT')).toBe(true);
    await vi.waitFor(() => expect(p.stats()).toMatchObject({ restarts: 1, alive: 1 }), WAIT);
  });

  it('falls back from DECODE_HWACCEL=cuda to the CPU with the reason logged (no GPU here)', async () => {
    const { p, lines } = pool({ fake: false, hwaccel: 'cuda' });
    expect((await p.ready()).hardware).toBe('cpu');
    const line = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('decoding on the CPU'));
    expect(line).toMatchObject({ level: 40, hwaccel: 'cuda', hardware: 'cpu' });
    expect(line?.reason).toMatch(/CUDA/);
    expect((await p.run(job(fixture('clip.mp4')))).hardware).toBe(false);
  });
});
