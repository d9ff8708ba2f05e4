/**
 * The Node half of the GPU check (scripts/gpu-check.sh): one model through the engine's own session
 * code (openSession, modelFeeds) on `--provider` (webgpu on the GPU machine, cpu standing in here):
 *  - parity against a CPU session (when the provider is not the CPU) and against golden answers:
 *    logits, active-token counts, per-patch stop maps;
 *  - where ORT placed each node (its profiler's provider per kernel) and the host<->device copies;
 *  - timings of dense (keep 1, halting off) vs halting (the model's default knobs) at each batch size.
 * Writes one JSON file (the report and the PyTorch side read it) and exits 1 when parity fails.
 * Bundled by scripts/gpu-bundle.sh with esbuild; onnxruntime-node stays external.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { glimpserKeeps, videoFlops } from '../../src/engine/flops.js';
import { modelFeeds, type GraphKnobs } from '../../src/engine/infer.js';
import { loadModel, type LoadedModel } from '../../src/engine/model.js';
import { openSession, type EngineSession, type PlainTensor } from '../../src/engine/inference/ort-session.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    inputs: { type: 'string' },
    provider: { type: 'string', default: 'webgpu' },
    golden: { type: 'string' },
    batches: { type: 'string', default: '1,8' },
    reps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string', default: '0' },
    'logit-tolerance': { type: 'string', default: '1e-3' },
    out: { type: 'string' },
    work: { type: 'string', default: os.tmpdir() },
  },
});
if (!values.model || !values.inputs || !values.out) throw new Error('usage: check --model DIR --inputs DIR --out FILE [--provider webgpu] [--golden FILE]');
const provider = values.provider as string;
const threads = Number(values.threads);
const reps = Number(values.reps);
const warmup = Number(values.warmup);
const tolerance = Number(values['logit-tolerance']);

const warnings: string[] = [];
// openSession's fallback warnings (provider and reason), kept for the report; pino stays out of the bundle.
const logger = {
  info: () => undefined,
  warn: (obj: { reason?: string }, msg: string) => void warnings.push(obj.reason ? `${msg}: ${obj.reason}` : msg),
} as unknown as Pick<Logger, 'warn' | 'info'>;
const log = (msg: string): void => void process.stderr.write(`[gpu-check ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface Outputs {
  logits: number[][];
  active_tokens: number[][];
  patch_stop_layer: number[][];
}

interface Comparison {
  against: string;
  logits_max_abs: number;
  logits_rel: number;
  token_rows_differing: number;
  stop_patches_differing: number;
  ok: boolean;
}

const model = await loadModel(values.model);
const { frames, size } = model.manifest.input;
const clipDims = [3, frames, size, size];
const clipLength = clipDims.reduce((a, b) => a * b, 1);
const index = JSON.parse(await readFile(path.join(values.inputs, 'index.json'), 'utf8')) as { files: string[]; dims: number[] };
const clips = await Promise.all(index.files.map(async (f) => {
  const raw = await readFile(path.join(values.inputs as string, f));
  const clip = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (clip.length !== clipLength) throw new Error(`${f}: ${clip.length} values, the model wants ${clipLength} (${clipDims.join('x')})`);
  return clip;
}));

/** The first `n` clips (repeated when there are fewer) as one batch tensor. */
function batchOf(n: number): Float32Array {
  const out = new Float32Array(n * clipLength);
  for (let i = 0; i < n; i++) out.set(clips[i % clips.length] as Float32Array, i * clipLength);
  return out;
}

const settings: Record<'dense' | 'halting', GraphKnobs> = {
  dense: { keep_ratio: 1, halt_threshold: model.manifest.flops.joint_blocks, ...noMerging(model) },
  halting: { keep_ratio: model.manifest.knobs.keep_ratio.default, halt_threshold: model.manifest.knobs.halt_threshold.default, ...noMerging(model) },
};

function noMerging(m: LoadedModel): Pick<GraphKnobs, 'merge_mode' | 'merge_ratio'> {
  return m.manifest.knobs.merge_mode ? { merge_mode: 'none', merge_ratio: 0 } : {};
}

function feedsFor(n: number, knobs: GraphKnobs): Record<string, PlainTensor> {
  return modelFeeds(batchOf(n), [n, ...clipDims], knobs);
}

function rows(t: PlainTensor | undefined, n: number): number[][] {
  if (!t) throw new Error('missing output');
  const flat = Array.from(t.data as ArrayLike<number | bigint>, Number);
  const width = flat.length / n;
  return Array.from({ length: n }, (_, i) => flat.slice(i * width, (i + 1) * width));
}

async function outputsOf(session: EngineSession, n: number, knobs: GraphKnobs): Promise<Outputs> {
  const out = await session.run(feedsFor(n, knobs));
  return { logits: rows(out.logits, n), active_tokens: rows(out.active_tokens, n), patch_stop_layer: rows(out.patch_stop_layer, n) };
}

function compare(against: string, got: Outputs, want: Pick<Outputs, 'logits' | 'active_tokens'> & { patch_stop_layer?: number[][]; stop_sums?: number[] }): Comparison {
  let maxAbs = 0;
  let maxWant = 0;
  got.logits.forEach((row, i) => row.forEach((v, j) => {
    const w = want.logits[i]?.[j] ?? NaN;
    maxAbs = Math.max(maxAbs, Math.abs(v - w) || (Number.isNaN(v - w) ? Infinity : 0));
    maxWant = Math.max(maxWant, Math.abs(w));
  }));
  const tokenRows = got.active_tokens.filter((row, i) => row.join() !== want.active_tokens[i]?.join()).length;
  let stops = 0;
  got.patch_stop_layer.forEach((row, i) => {
    if (want.patch_stop_layer) row.forEach((v, j) => (stops += v === want.patch_stop_layer?.[i]?.[j] ? 0 : 1));
    else if (want.stop_sums) stops += row.reduce((a, b) => a + b, 0) === want.stop_sums[i] ? 0 : 1;
  });
  const rel = maxAbs / Math.max(maxWant, 1e-12);
  return { against, logits_max_abs: maxAbs, logits_rel: rel, token_rows_differing: tokenRows, stop_patches_differing: stops, ok: rel <= tolerance && tokenRows === 0 && stops === 0 };
}

/** Kernel time and node count per execution provider, from ORT's profiler, over `runs` runs. */
async function placement(on: string, n: number, knobs: GraphKnobs, runs: number): Promise<Record<string, unknown>> {
  const dir = path.join(values.work as string, `profile-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const prefix = path.join(dir, model.manifest.name);
  // `on`: the provider the engine's session ended on (the CPU when the asked one could not be created).
  const eps = on === 'cpu' ? ['cpu'] : [on, 'cpu'];
  const session = await ort.InferenceSession.create(model.modelPath, { executionProviders: eps, graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: prefix });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feedsFor(n, knobs))) feeds[name] = new ort.Tensor(t.dtype, t.data, t.dims);
  for (let i = 0; i < runs; i++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  const file = (await readdir(dir)).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.json')).sort().pop();
  if (!file) throw new Error(`no ORT profile under ${dir}`);
  type Event = { cat?: string; name?: string; dur?: number; args?: { op_name?: string; provider?: string } };
  const events = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Event[];
  const byProvider: Record<string, { nodes: Set<string>; ops: Record<string, number>; us: number }> = {};
  let copies = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name) continue;
    const p = (e.args.provider ?? 'unknown').replace('ExecutionProvider', '');
    const entry = (byProvider[p] ??= { nodes: new Set(), ops: {}, us: 0 });
    const node = e.name.slice(0, -'_kernel_time'.length);
    if (!entry.nodes.has(node)) entry.ops[e.args.op_name] = (entry.ops[e.args.op_name] ?? 0) + 1;
    entry.nodes.add(node);
    entry.us += e.dur ?? 0;
    if (e.args.op_name.startsWith('Memcpy')) copies += 1;
  }
  return {
    runs,
    batch: n,
    memcpy_kernels_per_run: copies / runs,
    providers: Object.fromEntries(Object.entries(byProvider).map(([p, v]) => [p, { nodes: v.nodes.size, kernel_ms_per_run: v.us / 1000 / runs, ops: v.ops }])),
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

async function timings(session: EngineSession, batches: number[]): Promise<Array<Record<string, unknown>>> {
  const m = model.manifest;
  const configured = (m.config as { glimpser_keep?: number[] }).glimpser_keep;
  const result: Array<Record<string, unknown>> = [];
  for (const n of batches) {
    const feeds = { dense: feedsFor(n, settings.dense), halting: feedsFor(n, settings.halting) };
    for (let w = 0; w < warmup; w++) for (const f of Object.values(feeds)) await session.run(f);
    const ms: Record<'dense' | 'halting', number[]> = { dense: [], halting: [] };
    const tokens: Record<'dense' | 'halting', number[][]> = { dense: [], halting: [] };
    for (let r = 0; r < reps; r++) {
      // Interleaved, the order alternating, so that drift in the machine's speed hits both alike.
      for (const name of r % 2 ? (['halting', 'dense'] as const) : (['dense', 'halting'] as const)) {
        const t0 = performance.now();
        const out = await session.run(feeds[name]);
        ms[name].push(performance.now() - t0);
        tokens[name] = rows(out.active_tokens, n);
      }
    }
    for (const name of ['dense', 'halting'] as const) {
      const knobs = settings[name];
      const gf = tokens[name].map((t) => videoFlops(m.flops, glimpserKeeps(m.flops.glimpser_blocks, knobs.keep_ratio, configured), t) / 1e9);
      result.push({ batch: n, setting: name, knobs, reps, ms_per_run: median(ms[name]), ms_per_clip: median(ms[name]) / n, ms_all: ms[name], gflops_per_clip: gf.reduce((a, b) => a + b, 0) / gf.length });
    }
  }
  return result;
}

const batches = String(values.batches).split(',').map(Number);
const parityBatch = clips.length; // every clip, in one batch
const ortVersion = (JSON.parse(await readFile(path.join(path.dirname(new URL(import.meta.resolve('onnxruntime-node')).pathname), '..', 'package.json'), 'utf8')) as { version: string }).version;
const report: Record<string, unknown> = {
  model: { name: model.manifest.name, version: model.manifest.version, dir: model.dir, dense_gflops: model.manifest.dense_gflops, joint_blocks: model.manifest.flops.joint_blocks, clips: clips.length },
  provider,
  node: process.version,
  onnxruntime_node: ortVersion,
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
  cores: os.cpus().length,
};

let ok = true;
log(`${model.manifest.name}: opening a session on ${provider}`);
const session = await openSession(model.modelPath, { executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'], intraOpNumThreads: threads || undefined, logger });
report.session_provider = session.executionProvider;
report.warnings = warnings;
if (session.executionProvider !== provider) {
  ok = false;
  log(`${provider} could not be used: ${warnings.join('; ')}`);
}
try {
  const got = { halting: await outputsOf(session, parityBatch, settings.halting), dense: await outputsOf(session, parityBatch, settings.dense) };
  report.outputs = got;
  const comparisons: Comparison[] = [];
  if (provider !== 'cpu') {
    const cpu = await openSession(model.modelPath, { executionProviders: ['cpu'], intraOpNumThreads: threads || undefined, logger });
    for (const name of ['halting', 'dense'] as const) comparisons.push(compare(`cpu (${name})`, got[name], await outputsOf(cpu, parityBatch, settings[name])));
    await cpu.dispose();
  }
  if (values.golden) {
    const g = JSON.parse(await readFile(values.golden, 'utf8')) as { clips: number; keep_ratio: number; halt_threshold: number; logits: number[][]; active_tokens: number[][]; patch_stop_layer_sum: number[] };
    const n = Math.min(g.clips, parityBatch);
    const knobs = { ...settings.halting, keep_ratio: g.keep_ratio, halt_threshold: g.halt_threshold };
    const mine = await outputsOf(session, n, knobs);
    comparisons.push(compare(`golden (${path.basename(values.golden)}, ${n} clips)`, mine, { logits: g.logits, active_tokens: g.active_tokens, stop_sums: g.patch_stop_layer_sum }));
  }
  report.parity = comparisons;
  for (const c of comparisons) {
    log(`parity vs ${c.against}: logits rel ${c.logits_rel.toExponential(1)}, token rows differing ${c.token_rows_differing}, stop patches differing ${c.stop_patches_differing}${c.ok ? '' : '  FAILED'}`);
    ok &&= c.ok;
  }
  report.placement = await placement(session.executionProvider, 1, settings.halting, 2);
  log(`placement: ${JSON.stringify((report.placement as { providers: Record<string, { nodes: number }> }).providers, (k, v) => (k === 'ops' ? undefined : v))}`);
  report.timings = await timings(session, batches);
  for (const t of report.timings as Array<{ batch: number; setting: string; ms_per_clip: number }>) log(`batch ${t.batch} ${t.setting}: ${t.ms_per_clip.toFixed(2)} ms/clip`);
} catch (err) {
  // A kernel that fails at run time on the GPU is a finding: written into the report, not lost.
  ok = false;
  report.error = err instanceof Error ? err.message : String(err);
  log(`failed: ${String(report.error)}`);
} finally {
  await session.dispose();
}
report.ok = ok;
await writeFile(values.out, JSON.stringify(report, null, 1) + '\n');
process.exitCode = ok ? 0 : 1;
