/**
 * Sections 1-3: the model through the engine's own ORT session (src/engine/inference/ort-session.ts
 * openSession, the options the engine uses), its halting realisation, the PyTorch reference on the
 * same tensors, and the machine's limit measured with micro graphs in the same session options.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { decodeVideo } from '../../src/engine/decode/decode-video.js';
import { flopsByStage, glimpserKeeps, videoFlops } from '../../src/engine/flops.js';
import { modelFeeds, type GraphKnobs } from '../../src/engine/infer.js';
import type { LoadedModel } from '../../src/engine/model.js';
import { openSession, type EngineSession, type PlainTensor } from '../../src/engine/inference/ort-session.js';
import { Preprocessor } from '../../src/engine/preprocess.js';
import { helper, log } from './env.js';
import type { HaltingRow, LimitRow, MergingRow, MicroRow, ModelInfo, OpProfile, ReferenceRow, RunStats } from './report.js';
import { median, sum } from './stats.js';

const silent = pino({ level: 'silent' });

export interface Subject {
  role: ModelInfo['role'];
  model: LoadedModel;
  note: string;
}

export type Knobs = GraphKnobs;

export function info(s: Subject): ModelInfo {
  const m = s.model.manifest;
  const c = m.config as Record<string, unknown>;
  const f = m.flops;
  return {
    role: s.role,
    name: m.name,
    dir: path.relative(process.cwd(), s.model.dir),
    preset: m.preset ?? String(c.preset ?? '–'),
    summary: `${m.input.frames}×${m.input.size}² input, ${f.patches} patches/frame, dim ${f.dim}, ${f.glimpser_blocks} Glimpser + ${f.joint_blocks} joint blocks`,
    dense_gflops: m.dense_gflops,
    knobs: defaults(s),
    joint_layers: f.joint_blocks,
    note: s.note,
  };
}

export function defaults(s: Subject): Knobs {
  const k = s.model.manifest.knobs;
  return { keep_ratio: k.keep_ratio.default, halt_threshold: k.halt_threshold.default, ...noMerging(s) };
}

/** Merging off, for models whose graph takes the merge inputs (none for older exports). */
function noMerging(s: Subject): Pick<Knobs, 'merge_mode' | 'merge_ratio'> {
  return s.model.manifest.knobs.merge_mode ? { merge_mode: 'none', merge_ratio: 0 } : {};
}

/** keep 1.0 and halt_threshold = number of joint layers: halting off, nothing pruned. */
export function denseKnobs(s: Subject): Knobs {
  return { keep_ratio: 1, halt_threshold: s.model.manifest.flops.joint_blocks, ...noMerging(s) };
}

/** The engine's decode stage (what a decode worker runs, here in process) and preprocessing: the model input tensor. */
export function decodeTensor(s: Subject, file: string): Float32Array {
  const input = s.model.manifest.input;
  const pre = new Preprocessor(input);
  const decoded = decodeVideo(
    { file, name: file, frames: input.frames, size: input.size, resizeShortSide: input.resize_short_side, scaleFlags: input.scale_flags, limits: { maxDurationS: Infinity, maxPixels: Infinity } },
    { threads: 1, hardware: null },
  );
  return pre.toTensor_(decoded.rgb, decoded.slotToFrame, new Float32Array(pre.tensorLength));
}

/** Writes the tensors for the Python side: raw little-endian float32 plus index.json. */
export async function writeTensors(dir: string, s: Subject, tensors: Float32Array[]): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const { frames, size } = s.model.manifest.input;
  const files = tensors.map((_, i) => `${String(i).padStart(3, '0')}.f32`);
  await Promise.all(tensors.map((t, i) => writeFile(path.join(dir, files[i] as string), new Uint8Array(t.buffer, t.byteOffset, t.byteLength))));
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({ dims: [1, 3, frames, size, size], files }));
}

export function feeds(s: Subject, video: Float32Array, knobs: Knobs): Record<string, PlainTensor> {
  const { frames, size } = s.model.manifest.input;
  return modelFeeds(video, [1, 3, frames, size, size], knobs);
}

export function open(modelPath: string, threads: number): Promise<EngineSession> {
  return openSession(modelPath, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, logger: silent });
}

interface ClipRun {
  ms: number[];
  activeTokens: number[];
  logits: Float32Array;
}

/** GFLOPs of one run from its active-token counts (the engine's FLOPs formula). */
export function runGflops(s: Subject, knobs: Knobs, activeTokens: number[]): number {
  const m = s.model.manifest;
  const configured = (m.config as { glimpser_keep?: number[] }).glimpser_keep;
  const merge = knobs.merge_mode === undefined ? undefined : { mode: knobs.merge_mode, ratio: knobs.merge_ratio ?? 0 };
  return videoFlops(m.flops, glimpserKeeps(m.flops.glimpser_blocks, knobs.keep_ratio, configured), activeTokens, merge) / 1e9;
}

function stats(s: Subject, knobs: Knobs, runs: ClipRun[]): RunStats {
  const ms = runs.map((r) => median(r.ms));
  const gf = runs.map((r) => runGflops(s, knobs, r.activeTokens));
  return { knobs, ms_per_clip: ms, ms_total: sum(ms), gflops_per_clip: gf, gflops_mean: sum(gf) / gf.length, gflop_per_s: (2 * sum(gf)) / (sum(ms) / 1000) };
}

export interface HaltingMeasurement {
  row: HaltingRow;
  halting: ClipRun[];
}

/**
 * Several settings of the same graph on every clip, interleaved (the order rotates each repetition)
 * so that drift in the machine's speed hits every setting alike. Returns each setting's runs.
 */
async function measureInterleaved(s: Subject, tensors: Float32Array[], threads: number, reps: number, settings: Array<[string, Knobs]>): Promise<Record<string, ClipRun[]>> {
  const session = await open(s.model.modelPath, threads);
  const runs: Record<string, ClipRun[]> = Object.fromEntries(settings.map(([name]) => [name, []]));
  try {
    for (const [, knobs] of settings) await session.run(feeds(s, tensors[0] as Float32Array, knobs)); // warm-up
    for (const [c, video] of tensors.entries()) {
      const perSetting = settings.map(() => ({ ms: [] as number[], activeTokens: [] as number[], logits: new Float32Array() }));
      for (let r = 0; r < reps; r++) {
        for (let j = 0; j < settings.length; j++) {
          const k = (j + r + c) % settings.length;
          const [, knobs] = settings[k] as [string, Knobs];
          const f = feeds(s, video, knobs);
          const t0 = performance.now();
          const out = await session.run(f);
          const dt = performance.now() - t0;
          const slot = perSetting[k] as ClipRun;
          slot.ms.push(dt);
          slot.activeTokens = Array.from(out.active_tokens?.data as BigInt64Array, Number);
          slot.logits = out.logits?.data as Float32Array;
        }
      }
      settings.forEach(([name], k) => runs[name]?.push(perSetting[k] as ClipRun));
    }
  } finally {
    await session.dispose();
  }
  return runs;
}

/** Section 1: dense, keep-only and halting settings of the same graph on every clip. */
export async function measureHalting(s: Subject, tensors: Float32Array[], threads: number, reps: number): Promise<HaltingMeasurement> {
  const settings: Array<[string, Knobs]> = [
    ['dense', denseKnobs(s)],
    ['keep_only', { ...defaults(s), halt_threshold: s.model.manifest.flops.joint_blocks }],
    ['halting', defaults(s)],
  ];
  const runs = await measureInterleaved(s, tensors, threads, reps, settings);
  const dense = stats(s, settings[0]?.[1] as Knobs, runs.dense ?? []);
  const keepOnly = stats(s, settings[1]?.[1] as Knobs, runs.keep_only ?? []);
  const halting = stats(s, settings[2]?.[1] as Knobs, runs.halting ?? []);
  const speedup = dense.ms_total / halting.ms_total;
  const flopsRatio = (dense.gflops_mean * tensors.length) / (halting.gflops_mean * tensors.length);
  const perClip = halting.ms_per_clip.map((ms, i) => ((dense.ms_per_clip[i] as number) / ms) / ((dense.gflops_per_clip[i] as number) / (halting.gflops_per_clip[i] as number)));
  const layers = s.model.manifest.flops.joint_blocks;
  const tokens = Array.from({ length: layers }, (_, l) => sum((runs.halting ?? []).map((r) => r.activeTokens[l] ?? 0)) / tensors.length);
  return {
    row: {
      model: s.model.manifest.name,
      role: s.role,
      clips: tensors.length,
      reps,
      dense,
      keep_only: keepOnly,
      halting,
      speedup,
      flops_ratio: flopsRatio,
      realisation: speedup / flopsRatio,
      realisation_per_clip_median: median(perClip),
      tokens_per_layer_mean: tokens,
    },
    halting: runs.halting ?? [],
  };
}

/** The merge settings measured, each against the same graph with merging off (halting off too, so
 * that the token counts follow the knobs alone and the ratio is merging's own). */
export const MERGE_SETTINGS: ReadonlyArray<{ mode: 'tome' | 'tldr'; ratio: number }> = [
  { mode: 'tome', ratio: 0.1 },
  { mode: 'tome', ratio: 0.2 },
  { mode: 'tldr', ratio: 0.1 },
  { mode: 'tldr', ratio: 0.2 },
];

/** Section 1b: token merging's realisation, time ratio ÷ FLOPs ratio against merging off: how much of
 * the FLOPs merging removes turns into time. */
export async function measureMerging(s: Subject, tensors: Float32Array[], threads: number, reps: number): Promise<MergingRow[]> {
  if (!s.model.manifest.knobs.merge_mode) return [];
  const base: Knobs = { ...defaults(s), halt_threshold: s.model.manifest.flops.joint_blocks };
  const settings: Array<[string, Knobs]> = [['off', base], ...MERGE_SETTINGS.map((m): [string, Knobs] => [`${m.mode} ${m.ratio}`, { ...base, merge_mode: m.mode, merge_ratio: m.ratio }])];
  const runs = await measureInterleaved(s, tensors, threads, reps, settings);
  const off = stats(s, base, runs.off ?? []);
  return settings.slice(1).map(([name, knobs]) => {
    const merged = stats(s, knobs, runs[name] ?? []);
    const speedup = off.ms_total / merged.ms_total;
    const flopsRatio = off.gflops_mean / merged.gflops_mean;
    return { model: s.model.manifest.name, role: s.role, clips: tensors.length, reps, mode: knobs.merge_mode as 'tome' | 'tldr', ratio: knobs.merge_ratio ?? 0, off, merged, speedup, flops_ratio: flopsRatio, realisation: speedup / flopsRatio };
  });
}

interface TorchRef {
  torch: string;
  threads: number;
  keep: number;
  threshold: number;
  clips: Array<{ file: string; ms: { reference: number[]; compact?: number[] }; logits: number[]; active_tokens: number[] }>;
}

/** Section 2: the PyTorch reference path on the same tensors (bench/py/helper.py torch-ref). */
export async function measureReference(s: Subject, tensorDir: string, halting: HaltingMeasurement, threads: number, reps: number): Promise<ReferenceRow> {
  const k = defaults(s);
  const ref = await helper<TorchRef>([
    'torch-ref', '--model', s.model.dir, '--tensors', tensorDir, '--threads', String(threads), '--reps', String(reps),
    '--keep', String(k.keep_ratio), '--threshold', String(k.halt_threshold), '--compact',
  ]);
  const torchMs = ref.clips.map((c) => median(c.ms.reference));
  const compactMs = ref.clips.every((c) => c.ms.compact) ? ref.clips.map((c) => median(c.ms.compact as number[])) : null;
  const ortMs = halting.row.halting.ms_per_clip;
  const speedups = torchMs.map((t, i) => t / (ortMs[i] as number));
  let maxErr = 0;
  let tokensEqual = true;
  ref.clips.forEach((c, i) => {
    const ortRun = halting.halting[i];
    if (!ortRun) return;
    const scale = Math.max(1e-12, ...c.logits.map(Math.abs));
    const err = Math.max(...c.logits.map((v, j) => Math.abs(v - (ortRun.logits[j] as number))));
    maxErr = Math.max(maxErr, err / scale);
    if (c.active_tokens.join() !== ortRun.activeTokens.join()) tokensEqual = false;
  });
  return {
    model: s.model.manifest.name,
    role: s.role,
    clips: torchMs.length,
    reps,
    threads: ref.threads,
    torch_ms_per_clip: torchMs,
    torch_compact_ms_per_clip: compactMs,
    ort_ms_per_clip: ortMs,
    speedup_per_clip: speedups,
    speedup_median: median(speedups),
    speedup_min: Math.min(...speedups),
    speedup_max: Math.max(...speedups),
    parity: { max_rel_logits_err: maxErr, tokens_equal: tokensEqual },
  };
}

export interface MicroGraph {
  kind: 'matmul' | 'block';
  name: string;
  file: string;
  input: { name: string; dims: number[] };
  macs: number;
  tokens?: number;
  dim?: number;
}

/** Section 3: micro graphs (one MatMul, dense joint blocks) through the same session options. */
export async function measureMicro(graphs: MicroGraph[], threads: number, reps: number): Promise<MicroRow[]> {
  const rows: MicroRow[] = [];
  for (const g of graphs) {
    const session = await open(g.file, threads);
    try {
      const n = g.input.dims.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.37) * 0.5;
      const f: Record<string, PlainTensor> = { [g.input.name]: { dtype: 'float32', dims: g.input.dims, data } };
      for (let i = 0; i < 3; i++) await session.run(f);
      const ms: number[] = [];
      const count = g.kind === 'matmul' ? reps * 3 : reps;
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        await session.run(f);
        ms.push(performance.now() - t0);
      }
      const m = median(ms);
      rows.push({ name: g.name, kind: g.kind, macs: g.macs, reps: count, ms_median: m, gflop_per_s: (2 * g.macs) / (m / 1000) / 1e9 });
    } finally {
      await session.dispose();
    }
  }
  return rows;
}

export function limitRows(halting: HaltingRow[], micro: MicroRow[], graphs: MicroGraph[], subjects: Subject[]): LimitRow[] {
  const matmul = micro.find((m) => m.kind === 'matmul');
  const rows: LimitRow[] = [];
  for (const h of halting) {
    const s = subjects.find((x) => x.model.manifest.name === h.model);
    if (!s) continue;
    const f = s.model.manifest.flops;
    const tokens = h.dense.gflops_per_clip.length > 0 ? 1 + f.frames * Math.ceil(Math.fround(defaults(s).keep_ratio) * f.patches) : 0;
    // The block at this model's width and its token count at the default keep (DeiT-S at 785 for the paper preset).
    const g = graphs.find((x) => x.kind === 'block' && x.dim === f.dim && x.tokens === tokens) ?? graphs.find((x) => x.kind === 'block');
    const block = micro.find((m) => m.name === g?.name);
    if (!block) continue;
    for (const setting of ['halting', 'dense'] as const) {
      const rate = h[setting].gflop_per_s;
      rows.push({
        model: h.model,
        setting,
        gflop_per_s: rate,
        block: block.name,
        block_gflop_per_s: block.gflop_per_s,
        fraction_of_block: rate / block.gflop_per_s,
        matmul_gflop_per_s: matmul?.gflop_per_s ?? Number.NaN,
        fraction_of_matmul: matmul ? rate / matmul.gflop_per_s : Number.NaN,
      });
    }
  }
  return rows;
}

/**
 * Where the time goes: ORT's own profiler (session option enableProfiling) on `runs` runs, kernel
 * time summed by operator type. The engine's session factory has no profiling switch, so this one
 * session is opened here with the same options plus profiling.
 */
/** FLOPs of one run by stage, with the names profileOps gives its stages (docs/contracts.md formula). */
export function stageFlops(s: Subject, knobs: Knobs, activeTokens: number[]): Record<string, number> {
  const c = s.model.manifest.flops;
  const configured = (s.model.manifest.config as { glimpser_keep?: number[] }).glimpser_keep;
  const stages = flopsByStage(c, glimpserKeeps(c.glimpser_blocks, knobs.keep_ratio, configured), activeTokens);
  const out: Record<string, number> = { embedding: stages.embedding };
  stages.glimpser.forEach((flops, b) => (out[`Glimpser block ${b}`] = flops));
  out['joint layers'] = stages.joint;
  out['halting loop glue + head'] = stages.heads;
  return out;
}

export async function profileOps(
  label: string,
  modelPath: string,
  input: Record<string, PlainTensor>,
  threads: number,
  runs: number,
  dir: string,
  flopsOf?: (activeTokens: number[]) => Record<string, number>,
): Promise<OpProfile> {
  await mkdir(dir, { recursive: true });
  const prefix = path.join(dir, label.replace(/[^a-z0-9]+/gi, '_'));
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  };
  const session = await ort.InferenceSession.create(modelPath, { ...options, enableProfiling: true, profileFilePrefix: prefix });
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(input)) ortFeeds[name] = new ort.Tensor(t.dtype, t.data, t.dims);
  const first = await session.run(ortFeeds); // warm-up, profiled too: left out below by counting only the last `runs`
  const active = first.active_tokens ? Array.from(first.active_tokens.data as BigInt64Array, Number) : undefined;
  const wall: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(ortFeeds);
    wall.push(performance.now() - t0);
  }
  session.endProfiling();
  await session.release();
  const base = path.basename(prefix);
  const files = (await readdir(dir)).filter((f) => f.startsWith(base) && f.endsWith('.json')).sort();
  const file = files.pop();
  if (!file) throw new Error(`no ORT profile written under ${dir}`);
  const events = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Array<{ cat?: string; name?: string; dur?: number; args?: { op_name?: string } }>;
  const runEvents = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  // Only kernels inside the last `runs` model_run spans: drop the warm-up run.
  const spans = runEvents.slice(-runs) as Array<{ ts?: number; dur?: number }>;
  const inSpan = (e: { ts?: number }): boolean => spans.some((s) => (e.ts ?? 0) >= (s.ts ?? 0) && (e.ts ?? 0) <= (s.ts ?? 0) + (s.dur ?? 0));
  const byOp = new Map<string, { us: number; calls: number }>();
  for (const e of events as Array<{ cat?: string; name?: string; dur?: number; ts?: number; args?: { op_name?: string } }>) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name || e.args.op_name === 'If') continue;
    if (!inSpan(e)) continue;
    const entry = byOp.get(e.args.op_name) ?? { us: 0, calls: 0 };
    entry.us += e.dur ?? 0;
    entry.calls += 1;
    byOp.set(e.args.op_name, entry);
  }
  // Stage of each kernel from the export's node names: `joint{i}/...` inside the per-layer If,
  // otherwise the builder's running counter (`hint_N`) orders embed → Glimpser blocks → loop glue → head.
  const counter = (name: string): number => Number(/_(\d+)/.exec(name.slice(name.lastIndexOf('/') + 1))?.[1] ?? Number.NaN);
  const nodeEvents = (events as Array<{ cat?: string; name?: string; dur?: number; ts?: number; args?: { op_name?: string } }>).filter(
    (e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time') && e.args?.op_name && e.args.op_name !== 'If' && inSpan(e),
  );
  const names = nodeEvents.map((e) => (e.name as string).replace(/_kernel_time$/, ''));
  const firstJoint = Math.min(...names.filter((n) => /^joint\d+\//.test(n)).map(counter).filter(Number.isFinite));
  const glimpserStart = [0, 1, 2, 3].map((b) => Math.min(...names.filter((n) => n.startsWith(`glimpser${b}.`)).map(counter).filter(Number.isFinite)));
  const stageOf = (n: string): string => {
    const joint = /^(joint|skip)(\d+)\//.exec(n);
    if (joint) return 'joint layers';
    const c = counter(n);
    if (!Number.isFinite(c)) return 'nodes created by ORT fusion (e.g. BiasGelu)';
    if (Number.isFinite(firstJoint) && c > firstJoint) return 'halting loop glue + head';
    for (let b = glimpserStart.length - 1; b >= 0; b--) if (Number.isFinite(glimpserStart[b]) && c >= (glimpserStart[b] as number)) return `Glimpser block ${b}`;
    return 'embedding';
  };
  const byStage = new Map<string, number>();
  nodeEvents.forEach((e, i) => byStage.set(stageOf(names[i] as string), (byStage.get(stageOf(names[i] as string)) ?? 0) + (e.dur ?? 0)));
  const kernelUs = sum([...byOp.values()].map((v) => v.us));
  const ops = [...byOp.entries()]
    .map(([op, v]) => ({ op, ms: v.us / 1000 / runs, share: v.us / kernelUs, calls: v.calls / runs }))
    .sort((a, b) => b.ms - a.ms);
  log(`profile ${label}: ${ops.slice(0, 4).map((o) => `${o.op} ${(100 * o.share).toFixed(0)}%`).join(', ')}`);
  const flops = active && flopsOf ? flopsOf(active) : undefined;
  const totalFlops = flops ? sum(Object.values(flops)) : 0;
  const stages = [...byStage.entries()]
    .map(([stage, us]) => ({ stage, ms: us / 1000 / runs, share: us / kernelUs, ...(flops ? { flops_share: (flops[stage] ?? 0) / totalFlops } : {}) }))
    .sort((a, b) => a.stage.localeCompare(b.stage));
  return { label, wall_ms: median(wall), kernel_ms: kernelUs / 1000 / runs, ops, stages };
}
