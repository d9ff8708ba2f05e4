/**
 * Section 4: decoding. Reuses the engine's decode path (src/engine/decode.ts, the code
 * scripts/bench-decode.ts measures) and the same synthetic clips (testsrc2, H.264, x264's default
 * keyframe interval of 250 frames), compared with decoding every frame of the file through the same
 * scale/crop chain. Then the decode share of engine.classify's end-to-end latency, per model.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { chooseStrategy, decodeFrames, type DecodeStrategy } from '../../src/engine/decode.js';
import { inputUrl, type FfmpegRunner } from '../../src/engine/ffmpeg-runner.js';
import type { Engine } from '../../src/engine/index.js';
import { cropGeometry, filterChain } from '../../src/engine/preprocess.js';
import { probe } from '../../src/engine/probe.js';
import { log } from './env.js';
import type { DecodeRow, ShareRow } from './report.js';
import { median } from './stats.js';

export interface ClipSpec {
  seconds: number;
  width: number;
  height: number;
  gop?: number;
}

/** A testsrc2 clip, generated once (same recipe and, for 1080p, the same file name as scripts/bench-decode.ts). */
export function syntheticClip(ffmpeg: string, dir: string, spec: ClipSpec): string {
  const gop = spec.gop ?? 250;
  const file = path.join(dir, `testsrc2-${spec.height}p-${spec.seconds}s-g${gop}.mp4`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.part`;
  log(`generating ${path.basename(file)}`);
  execFileSync(ffmpeg, [
    '-y', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=25:duration=${spec.seconds}`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-g', String(gop), '-pix_fmt', 'yuv420p', '-f', 'mp4', tmp,
  ]);
  renameSync(tmp, file);
  return file;
}

export interface DecodeOptions {
  frames: number;
  size: number;
  shortSide: number;
  scaleFlags: string;
  reps: number;
  /** Repetitions of the every-frame decode (slow on long clips). */
  fullReps: number;
  seekMinDurationS: number;
}

export async function measureDecode(runner: FfmpegRunner, file: string, label: string, o: DecodeOptions): Promise<DecodeRow> {
  const probeMs: number[] = [];
  let info = await probe(runner, file, { timeoutMs: 30_000 });
  for (let i = 0; i < o.reps; i++) {
    const t0 = performance.now();
    info = await probe(runner, file, { timeoutMs: 30_000 });
    probeMs.push(performance.now() - t0);
  }
  const geometry = cropGeometry(info.width, info.height, o.shortSide, o.size);
  const out = new Uint8Array(o.frames * o.size * o.size * 3);
  const time = async (strategy: DecodeStrategy | undefined, reps: number): Promise<number> => {
    const runs: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const r = await decodeFrames(
        runner,
        { file, info, frames: o.frames, geometry, scaleFlags: o.scaleFlags, out, now: () => performance.now() },
        { timeoutMs: 600_000, seekMinDurationS: o.seekMinDurationS, seekConcurrency: 1, strategy },
      );
      if (r.decoded === 0 || (strategy && r.strategy !== strategy)) throw new Error(`${label}: ${strategy ?? 'auto'} decode fell back or decoded nothing`);
      runs.push(performance.now() - t0);
    }
    return median(runs);
  };
  const auto = chooseStrategy(info, o.seekMinDurationS);
  // The strategy the engine would pick gets every repetition; the other one is shown for comparison.
  const select = await time('select', auto === 'select' ? o.reps : 1);
  const seek = await time('seek', auto === 'seek' ? o.reps : 1);
  const sample8 = auto === 'select' ? select : seek;
  // Every frame, through the same chain (what a decode-everything-then-pick pipeline pays).
  const fullRuns: number[] = [];
  let frames = 0;
  for (let i = 0; i < o.fullReps; i++) {
    let bytes = 0;
    const t0 = performance.now();
    const r = await runner.run(
      'ffmpeg',
      ['-v', 'error', '-nostdin', '-i', inputUrl(file), '-map', `0:${info.streamIndex}`, '-an', '-sn', '-dn', '-vf', filterChain(geometry, o.scaleFlags), '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
      { timeoutMs: 600_000, onStdout: (c) => void (bytes += c.length) },
    );
    fullRuns.push(performance.now() - t0);
    if (r.exitCode !== 0) throw new Error(`${label}: full decode failed: ${r.stderr}`);
    frames = Math.floor(bytes / (o.size * o.size * 3));
  }
  const full = median(fullRuns);
  log(`decode ${label}: sample 8 ${sample8.toFixed(0)} ms (${auto}), every frame (${frames}) ${full.toFixed(0)} ms`);
  return {
    clip: label,
    width: info.width,
    height: info.height,
    duration_s: info.durationS ?? Number.NaN,
    frames,
    reps: o.reps,
    probe_ms: median(probeMs),
    strategy_auto: auto,
    sample8_ms: sample8,
    select_ms: select,
    seek_ms: seek,
    full_ms: full,
    full_over_sample8: full / sample8,
  };
}

/** engine.classify on each file `reps` times: medians of the engine's own stage timings. */
export async function measureShare(engine: Engine, clips: Array<{ label: string; files: string[] }>, reps: number): Promise<ShareRow[]> {
  const rows: ShareRow[] = [];
  await engine.classify(clips[0]?.files[0] as string); // warm the caches once
  for (const clip of clips) {
    const decode: number[] = [];
    const infer: number[] = [];
    const total: number[] = [];
    const share: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (const file of clip.files) {
        const t = (await engine.classify(file)).timings_s;
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
