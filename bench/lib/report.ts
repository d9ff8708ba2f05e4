/**
 * The benchmark's results: one typed object, written as bench/results.json and rendered as
 * bench/results.md. Pure (no I/O but `writeResults`), so the test suite can check it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fmt, pct } from './stats.js';

export type Mode = 'quick' | 'full';

export interface MachineFacts {
  cpu: string;
  cores: number;
  memory_gib: number;
  os: string;
  node: string;
  onnxruntime_node: string;
  torch: string;
  onnxruntime_python: string;
  ffmpeg: string;
  ort_intra_op_threads: number;
  torch_threads: number;
  loadavg_start: number[];
  /** Other heavy processes seen at the start (e.g. a training run): the numbers are noisier then. */
  concurrent_load: string | null;
  /** The CPU's int8 dot-product instructions (/proc/cpuinfo: avx512_vnni, avx_vnni, amx_int8), on which int8's target depends; absent where /proc/cpuinfo lists no x86 flags, and in runs before 2026-12-07 22:00. */
  int8_dot_products?: string[];
}

export interface ModelInfo {
  role: 'embedded' | 'preset';
  name: string;
  dir: string;
  preset: string;
  summary: string;
  dense_gflops: number;
  knobs: { keep_ratio: number; halt_threshold: number };
  joint_layers: number;
  note: string;
}

export interface RunStats {
  knobs: { keep_ratio: number; halt_threshold: number };
  /** Median over repetitions, per clip. */
  ms_per_clip: number[];
  ms_total: number;
  gflops_per_clip: number[];
  gflops_mean: number;
  /** 2 x multiply-adds per second over all clips. */
  gflop_per_s: number;
}

export interface HaltingRow {
  model: string;
  role: ModelInfo['role'];
  clips: number;
  reps: number;
  dense: RunStats;
  keep_only: RunStats;
  halting: RunStats;
  speedup: number;
  flops_ratio: number;
  realisation: number;
  realisation_per_clip_median: number;
  tokens_per_layer_mean: number[];
}

export interface MergingRow {
  model: string;
  role: ModelInfo['role'];
  clips: number;
  reps: number;
  mode: 'tome' | 'tldr';
  ratio: number;
  off: RunStats;
  merged: RunStats;
  speedup: number;
  flops_ratio: number;
  realisation: number;
}

export interface ReferenceRow {
  model: string;
  role: ModelInfo['role'];
  clips: number;
  reps: number;
  threads: number;
  torch_ms_per_clip: number[];
  torch_compact_ms_per_clip: number[] | null;
  ort_ms_per_clip: number[];
  speedup_per_clip: number[];
  speedup_median: number;
  speedup_min: number;
  speedup_max: number;
  /** Same weights and inputs: largest |logit difference| over the largest |logit|, and token counts equal. */
  parity: { max_rel_logits_err: number; tokens_equal: boolean };
}

export interface MicroRow {
  name: string;
  kind: 'matmul' | 'block';
  macs: number;
  reps: number;
  ms_median: number;
  gflop_per_s: number;
}

export interface LimitRow {
  model: string;
  setting: 'halting' | 'dense';
  gflop_per_s: number;
  block: string;
  block_gflop_per_s: number;
  fraction_of_block: number;
  matmul_gflop_per_s: number;
  fraction_of_matmul: number;
}

export interface DecodeTiming {
  wall_ms: number;
  cpu_ms: number;
}

export interface DecodeRow {
  clip: string;
  width: number;
  height: number;
  duration_s: number;
  frames: number;
  reps: number;
  /** Frames our decoder decoded in full, and its seeks. */
  decoded_frames: number;
  /** Frames the frame plan passes (from each seek point to its target); the non-reference ones that are not sampled are skipped. Absent in runs before 2026-12-01 13:00. */
  planned_frames?: number;
  seeks: number;
  ours: DecodeTiming;
  /** ffprobe + one ffmpeg select pass, spawned: the service's path before node-av. */
  cli: DecodeTiming;
  pyav: DecodeTiming;
  decord: DecodeTiming;
}

export interface ShareRow {
  model: string;
  clip: string;
  reps: number;
  decode_s: number;
  infer_s: number;
  total_s: number;
  share: number;
}

export interface ServiceStep {
  concurrency: number;
  duration_s: number;
  requests: number;
  ok: number;
  rate_429: number;
  rate_503: number;
  other_errors: number;
  throughput: number;
  p50_ms: number;
  p99_ms: number;
  eld_p50_ms: number;
  eld_p99_ms: number;
  eld_max_ms: number;
  rss_main_mib: number;
  rss_worker_mib: number;
  /** Decode worker processes together (absent in runs before 2026-12-01 13:00). */
  rss_decode_mib?: number;
  /** Medians of the server's own per-stage timings (200 responses). */
  stage_ms: { queue: number; decode: number; infer: number };
  /** Where the machine's CPU went during the step (absent in runs before 2026-12-01 13:00). */
  cpu?: StepCpu;
}

/** CPU seconds per answered video during one step, by who spent them, and the machine's share. */
export interface StepCpu {
  cores: number;
  /** Decode workers + inference worker: what a video costs the engine. */
  decode_infer_s_per_video: number;
  /** The two apart (absent in runs before 2026-12-06 21:00). */
  inference_s_per_video?: number;
  decode_s_per_video?: number;
  /** The server's main process (HTTP, upload, queue, IPC). */
  main_s_per_video: number;
  /** The bench's own load generator (the clients). */
  clients_s_per_video: number;
  /** Of all cores over the step: busy at nice > 0 (the background training run), and idle. */
  niced_fraction: number;
  idle_fraction: number;
  /** Of all cores over the step: the server and the clients, and every other process (at any nice). */
  ours_fraction?: number;
  others_fraction?: number;
}

/** CPU ms per answered video, by process of the server. */
export interface ProcessCpuMs {
  main: number;
  inference: number;
  decode: number;
  /** main + inference + decode */
  total: number;
}

/**
 * What a video must cost at least, CPU ms per video on one set of clips: its two necessary parts,
 * each measured alone in the bench process with nothing else running (bench/lib/floor.ts).
 */
export interface CpuFloor {
  /** The engine's decode worker pool, one worker, one video at a time, at the service's decoder threads; /proc CPU of the worker. */
  decode_ms: number;
  decode_wall_ms: number;
  decode_videos: number;
  decode_threads: number;
  /** PyAV on the same clips at 1 thread, the decoding section's anchor (NaN where PyAV is not installed). */
  pyav_ms: number;
  /** One ORT session at one intra-op thread on the clips' preprocessed tensors, batch 1: process CPU ÷ runs. */
  inference_ms: number;
  inference_wall_ms: number;
  inference_runs: number;
  /** decode + inference */
  total_ms: number;
  /**
   * The same two parts paced as one client paces the service: each pausing after every video for
   * the other's wall time per video, so each sleeps between videos as the service's workers do
   * (absent in runs before 2026-12-07 21:37).
   */
  paced?: { decode_ms: number; inference_ms: number; total_ms: number };
}

/** One step of the service on a set of clips, against that set's floor. */
export interface FloorStep {
  concurrency: number;
  duration_s: number;
  videos: number;
  throughput: number;
  cpu_ms: ProcessCpuMs;
  /** cpu_ms.total ÷ the floor's total. */
  ratio: number;
  /** cpu_ms.total ÷ the paced floor's total, where the floor has one. */
  ratio_paced?: number;
}

/** The service's CPU per video by process on one set of clips, one video at a time and at saturation, next to the floor. */
export interface CpuFloorRow {
  clips: string;
  files: number;
  /** `service`: the load steps' own clips; `reference`: the 4 s 360p clip the main process is judged on. */
  role: 'service' | 'reference';
  cores: number;
  floor: CpuFloor;
  one: FloorStep;
  saturation: FloorStep;
  /** cores ÷ the floor, videos/s; and the saturation step's throughput ÷ that. */
  floor_limit: number;
  ratio_floor_limit: number;
}

export interface SoakSample {
  t_s: number;
  rss_main_mib: number;
  rss_worker_mib: number;
  rss_decode_mib?: number;
  eld_p99_ms: number;
  completed: number;
}

export interface ServiceResults {
  model: string;
  config: { concurrency: number; queue_size: number; threads: number };
  engine: Array<{ concurrency: number; duration_s: number; videos: number; throughput: number }>;
  engine_throughput: number;
  steps: ServiceStep[];
  /** Best step vs the engine's best; also vs the engine at the service's own CONCURRENCY (what HTTP alone costs). */
  saturation: {
    concurrency: number;
    throughput: number;
    ratio: number;
    engine_same_concurrency: number;
    ratio_same_concurrency: number;
    /** cores ÷ the service's own decode-plus-inference CPU-seconds per video, measured in the saturation step; and throughput ÷ that. */
    cpu_limit?: number;
    ratio_cpu_limit?: number;
  };
  /** The same server on other clips (the reference clip), at one client and at the saturation step's clients (absent in runs before 2026-12-06 21:00). */
  probes?: Array<{ clips: string; steps: ServiceStep[] }>;
  /** Per set of clips, the service against the floor measured alone (absent in runs before 2026-12-06 21:00). */
  floor?: CpuFloorRow[];
  /**
   * Target 5g's reference: a bare node:http server doing only the main process's hand-offs (temp
   * file, two IPC round trips, a 1 KB answer; bench/lib/main-floor-server.mjs), its main-process CPU
   * per upload of the reference clip back to back and with each upload answered after the service's
   * one-client p50 (absent in runs before 2026-12-07 21:37).
   */
  main_reference?: { clips: string; gap_ms: number; uploads: number; bare_back_to_back_ms: number; bare_gap_ms: number };
  eld_p99_worst_ms: number;
  soak: {
    concurrency: number;
    duration_s: number;
    throughput: number;
    samples: SoakSample[];
    first_minute: SoakWindow;
    last_minute: SoakWindow;
    /** Total RSS, last minute ÷ first minute − 1. */
    growth: number;
    /** Each process group's own growth (absent in runs before 2026-12-01 13:00); the target is judged on the largest. */
    growth_by_process?: { main: number; inference: number; decode: number };
    eld_p99_worst_ms: number;
  } | null;
}

export interface SoakWindow {
  rss_main_mib: number;
  rss_worker_mib: number;
  rss_decode_mib?: number;
}

export interface OpProfile {
  label: string;
  wall_ms: number;
  kernel_ms: number;
  ops: Array<{ op: string; ms: number; share: number; calls: number }>;
  /** Kernel time by model stage (from the export's node names), with that stage's share of the run's FLOPs where known. */
  stages: Array<{ stage: string; ms: number; share: number; flops_share?: number }>;
}

/** Section 6: one graph of one model (fp32 or a variant), at batch 1 and with `batch` videos per run. */
export interface PrecisionRow {
  model: string;
  role: ModelInfo['role'];
  precision: 'fp32' | 'int8' | 'fp16';
  file: string;
  mib: number;
  clips: number;
  reps: number;
  batch: number;
  /** Per video: the mean over the clips of each clip's median at batch 1. */
  ms_per_video_b1: number;
  /** Per video: the median batched run over `batch`. */
  ms_per_video_batch: number;
  /**
   * What the batch pads: over the joint layers, `batch` × the longest live token count of its videos
   * (each run at batch 1) over their live tokens summed. 1 when every video keeps as many tokens.
   */
  padding?: number | undefined;
  gflops_mean: number;
  /** Against the fp32 graph on the same clips at batch 1. */
  top1_agreement: number;
  token_rel_diff: number;
}

/** Top-1 of the embedded model's graphs on a named split (python -m haltingvt eval --variant). */
export interface PrecisionAccuracy {
  model: string;
  split: string;
  clips: number;
  top1: Record<string, number>;
}

export interface TargetResult {
  id: string;
  what: string;
  target: string;
  value: string;
  met: boolean | null;
}

export interface Results {
  format: 'haltingvt-bench/1';
  mode: Mode;
  command: string;
  started: string;
  wall_s: number;
  machine: MachineFacts;
  models: ModelInfo[];
  halting: HaltingRow[];
  merging: MergingRow[];
  reference: ReferenceRow[];
  limit: { micro: MicroRow[]; rows: LimitRow[] };
  decode: { rows: DecodeRow[]; share: ShareRow[] };
  service: ServiceResults | null;
  profiles: OpProfile[];
  /** Absent in results written before section 6 existed. */
  precision?: PrecisionRow[];
  precision_accuracy?: PrecisionAccuracy | null;
  targets: TargetResult[];
  notes: string[];
  /** When each section was measured (its run's start), where a run merged sections of earlier runs (--merge). */
  provenance?: Partial<Record<'halting' | 'decode' | 'service', { started: string; command: string }>>;
}

const metText = (met: boolean | null): string => (met === null ? 'not measured' : met ? '**met**' : '**not met**');

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# Benchmark results (${r.mode} run)`, '');
  out.push(`Command: \`${r.command}\` — started ${r.started}, ${fmt(r.wall_s, 3)} s wall. Ratios are taken within this one run; absolute times on this shared 2-core machine are noisy. Times are medians over repetitions.`, '');
  out.push(
    table(['machine', ''], [
      ['CPU', `${m.cpu} (${m.cores} logical cores), ${fmt(m.memory_gib)} GiB RAM, ${m.os}`],
      ['Node.js / onnxruntime-node', `${m.node} / ${m.onnxruntime_node} (intra-op threads ${m.ort_intra_op_threads})`],
      ['PyTorch / onnxruntime (Python)', `${m.torch} (threads ${m.torch_threads}) / ${m.onnxruntime_python}`],
      ['ffmpeg', m.ffmpeg],
      ['int8 dot products', m.int8_dot_products === undefined ? 'not recorded' : m.int8_dot_products.join(', ') || 'none (no VNNI or AMX)'],
      ['load at start', `${m.loadavg_start.map((x) => x.toFixed(2)).join(' ')}${m.concurrent_load ? ` — ${m.concurrent_load}` : ''}`],
    ]),
    '',
  );
  out.push('## Models', '');
  out.push(
    table(
      ['role', 'model', 'architecture', 'dense GFLOPs', 'default knobs', 'note'],
      r.models.map((x) => [x.role, `\`${x.name}\``, x.summary, fmt(x.dense_gflops, 4), `keep ${x.knobs.keep_ratio}, threshold ${x.knobs.halt_threshold}`, x.note]),
    ),
    '',
  );

  out.push('## Targets', '');
  out.push(table(['#', 'what', 'target', 'measured', 'status'], r.targets.map((t) => [t.id, t.what, t.target, t.value, metText(t.met)])), '');

  out.push('## 1. Halting realisation (onnxruntime-node, engine ORT session, batch 1)', '');
  out.push('dense = keep 1.0 and halt_threshold = joint layers (halting off), same graph; realisation = (dense time / halting time) ÷ (dense GFLOPs / halting GFLOPs), over all clips (sum of per-clip medians). "keep only" = default keep, halting off.', '');
  out.push(
    table(
      ['model', 'clips × reps', 'dense ms/clip', 'keep only ms/clip', 'halting ms/clip', 'dense GFLOPs', 'halting GFLOPs (mean)', 'time ratio', 'FLOPs ratio', 'realisation', 'per-clip median', 'tokens per joint layer (mean)'],
      r.halting.map((h) => [
        h.model,
        `${h.clips} × ${h.reps}`,
        fmt(h.dense.ms_total / h.clips),
        fmt(h.keep_only.ms_total / h.clips),
        fmt(h.halting.ms_total / h.clips),
        fmt(h.dense.gflops_mean, 4),
        fmt(h.halting.gflops_mean, 4),
        fmt(h.speedup),
        fmt(h.flops_ratio),
        `**${fmt(h.realisation)}**`,
        fmt(h.realisation_per_clip_median),
        h.tokens_per_layer_mean.map((t) => t.toFixed(0)).join(' / '),
      ]),
    ),
    '',
  );

  if (r.merging.length > 0) {
    out.push('### 1b. Token merging\'s realisation (same session, batch 1)', '');
    out.push('Each merge setting against the same graph with merging off, both at the default keep with halting off (so token counts follow the knobs alone); realisation = time ratio ÷ FLOPs ratio, FLOPs including the merge\'s own cost (docs/contracts.md).', '');
    out.push(
      table(
        ['model', 'clips × reps', 'merge', 'off ms/clip', 'merged ms/clip', 'off GFLOPs', 'merged GFLOPs', 'time ratio', 'FLOPs ratio', 'realisation'],
        r.merging.map((m) => [
          m.model,
          `${m.clips} × ${m.reps}`,
          `${m.mode === 'tome' ? 'ToMe' : 'vid-TLDR'} ${m.ratio}`,
          fmt(m.off.ms_total / m.clips),
          fmt(m.merged.ms_total / m.clips),
          fmt(m.off.gflops_mean, 4),
          fmt(m.merged.gflops_mean, 4),
          fmt(m.speedup),
          fmt(m.flops_ratio),
          `**${fmt(m.realisation)}**`,
        ]),
      ),
      '',
    );
  }

  out.push('## 2. Against the PyTorch reference (authors\' semantics)', '');
  out.push('PyTorch `forward_reference` (dense masked loop), CPU, torch.no_grad, same weights (read back from model.onnx), same input tensors, same thread count, vs our ONNX graph in onnxruntime-node at the default knobs. Model time only (decode excluded on both sides).', '');
  out.push(
    table(
      ['model', 'clips × reps', 'threads', 'PyTorch reference ms/clip', 'PyTorch compact ms/clip', 'ORT ms/clip', 'speedup per video: median (min–max)', 'parity (logits rel. err, tokens)'],
      r.reference.map((x) => [
        x.model,
        `${x.clips} × ${x.reps}`,
        String(x.threads),
        fmt(avg(x.torch_ms_per_clip)),
        x.torch_compact_ms_per_clip ? fmt(avg(x.torch_compact_ms_per_clip)) : '–',
        fmt(avg(x.ort_ms_per_clip)),
        `**${fmt(x.speedup_median)}×** (${fmt(x.speedup_min)}–${fmt(x.speedup_max)})`,
        `${x.parity.max_rel_logits_err.toExponential(1)}, ${x.parity.tokens_equal ? 'equal' : 'DIFFER'}`,
      ]),
    ),
    '',
  );

  out.push('## 3. Against the machine\'s limit', '');
  out.push('GFLOP/s = 2 × multiply-adds / time. Micro graphs built with onnx.helper (bench/py/helper.py micro) and run through the same session options.', '');
  out.push(table(['graph', 'multiply-adds', 'reps', 'ms', 'GFLOP/s'], r.limit.micro.map((x) => [x.name, fmt(x.macs / 1e9, 4) + ' G', String(x.reps), fmt(x.ms_median), fmt(x.gflop_per_s)])), '');
  out.push(
    table(
      ['model', 'setting', 'model GFLOP/s', 'block', 'block GFLOP/s', '% of block', '% of MatMul'],
      r.limit.rows.map((x) => [x.model, x.setting, fmt(x.gflop_per_s), x.block, fmt(x.block_gflop_per_s), pct(x.fraction_of_block, 0), pct(x.fraction_of_matmul, 0)]),
    ),
    '',
  );

  out.push('## 4. Decoding', '');
  out.push('8 frames sampled at the model\'s rule and scaled/cropped to the model input, wall / CPU ms (CPU = user + sys, children included), medians; ours and PyAV get more repetitions on short clips (at least ~0.5 s of decoding each). "ours" is the decode stage a decode worker runs (node-av, one open, frame plan, non-reference frames that are not sampled skipped, 1 decoder thread); "ffmpeg CLI" is ffprobe + one ffmpeg select pass per video, the engine\'s path before node-av; PyAV and decord take the same frames at 1 thread, timed inside one Python process. The last column is ours against the best anchor\'s CPU.', '');
  const wc = (t: { wall_ms: number; cpu_ms: number }): string => `${fmt(t.wall_ms)} / ${fmt(t.cpu_ms)}`;
  out.push(
    table(
      ['clip', 'frames', 'decoded of passed (seeks)', 'reps', 'ours ms', 'ffmpeg CLI ms', 'PyAV ms', 'decord ms', 'CPU: CLI / ours', 'CPU: ours / best anchor'],
      r.decode.rows.map((x) => [
        x.clip,
        String(x.frames),
        `${x.decoded_frames}${x.planned_frames === undefined ? '' : ` of ${x.planned_frames}`} (${x.seeks})`,
        String(x.reps),
        wc(x.ours),
        wc(x.cli),
        wc(x.pyav),
        wc(x.decord),
        `${fmt(x.cli.cpu_ms / x.ours.cpu_ms)}×`,
        `${fmt(x.ours.cpu_ms / Math.min(x.pyav.cpu_ms, x.decord.cpu_ms))}×`,
      ]),
    ),
    '',
  );
  out.push('Decode share of end-to-end latency (engine.classify, timings_s; decode = decode worker + preprocessing):', '');
  out.push(
    table(
      ['model', 'clip', 'reps', 'decode s', 'infer s', 'total s', 'decode share'],
      r.decode.share.map((x) => [x.model, x.clip, String(x.reps), fmt(x.decode_s), fmt(x.infer_s), fmt(x.total_s), pct(x.share, 0)]),
    ),
    '',
  );

  out.push('## 5. The service under load', '');
  const s = r.service;
  if (!s) out.push('(not run)', '');
  else {
    out.push(`Real server process (\`node dist/server.js\`, model \`${s.model}\`, CONCURRENCY=${s.config.concurrency}, QUEUE_SIZE=${s.config.queue_size}, INTRA_OP_THREADS=${s.config.threads}${s.config.threads === 0 ? ': the default, the cores its decoding leaves' : ''}) on loopback, started as the Dockerfile starts it (src/node-flags.ts); closed-loop clients posting held-out clips as raw bodies; a client backs off 100 ms after a 429/503. Event-loop delay: monitorEventLoopDelay (1 ms resolution) in the server's main thread, read over IPC, on only in a 5 s window after each step's CPU is read (at the same load) and through the soak: its timer would otherwise count in the main process's CPU. RSS: /proc of the server, of its inference worker and of its decode workers (together). CPU per video: /proc CPU time of each process over the step ÷ videos answered; the own-CPU limit is cores ÷ the decode-plus-inference CPU-seconds the service itself spent per video (so CPU it wastes raises it: the floor below does not move with the service).`, '');
    out.push(
      table(
        ['engine alone (no HTTP): concurrency', 'seconds', 'videos', 'videos/s'],
        s.engine.map((e) => [String(e.concurrency), fmt(e.duration_s), String(e.videos), fmt(e.throughput)]),
      ),
      '',
    );
    out.push(
      table(
        ['clients', 's', 'requests', 'ok', '429', '503', 'videos/s', '% of engine', 'p50 ms', 'p99 ms', 'loop delay p99 ms (max)', 'RSS main / inference / decode MiB', 'server stage ms: queue / decode / infer'],
        s.steps.map((x) => [
          String(x.concurrency),
          fmt(x.duration_s),
          String(x.requests),
          String(x.ok),
          pct(x.rate_429, 0),
          pct(x.rate_503, 0),
          fmt(x.throughput),
          pct(x.throughput / s.engine_throughput, 0),
          fmt(x.p50_ms),
          fmt(x.p99_ms),
          `${fmt(x.eld_p99_ms)} (${fmt(x.eld_max_ms)})`,
          `${fmt(x.rss_main_mib)} / ${fmt(x.rss_worker_mib)} / ${fmt(x.rss_decode_mib)}`,
          `${fmt(x.stage_ms.queue)} / ${fmt(x.stage_ms.decode)} / ${fmt(x.stage_ms.infer)}`,
        ]),
      ),
      '',
    );
    const withCpu = s.steps.filter((x) => x.cpu);
    if (withCpu.length > 0) {
      out.push(
        table(
          ['clients', 'videos/s', 'CPU ms per video: decode + inference workers', 'server main', 'bench clients', 'own-CPU limit videos/s', '% of own-CPU limit', 'machine: server + clients / other processes (at nice > 0) / idle'],
          withCpu.map((x) => {
            const c = x.cpu as StepCpu;
            const limit = c.cores / c.decode_infer_s_per_video;
            return [String(x.concurrency), fmt(x.throughput), fmt(c.decode_infer_s_per_video * 1000), fmt(c.main_s_per_video * 1000), fmt(c.clients_s_per_video * 1000), fmt(limit), pct(x.throughput / limit, 0), `${pct(c.ours_fraction, 0)} / ${pct(c.others_fraction, 0)} (${pct(c.niced_fraction, 0)}) / ${pct(c.idle_fraction, 0)}`];
          }),
        ),
        '',
      );
    }
    if (s.floor && s.floor.length > 0) out.push(...floorTable(s.floor));
    if (s.soak) {
      const k = s.soak;
      out.push(
        `Soak: ${k.concurrency} clients for ${fmt(k.duration_s)} s, ${fmt(k.throughput)} videos/s, RSS sampled every few seconds. First minute: main ${fmt(k.first_minute.rss_main_mib)} MiB, inference worker ${fmt(k.first_minute.rss_worker_mib)} MiB, decode workers ${fmt(k.first_minute.rss_decode_mib)} MiB; last minute: main ${fmt(k.last_minute.rss_main_mib)} MiB, inference worker ${fmt(k.last_minute.rss_worker_mib)} MiB, decode workers ${fmt(k.last_minute.rss_decode_mib)} MiB (total growth ${pct(k.growth)}${k.growth_by_process ? `; main ${pct(k.growth_by_process.main)}, inference ${pct(k.growth_by_process.inference)}, decode ${pct(k.growth_by_process.decode)}` : ''}); worst loop-delay p99 in a sample window ${fmt(k.eld_p99_worst_ms)} ms.`,
        '',
      );
      out.push(
        table(
          ['t s', 'RSS main MiB', 'RSS inference MiB', 'RSS decode MiB', 'loop delay p99 ms', 'completed'],
          k.samples.filter((_, i) => i % Math.max(1, Math.round(k.samples.length / 12)) === 0 || i === k.samples.length - 1).map((x) => [fmt(x.t_s), fmt(x.rss_main_mib), fmt(x.rss_worker_mib), fmt(x.rss_decode_mib), fmt(x.eld_p99_ms), String(x.completed)]),
        ),
        '',
      );
    } else out.push('Soak: not run in this mode (full mode runs 5 minutes at saturation).', '');
  }

  out.push('## 6. Precision and batching', '');
  const pr = r.precision ?? [];
  if (pr.length === 0) out.push('(not run)', '');
  else {
    out.push('Each graph of a model (fp32 model.onnx, the int8 variant from its manifest) through the engine\'s ORT session options at the default knobs; "batch 1" is the mean over the clips of each clip\'s median, "batched" the median run of all clips in one batch divided by their number. Speed-ups are against the same model\'s fp32 graph in this run. FLOPs are counted as multiply-adds whatever the precision (the paper\'s convention).', '');
    const fp32 = (x: PrecisionRow): PrecisionRow | undefined => pr.find((y) => y.model === x.model && y.precision === 'fp32');
    out.push(
      table(
        ['model', 'graph', 'MiB', 'clips × reps', 'ms/video batch 1', `ms/video batched`, 'batched / batch 1', 'tokens padded in the batch', 'speed-up vs fp32 (batch 1)', 'speed-up vs fp32 (batched)', 'GFLOPs (mean)', 'top-1 = fp32', 'tokens vs fp32'],
        pr.map((x) => [
          x.model,
          `${x.precision} (\`${x.file}\`)`,
          fmt(x.mib),
          `${x.clips} × ${x.reps}`,
          fmt(x.ms_per_video_b1),
          `${fmt(x.ms_per_video_batch)} (batch ${x.batch})`,
          `${fmt(x.ms_per_video_batch / x.ms_per_video_b1)}×`,
          x.padding === undefined ? '' : `${fmt(x.padding)}×`,
          `**${fmt((fp32(x)?.ms_per_video_b1 ?? Number.NaN) / x.ms_per_video_b1)}×**`,
          `${fmt((fp32(x)?.ms_per_video_batch ?? Number.NaN) / x.ms_per_video_batch)}×`,
          fmt(x.gflops_mean, 4),
          pct(x.top1_agreement, 0),
          pct(x.token_rel_diff, 1),
        ]),
      ),
      '',
    );
  }
  const acc = r.precision_accuracy;
  if (acc) {
    out.push(`Top-1 on the ${acc.split} split (${acc.clips} clips, \`python -m haltingvt eval --model ${acc.model} [--variant P] --split ${acc.split}\`, default knobs): ${Object.entries(acc.top1).map(([p, t]) => `${p} ${pct(t, 1)}`).join(', ')}.`, '');
  }

  if (r.profiles.length > 0) {
    out.push('## Where the time goes (ORT profiling)', '');
    out.push('onnxruntime-node session option enableProfiling; kernel time by operator type (nodes inside the per-layer `If` subgraphs are counted once, the `If` itself is left out).', '');
    for (const p of r.profiles) {
      out.push(`**${p.label}** — wall ${fmt(p.wall_ms)} ms per run with profiling on (slower than the unprofiled runs above, most for small graphs), kernels ${fmt(p.kernel_ms)} ms (${pct(p.kernel_ms / p.wall_ms, 0)} of wall):`, '');
      out.push(table(['op', 'ms per run', 'share of kernel time', 'calls per run'], p.ops.slice(0, 10).map((o) => [o.op, fmt(o.ms), pct(o.share, 0), fmt(o.calls)])), '');
      if (p.stages.length > 1) {
        out.push(table(['stage', 'ms per run', 'share of kernel time', 'share of FLOPs'], p.stages.map((x) => [x.stage, fmt(x.ms), pct(x.share, 0), pct(x.flops_share, 0)])), '');
      }
    }
  }

  if (r.notes.length > 0) {
    out.push('## Run notes', '');
    for (const n of r.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

/** Section 5's CPU per video by process against the floor measured alone, one video at a time and at saturation, per set of clips. */
function floorTable(rows: CpuFloorRow[]): string[] {
  const text =
    'CPU per video against the floor. The floor is what a video must cost at least, measured alone in the bench process before the server starts, on the same clips: ' +
    '"decode alone" is the engine\'s decode worker pool (one worker, one video at a time, the service\'s decoder threads; /proc CPU of the worker, IPC of the frames included), with PyAV on the same clips at 1 thread beside it; ' +
    '"inference alone" is one ORT session at one intra-op thread on the clips\' preprocessed tensors at the default knobs, batch 1 (process CPU ÷ runs; CPU ÷ wall near 1 shows one thread did the work). ' +
    'The service\'s main, inference and decode columns are /proc CPU of its processes over the step ÷ videos answered; what they spend beyond the floor (HTTP and uploads, IPC, normalising the frames, waking pool threads) is overhead. ' +
    'The reference clip runs on the same server after the load steps, at one client and at the saturation step\'s clients. ' +
    '"Paced" is the same floor measured again with each part pausing after every video for as long as the other part\'s video takes, so that it sleeps between videos as the service\'s workers do when one client sends one video at a time (their main process and the client add more sleep still); ' +
    'on a host where a process woken from sleep pays more CPU for the same work, the one-client row read against it says how much of its ratio is the host\'s price and how much the service\'s.';
  const body = rows.flatMap((x) => {
    const f = x.floor;
    const row = (load: string, step: FloorStep, limit: string): string[] => [
      x.clips,
      load,
      fmt(step.throughput),
      fmt(step.cpu_ms.main),
      fmt(step.cpu_ms.inference),
      fmt(step.cpu_ms.decode),
      fmt(step.cpu_ms.total),
      `${fmt(f.decode_ms)} (PyAV ${fmt(f.pyav_ms)})`,
      `${fmt(f.inference_ms)} (${fmt(f.inference_ms / f.inference_wall_ms)})`,
      fmt(f.total_ms),
      `**${fmt(step.ratio)}×**`,
      step.ratio_paced !== undefined && f.paced ? `${fmt(f.paced.decode_ms)} + ${fmt(f.paced.inference_ms)} = ${fmt(f.paced.total_ms)} (${fmt(step.ratio_paced)}×)` : '–',
      limit,
    ];
    return [
      row('1 client', x.one, '–'),
      row(`${x.saturation.concurrency} clients (saturation)`, x.saturation, `${fmt(x.floor_limit)} (**${pct(x.ratio_floor_limit, 0)}**)`),
    ];
  });
  return [
    text,
    '',
    table(
      ['clips', 'load', 'videos/s', 'CPU ms per video: main', 'inference', 'decode', 'total', 'floor: decode alone (PyAV)', 'inference alone, 1 thread (CPU ÷ wall)', 'floor', 'total ÷ floor', 'floor paced as one client: decode + inference = total (total ÷ it)', `cores ÷ floor videos/s (throughput's share)`],
      body,
    ),
    '',
  ];
}

function avg(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export const TABLES_START = '<!-- bench tables: written by bench/run.ts, replaced by each run; a person writes outside these markers -->';
export const TABLES_END = '<!-- end of bench tables -->';

/** `page` with the text between the markers replaced by `tables`; a page without the markers gets them at its end. */
export function withTables(page: string, tables: string): string {
  const block = `${TABLES_START}\n${tables.trimEnd()}\n${TABLES_END}`;
  const start = page.indexOf(TABLES_START);
  const end = page.indexOf(TABLES_END);
  if (start < 0 || end < start) return page.trim() === '' ? `${block}\n` : `${page.trimEnd()}\n\n${block}\n`;
  return `${page.slice(0, start)}${block}${page.slice(end + TABLES_END.length)}`;
}

/**
 * Writes results.json into `dir`, and the tables into results.md between the markers, leaving what
 * a person wrote around them (the reading of the figures) as it was; returns their paths.
 */
export async function writeResults(dir: string, r: Results): Promise<{ json: string; md: string }> {
  await mkdir(dir, { recursive: true });
  const json = path.join(dir, 'results.json');
  const md = path.join(dir, 'results.md');
  await writeFile(json, `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  const page = await readFile(md, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  await writeFile(md, withTables(page, renderMarkdown(r)));
  return { json, md };
}
