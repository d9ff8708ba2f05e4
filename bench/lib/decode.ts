/**
 * Section 4: decoding. Per synthetic clip (testsrc2, generated once), 8 frames sampled at the
 * model's rule and scaled/cropped to the model input, wall and CPU ms side by side:
 *  - ours: the decode stage as a decode worker runs it (src/engine/decode/decode-video.ts), here in
 *    the bench process at 1 decoder thread (cores ÷ concurrency on the 2-core reference machine);
 *  - the ffmpeg command line: ffprobe, then one ffmpeg `select` pass, spawned per video (the path
 *    the service had before node-av; CPU includes the children's);
 *  - PyAV and decord (bench/requirements-decode.txt), same frames, same thread count, timed inside
 *    one Python process so that no interpreter start is counted (bench/py/decode_anchors.py). Ours
 *    and PyAV's runs alternate, one each in turn, so that both meet the same load on this shared
 *    machine: measured one block after the other, the wall-time ratio followed the load instead.
 * Then the decode share of engine.classify's end-to-end latency, per model.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { decodeVideo } from '../../src/engine/decode/decode-video.js';
import type { Engine } from '../../src/engine/index.js';
import { cropGeometry, filterChain } from '../../src/engine/preprocess.js';
import { segmentCentreIndices } from '../../src/engine/sample.js';
import { log, pythonServer } from './env.js';
import type { DecodeRow, ShareRow } from './report.js';
import { median } from './stats.js';

export interface ClipSpec {
  seconds: number;
  width: number;
  height: number;
  gop?: number;
  /** x264 by default; vp9 writes WebM. */
  codec?: 'h264' | 'vp9';
  /** Display-matrix rotation tag, in degrees. */
  rotate?: number;
}

/** A testsrc2 clip, generated once. */
export function syntheticClip(ffmpeg: string, dir: string, spec: ClipSpec): string {
  const gop = spec.gop ?? 250;
  const vp9 = spec.codec === 'vp9';
  const name = `testsrc2-${spec.height}p-${spec.seconds}s-g${gop}${vp9 ? '-vp9' : ''}${spec.rotate ? `-r${spec.rotate}` : ''}.${vp9 ? 'webm' : 'mp4'}`;
  const file = path.join(dir, name);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.part`;
  log(`generating ${name}`);
  const codec = vp9 ? ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '2M'] : ['-c:v', 'libx264', '-preset', 'veryfast'];
  execFileSync(ffmpeg, [
    '-y', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=25:duration=${spec.seconds}`,
    ...codec, '-g', String(gop), '-pix_fmt', 'yuv420p', '-f', vp9 ? 'webm' : 'mp4', tmp,
  ]);
  if (spec.rotate) {
    // ffmpeg 5 keeps a rotate tag only on a stream copy.
    execFileSync(ffmpeg, ['-y', '-v', 'error', '-i', tmp, '-c', 'copy', '-metadata:s:v:0', `rotate=${spec.rotate}`, '-f', 'mp4', `${tmp}.rot`]);
    renameSync(`${tmp}.rot`, tmp);
  }
  renameSync(tmp, file);
  return file;
}

export interface DecodeOptions {
  frames: number;
  size: number;
  shortSide: number;
  scaleFlags: string;
  reps: number;
}

interface Timed {
  wall_ms: number;
  cpu_ms: number;
}

/** CPU seconds of this process plus the children it has reaped (/proc/self/stat utime stime cutime cstime). */
function cpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** This process's CPU ms at microsecond resolution (/proc's ticks are 10 ms: a third of a 3 s clip's decode). */
function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function timed(reps: number, run: () => void, clock: () => number = cpuMs): Timed {
  run(); // warm: page cache, first-use allocations
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = clock();
    const t0 = performance.now();
    run();
    wall.push(performance.now() - t0);
    cpu.push(clock() - c0);
  }
  return { wall_ms: median(wall), cpu_ms: median(cpu) };
}

/** Repetitions for a video that takes `ms`: at least `reps`, and enough for ~0.5 s (short clips are noisy), at most 25. */
function repsFor(ms: number, reps: number): number {
  return Math.max(reps, Math.min(25, Math.ceil(500 / Math.max(ms, 1))));
}

export async function measureDecode(binaries: { ffmpeg: string; ffprobe: string }, file: string, label: string, o: DecodeOptions): Promise<DecodeRow> {
  const job = { file, name: file, frames: o.frames, size: o.size, resizeShortSide: o.shortSide, scaleFlags: o.scaleFlags, limits: { maxDurationS: Infinity, maxPixels: Infinity } };
  const first = decodeVideo(job, { threads: 1, hardware: null });
  const t0 = performance.now();
  decodeVideo(job, { threads: 1, hardware: null });
  const reps = repsFor(performance.now() - t0, o.reps);
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'py', 'decode_anchors.py');
  const anchors = pythonServer([script, '--serve', file, String(o.frames), String(o.size), String(o.shortSide)]);
  const ask = async (name: 'pyav' | 'decord'): Promise<Timed | undefined> => {
    const answer = JSON.parse(await anchors.ask(name)) as Timed & { error?: string };
    if (answer.error) log(`decode ${label}: ${answer.error}`);
    return answer.error ? undefined : answer;
  };
  const oursRuns: Timed[] = [];
  const pyavRuns: Timed[] = [];
  const decordRuns: Timed[] = [];
  try {
    await ask('pyav'); // its warm run
    for (let i = 0; i < reps; i++) {
      // In process, no children: the microsecond clock. Who goes first alternates too.
      const mine = (): void => void oursRuns.push(timed(1, () => void decodeVideo(job, { threads: 1, hardware: null }), ownCpuMs));
      if (i % 2 === 0) mine();
      const p = await ask('pyav');
      if (p) pyavRuns.push(p);
      if (i % 2 === 1) mine();
    }
    for (let i = 0; i < reps; i++) {
      const d = await ask('decord');
      if (d) decordRuns.push(d);
    }
  } catch (err) {
    log(`decode ${label}: anchors failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  } finally {
    anchors.close();
  }
  const medians = (runs: Timed[]): Timed => ({ wall_ms: median(runs.map((r) => r.wall_ms)), cpu_ms: median(runs.map((r) => r.cpu_ms)) });
  const ours = oursRuns.length > 0 ? medians(oursRuns) : timed(reps, () => void decodeVideo(job, { threads: 1, hardware: null }), ownCpuMs);

  // The command-line path: what every request cost before (ffprobe + one select pass).
  const { info } = first;
  const geometry = cropGeometry(info.width, info.height, o.shortSide, o.size);
  const wanted = [...new Set(segmentCentreIndices(first.frameCount, o.frames))];
  const vf = `select='${wanted.map((i) => `eq(n\\,${i})`).join('+')}',${filterChain(geometry, o.scaleFlags)}`;
  const cli = timed(o.reps, () => {
    const probe = spawnSync(binaries.ffprobe, ['-v', 'error', '-of', 'json', '-show_format', '-show_streams', file]);
    if (probe.status !== 0) throw new Error(`${label}: ffprobe failed`);
    const run = spawnSync(binaries.ffmpeg, ['-v', 'error', '-nostdin', '-i', file, '-map', `0:${info.streamIndex}`, '-an', '-vf', vf, '-vsync', 'passthrough', '-frames:v', String(wanted.length), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 26 });
    if (run.status !== 0 || run.stdout.length !== wanted.length * o.size * o.size * 3) throw new Error(`${label}: ffmpeg select failed`);
  });

  const pyav = pyavRuns.length > 0 ? medians(pyavRuns) : undefined;
  const decord = decordRuns.length > 0 ? medians(decordRuns) : undefined;
  log(`decode ${label}: ours ${ours.wall_ms.toFixed(0)}/${ours.cpu_ms.toFixed(0)} ms wall/CPU, ffmpeg CLI ${cli.wall_ms.toFixed(0)}/${cli.cpu_ms.toFixed(0)}, PyAV ${pyav?.wall_ms.toFixed(0) ?? '–'}/${pyav?.cpu_ms.toFixed(0) ?? '–'}, decord ${decord?.wall_ms.toFixed(0) ?? '–'}/${decord?.cpu_ms.toFixed(0) ?? '–'}`);
  const nan = { wall_ms: Number.NaN, cpu_ms: Number.NaN };
  return {
    clip: label,
    width: info.width,
    height: info.height,
    duration_s: info.durationS ?? Number.NaN,
    frames: first.frameCount,
    reps,
    decoded_frames: first.decodedFrames,
    planned_frames: first.plannedFrames,
    seeks: first.seeks,
    ours,
    cli,
    pyav: pyav ?? nan,
    decord: decord ?? nan,
  };
}

/** engine.classify on each file `reps` times: medians of the engine's own stage timings. */
export async function measureShare(engine: Engine, clips: Array<{ label: string; files: string[] }>, reps: number): Promise<ShareRow[]> {
  const rows: ShareRow[] = [];
  await engine.classify(clips[0]?.files[0] as string, engine.validateKnobs({})); // warm the caches once
  for (const clip of clips) {
    const decode: number[] = [];
    const infer: number[] = [];
    const total: number[] = [];
    const share: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (const file of clip.files) {
        const t = (await engine.classify(file, engine.validateKnobs({}))).timings_s;
        decode.push(t.decode);
        infer.push(t.infer);
        total.push(t.total);
        share.push(t.decode / t.total);
      }
    }
    rows.push({ model: engine.manifest.name, clip: clip.label, reps: reps * clip.files.length, decode_s: median(decode), infer_s: median(infer), total_s: median(total), share: median(share) });
  }
  return rows;
}
