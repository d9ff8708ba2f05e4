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
import type { CpuFloor, CpuFloorRow, FloorStep, ServiceStep } from './report.js';
import { bestStep, cpuSecondsOf } from './service.js';
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
 * One pass over `items` per call of `pass`, pausing `pauseMs` after each item; `busy.ms` sums the
 * wall time spent inside `run` (the pauses left out), for the caller to reset after its warm pass.
 */
function pacedPasses<T>(items: T[], run: (item: T) => Promise<unknown>, pauseMs: PauseMs): { pass: () => Promise<void>; busy: { ms: number } } {
  const busy = { ms: 0 };
  const pass = async (): Promise<void> => {
    for (const item of items) {
      const t0 = performance.now();
      await run(item);
      busy.ms += performance.now() - t0;
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  return { pass, busy };
}

/** Repeats `pass` (one run over every clip) until `seconds` have gone by, at least once; whole passes, so each clip weighs the same as in the load's round robin. */
async function repeatFor(seconds: number, pass: () => Promise<void>): Promise<{ passes: number; wallMs: number }> {
  const t0 = performance.now();
  let passes = 0;
  do {
    await pass();
    passes += 1;
  } while (performance.now() - t0 < seconds * 1000);
  return { passes, wallMs: performance.now() - t0 };
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
    const { pass, busy } = pacedPasses(jobs, (job) => pool.run(job), pauseMs);
    await pass(); // warm: page cache, the worker's first-use allocations
    busy.ms = 0;
    const [pid] = pool.stats().pids;
    if (pid === undefined) throw new Error('the decode pool has no worker');
    const cpu0 = cpuSecondsOf(pid);
    const { passes } = await repeatFor(o.seconds, pass);
    const cpuS = cpuSecondsOf(pid) - cpu0;
    if (pool.stats().pids[0] !== pid) throw new Error('the decode worker was replaced while it was measured');
    const videos = passes * jobs.length;
    return { cpuMs: (cpuS * 1000) / videos, wallMs: busy.ms / videos, videos };
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
    const { pass, busy } = pacedPasses(feeds, (f) => session.run(f), pauseMs);
    await pass(); // warm: the first run allocates ORT's arenas
    busy.ms = 0;
    const cpu0 = process.cpuUsage();
    const { passes } = await repeatFor(o.seconds, pass);
    const cpu = process.cpuUsage(cpu0);
    const runs = passes * feeds.length;
    return { cpuMs: (cpu.user + cpu.system) / 1000 / runs, wallMs: busy.ms / runs, runs };
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

function floorStep(step: ServiceStep, floor: CpuFloor): FloorStep | undefined {
  const c = step.cpu;
  if (c?.inference_s_per_video === undefined || c.decode_s_per_video === undefined) return undefined;
  const cpu = { main: c.main_s_per_video * 1000, inference: c.inference_s_per_video * 1000, decode: c.decode_s_per_video * 1000 };
  const total = cpu.main + cpu.inference + cpu.decode;
  return { concurrency: step.concurrency, duration_s: step.duration_s, videos: step.ok, throughput: step.throughput, cpu_ms: { ...cpu, total }, ratio: total / floor.total_ms, ...(floor.paced ? { ratio_paced: total / floor.paced.total_ms } : {}) };
}

/** One set of clips' row: the step at one client (else the fewest) and the saturation step (the most videos/s), against the floor. */
export function floorRow(clips: string, files: number, role: CpuFloorRow['role'], floor: CpuFloor, steps: ServiceStep[]): CpuFloorRow | undefined {
  if (steps.length === 0) return undefined;
  const fewest = steps.reduce((a, b) => (b.concurrency < a.concurrency ? b : a));
  const best = bestStep(steps);
  const one = floorStep(fewest, floor);
  // At saturation no worker sleeps between videos: the floor measured back to back is its measure.
  const saturation = floorStep(best, { ...floor, paced: undefined });
  const cores = best.cpu?.cores;
  if (!one || !saturation || cores === undefined) return undefined;
  const limit = cores / (floor.total_ms / 1000);
  return { clips, files, role, cores, floor, one, saturation, floor_limit: limit, ratio_floor_limit: saturation.throughput / limit };
}
