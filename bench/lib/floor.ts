/**
 * Section 5's CPU floor: what a video must cost at least, from the two parts the service cannot do
 * without, each measured alone in this process with no server, no HTTP and no other stage running:
 *  - decode: the engine's decode worker pool (one worker, one video at a time, the service's decoder
 *    threads), its CPU read from /proc of the worker process, IPC of the frames included;
 *  - inference: one ORT session at one intra-op thread (no thread hand-offs to pay for) on the same
 *    clips' preprocessed tensors at the default knobs, batch 1; process CPU ÷ runs, with the wall
 *    time beside it as a check that one thread did the work.
 * PyAV's CPU on the same clips stands beside the decode part as its anchor. A service on those clips
 * is judged against decode + inference: what it spends beyond (its main process, the frames'
 * normalisation, IPC, waking pool threads) is overhead, not work that has to be done.
 *
 * Both parts are measured a second time paced as one client paces the service: each pauses after
 * every video for as long as the other part's video takes, so each sleeps between videos as the
 * service's decode and inference workers do when one video is in flight. On some hosts a process
 * woken from sleep spends far more CPU on the same work (docs/decisions.md, "The main process"); the
 * paced floor says how much of the one-client ratio is that host's price rather than the service's.
 */
import path from 'node:path';
import { pino } from 'pino';
import { engineConfig } from '../../src/engine/config.js';
import type { DecodeJob } from '../../src/engine/decode/decode-video.js';
import { createDecodePool } from '../../src/engine/decode/pool.js';
import { modelFeeds } from '../../src/engine/infer.js';
import { openSession } from '../../src/engine/inference/ort-session.js';
import { log, ROOT, runPython } from './env.js';
import { decodeTensor, defaults, type Subject } from './models.js';
import type { CpuFloor } from './report.js';
import { cpuSecondsOf } from './service.js';
import { mean } from './stats.js';

const silent = pino({ level: 'silent' });

export interface FloorOptions {
  /** Decoder threads per worker, as the service sets them (cores ÷ CONCURRENCY). */
  decodeThreads: number;
  /** How long each part repeats its pass over the clips (whole passes, at least one). */
  seconds: number;
  /** PyAV runs per clip after its warm run. */
  pyavReps: number;
}

/** Pause after each video, ms: the other part's wall time per video when paced, 0 back to back. */
type PauseMs = number;

/**
 * Passes over `items` (each item once per pass, a pause of `pauseMs` after each): `warm` runs one
 * pass unmeasured; `measure` repeats whole passes until `seconds` have gone by (at least one, so each
 * clip weighs the same as in the load's round robin) and gives the wall time spent inside `run`, the
 * pauses left out.
 */
function timedPasses<T>(items: T[], run: (item: T) => Promise<unknown>, pauseMs: PauseMs): { warm: () => Promise<void>; measure: (seconds: number) => Promise<{ passes: number; busyMs: number }> } {
  const pass = async (): Promise<number> => {
    let busyMs = 0;
    for (const item of items) {
      const t0 = performance.now();
      await run(item);
      busyMs += performance.now() - t0;
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    return busyMs;
  };
  return {
    warm: async () => void (await pass()),
    async measure(seconds) {
      const t0 = performance.now();
      let passes = 0;
      let busyMs = 0;
      do {
        busyMs += await pass();
        passes += 1;
      } while (performance.now() - t0 < seconds * 1000);
      return { passes, busyMs };
    },
  };
}

function decodeJob(s: Subject, file: string): DecodeJob {
  const input = s.model.manifest.input;
  const { maxDurationS, maxPixels } = engineConfig();
  return { file, name: path.basename(file), frames: input.frames, size: input.size, resizeShortSide: input.resize_short_side, scaleFlags: input.scale_flags, limits: { maxDurationS, maxPixels } };
}

/** The engine's decode worker pool alone: CPU ms and wall ms per video, from /proc of its one worker. */
export async function decodeAlone(s: Subject, files: string[], o: FloorOptions, pauseMs: PauseMs = 0): Promise<{ cpuMs: number; wallMs: number; videos: number }> {
  const config = engineConfig();
  const pool = createDecodePool({ workers: 1, init: { threads: o.decodeThreads, hwaccel: 'none' }, timeoutMs: config.decodeTimeoutMs, supervision: config, logger: silent, now: () => performance.now() });
  try {
    await pool.ready();
    const jobs = files.map((f) => decodeJob(s, f));
    const passes = timedPasses(jobs, (job) => pool.run(job), pauseMs);
    await passes.warm(); // page cache, the worker's first-use allocations
    const [pid] = pool.stats().pids;
    if (pid === undefined) throw new Error('the decode pool has no worker');
    const cpu0 = cpuSecondsOf(pid);
    const { passes: done, busyMs } = await passes.measure(o.seconds);
    const cpuS = cpuSecondsOf(pid) - cpu0;
    if (pool.stats().pids[0] !== pid) throw new Error('the decode worker was replaced while it was measured');
    const videos = done * jobs.length;
    return { cpuMs: (cpuS * 1000) / videos, wallMs: busyMs / videos, videos };
  } finally {
    await pool.close();
  }
}

/** The model alone at one intra-op thread on the clips' tensors: process CPU ms and wall ms per run. */
export async function inferenceAlone(s: Subject, tensors: Float32Array[], o: FloorOptions, pauseMs: PauseMs = 0): Promise<{ cpuMs: number; wallMs: number; runs: number }> {
  const { frames, size } = s.model.manifest.input;
  const session = await openSession(s.model.modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 1, spinning: false, logger: silent });
  try {
    const feeds = tensors.map((t) => modelFeeds(t, [1, 3, frames, size, size], defaults(s)));
    const passes = timedPasses(feeds, (f) => session.run(f), pauseMs);
    await passes.warm(); // the first run allocates ORT's arenas
    const cpu0 = process.cpuUsage();
    const { passes: done, busyMs } = await passes.measure(o.seconds);
    const cpu = process.cpuUsage(cpu0);
    const runs = done * feeds.length;
    return { cpuMs: (cpu.user + cpu.system) / 1000 / runs, wallMs: busyMs / runs, runs };
  } finally {
    await session.dispose();
  }
}

/** PyAV's CPU ms per video on the same clips at 1 thread (mean of each clip's median), in one Python process; NaN when it cannot run. */
export async function pyavAlone(s: Subject, files: string[], reps: number): Promise<number> {
  const { frames, size, resize_short_side: short } = s.model.manifest.input;
  const script = path.join(ROOT, 'bench', 'py', 'decode_anchors.py');
  try {
    const out = await runPython([script, '--pyav', String(frames), String(size), String(short), String(reps), ...files]);
    const answer = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { pyav?: Array<{ cpu_ms: number }>; error?: string };
    if (!answer.pyav) throw new Error(answer.error ?? 'no answer');
    return mean(answer.pyav.map((x) => x.cpu_ms));
  } catch (err) {
    log(`CPU floor: PyAV anchor not measured: ${(err as Error).message.split('\n')[0]}`);
    return Number.NaN;
  }
}

/**
 * The floor on one set of clips: decode alone, then inference alone, then the same two paced as one
 * client paces the service, then the PyAV anchor, one after the other.
 */
export async function measureFloor(s: Subject, files: string[], o: FloorOptions): Promise<CpuFloor> {
  const tensors = files.map((f) => decodeTensor(s, f));
  const decode = await decodeAlone(s, files, o);
  const inference = await inferenceAlone(s, tensors, o);
  const decodePaced = await decodeAlone(s, files, o, inference.wallMs);
  const inferencePaced = await inferenceAlone(s, tensors, o, decode.wallMs);
  const pyav = await pyavAlone(s, files, o.pyavReps);
  return {
    decode_ms: decode.cpuMs,
    decode_wall_ms: decode.wallMs,
    decode_videos: decode.videos,
    decode_threads: o.decodeThreads,
    pyav_ms: pyav,
    inference_ms: inference.cpuMs,
    inference_wall_ms: inference.wallMs,
    inference_runs: inference.runs,
    total_ms: decode.cpuMs + inference.cpuMs,
    paced: { decode_ms: decodePaced.cpuMs, inference_ms: inferencePaced.cpuMs, total_ms: decodePaced.cpuMs + inferencePaced.cpuMs },
  };
}
