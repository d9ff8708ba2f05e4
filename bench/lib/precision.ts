/**
 * Section 6: the model's graphs side by side — fp32 (model.onnx) and the variants its manifest lists
 * (int8; fp16 is for CUDA and not timed on CPUs) — each at batch 1 and with `batch` videos in one
 * run, through the engine's own ORT session options. Every repetition runs each (precision, batch)
 * pair once, the order rotating, so that drift in the machine's speed hits them alike.
 */
import { existsSync } from 'node:fs';
import { loadModel, type Precision } from '../../src/engine/model.js';
import { modelFeeds } from '../../src/engine/infer.js';
import type { EngineSession } from '../../src/engine/inference/ort-session.js';
import { log, runPython } from './env.js';
import { defaults, open, runGflops, type Subject } from './models.js';
import type { PrecisionRow } from './report.js';
import { median, sum } from './stats.js';

/** Precisions timed here: fp16 kernels on CPUs are emulated and say nothing about CUDA. */
const TIMED: Precision[] = ['fp32', 'int8'];

/**
 * Adds an int8 variant to a bench-made model (the preset: random weights, so its parity is recorded,
 * not enforced) when its manifest has none; a committed model is never rewritten here.
 */
export async function ensureInt8(s: Subject, mayWrite: boolean): Promise<Subject> {
  if (s.model.manifest.variants?.int8 || !mayWrite) return s;
  log(`${s.model.manifest.name}: making its int8 variant (python -m haltingvt quantize)`);
  await runPython(['-m', 'haltingvt', 'quantize', '--model', s.model.dir, '--precision', 'int8', '--no-enforce', '--clips', '4']);
  return { ...s, model: await loadModel(s.model.dir) };
}

interface Timed {
  b1: number[][]; // [clip][rep] ms
  batch: number[]; // [rep] ms for the whole batch
  logits: Float32Array[];
  tokens: number[][];
}

function concat(tensors: Float32Array[]): Float32Array {
  const out = new Float32Array(sum(tensors.map((t) => t.length)));
  let at = 0;
  for (const t of tensors) {
    out.set(t, at);
    at += t.length;
  }
  return out;
}

/**
 * A batch's padding (the graph's compaction cuts the token axis to the batch's longest live count at
 * each joint layer): Σ over layers of videos × the longest count, over Σ of the counts.
 */
export function padding(tokens: number[][]): number {
  const layers = tokens[0]?.length ?? 0;
  let padded = 0;
  let live = 0;
  for (let l = 0; l < layers; l++) {
    const counts = tokens.map((t) => t[l] ?? 0);
    padded += counts.length * Math.max(...counts);
    live += sum(counts);
  }
  return live === 0 ? 1 : padded / live;
}

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if ((xs[i] as number) > (xs[best] as number)) best = i;
  return best;
}

export async function measurePrecisions(s: Subject, tensors: Float32Array[], threads: number, reps: number, batchSize: number): Promise<PrecisionRow[]> {
  const m = s.model.manifest;
  const precisions = TIMED.filter((p) => p === 'fp32' || m.variants?.[p]);
  const files: Record<string, string> = Object.fromEntries(precisions.map((p) => [p, p === 'fp32' ? m.graph.file : (m.variants?.[p]?.file as string)]));
  const clips = tensors.slice(0, batchSize);
  const batch = clips.length;
  const { frames, size } = m.input;
  const knobs = defaults(s);
  const one = (video: Float32Array, n: number) => modelFeeds(video, [n, 3, frames, size, size], knobs);
  const batched = one(concat(clips), batch);
  const sessions: Record<string, EngineSession> = {};
  const timed: Record<string, Timed> = {};
  try {
    for (const p of precisions) {
      const file = `${s.model.dir}/${files[p]}`;
      if (!existsSync(file)) throw new Error(`${file}: missing`);
      sessions[p] = await open(file, threads);
      timed[p] = { b1: clips.map(() => []), batch: [], logits: [], tokens: [] };
      // Warm-up at both shapes: the first run at a new batch size allocates its buffers.
      await sessions[p].run(one(clips[0] as Float32Array, 1));
      await sessions[p].run(batched);
    }
    for (let r = 0; r < reps; r++) {
      for (let j = 0; j < precisions.length; j++) {
        const p = precisions[(j + r) % precisions.length] as Precision;
        const session = sessions[p] as EngineSession;
        const t = timed[p] as Timed;
        for (const [c, video] of clips.entries()) {
          const t0 = performance.now();
          const out = await session.run(one(video, 1));
          t.b1[c]?.push(performance.now() - t0);
          t.logits[c] = out.logits?.data as Float32Array;
          t.tokens[c] = Array.from(out.active_tokens?.data as BigInt64Array, Number);
        }
        const t0 = performance.now();
        await session.run(batched);
        t.batch.push(performance.now() - t0);
      }
    }
  } finally {
    await Promise.all(Object.values(sessions).map((x) => x.dispose()));
  }
  const ref = timed.fp32 as Timed;
  return precisions.map((p) => {
    const t = timed[p] as Timed;
    const b1 = sum(t.b1.map((ms) => median(ms))) / batch;
    const agree = t.logits.filter((l, c) => argmax(l) === argmax(ref.logits[c] as Float32Array)).length / batch;
    const tokenDiff = sum(t.tokens.flatMap((tk, c) => tk.map((n, l) => Math.abs(n - ((ref.tokens[c] as number[])[l] as number))))) / sum(ref.tokens.flat());
    return {
      model: m.name,
      role: s.role,
      precision: p,
      file: files[p] as string,
      mib: (m.files[files[p] as string]?.bytes ?? Number.NaN) / 2 ** 20,
      clips: batch,
      reps,
      batch,
      ms_per_video_b1: b1,
      ms_per_video_batch: median(t.batch) / batch,
      padding: padding(t.tokens),
      gflops_mean: sum(t.tokens.map((tk) => runGflops(s, knobs, tk))) / batch,
      top1_agreement: agree,
      token_rel_diff: tokenDiff,
    };
  });
}
