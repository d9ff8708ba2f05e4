/**
 * The benchmark's pure parts (statistics, target judging, the results writer) on a made-up result,
 * so that bench/ cannot rot silently. No timing is measured or asserted here.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { floorRow } from '../../bench/lib/floor-rows.js';
import { renderMarkdown, TABLES_END, TABLES_START, withTables, writeResults, type Results, type RunStats, type StepCpu } from '../../bench/lib/report.js';
import { fmt, median, peakGrowth, percentile, summarize } from '../../bench/lib/stats.js';
import { buildTargets } from '../../bench/lib/targets.js';
import { padding } from '../../bench/lib/precision.js';

const run = (ms: number[], gflops: number[], keep: number, thr: number): RunStats => ({
  knobs: { keep_ratio: keep, halt_threshold: thr },
  ms_per_clip: ms,
  ms_total: ms.reduce((a, b) => a + b, 0),
  gflops_per_clip: gflops,
  gflops_mean: gflops.reduce((a, b) => a + b, 0) / gflops.length,
  gflop_per_s: (2 * gflops.reduce((a, b) => a + b, 0)) / (ms.reduce((a, b) => a + b, 0) / 1000),
});

function fakeResults(): Results {
  return {
    format: 'haltingvt-bench/1',
    mode: 'quick',
    command: 'node --import tsx bench/run.ts --quick',
    started: '2026-01-01T00:00:00.000Z',
    wall_s: 42,
    machine: {
      cpu: 'Test CPU', cores: 2, memory_gib: 8, os: 'Linux', node: 'v20', onnxruntime_node: '1.30.0', torch: '2.x', onnxruntime_python: '1.x',
      ffmpeg: 'ffmpeg 5', ort_intra_op_threads: 2, torch_threads: 2, loadavg_start: [0.1, 0.2, 0.3], concurrent_load: null,
    },
    models: [
      { role: 'embedded', name: 'tiny', dir: 'models/fixtures/tiny', preset: '–', summary: 's', dense_gflops: 1, knobs: { keep_ratio: 0.5, halt_threshold: 0.99 }, joint_layers: 4, note: '' },
      { role: 'preset', name: 'paper', dir: 'bench/out/models/p', preset: 'paper', summary: 's', dense_gflops: 55.5, knobs: { keep_ratio: 0.5, halt_threshold: 0.99 }, joint_layers: 10, note: '' },
    ],
    halting: [
      {
        model: 'tiny', role: 'embedded', clips: 2, reps: 1,
        dense: run([10, 10], [1, 1], 1, 4), keep_only: run([6, 6], [0.6, 0.6], 0.5, 4), halting: run([5, 5], [0.5, 0.5], 0.5, 0.99),
        speedup: 2, flops_ratio: 2, realisation: 1, realisation_per_clip_median: 1, tokens_per_layer_mean: [21, 20, 10, 5],
      },
      {
        model: 'paper', role: 'preset', clips: 2, reps: 1,
        dense: run([800, 800], [55.5, 55.5], 1, 10), keep_only: run([400, 400], [26.5, 26.5], 0.5, 10), halting: run([500, 500], [24.2, 24.2], 0.5, 0.99),
        speedup: 1.6, flops_ratio: 2.29, realisation: 0.7, realisation_per_clip_median: 0.7, tokens_per_layer_mean: [785, 700],
      },
    ],
    merging: [
      { model: 'paper', role: 'preset', clips: 2, reps: 1, mode: 'tome', ratio: 0.2, off: run([500, 500], [30, 30], 0.5, 10), merged: run([300, 300], [16.6, 16.6], 0.5, 10), speedup: 1.74, flops_ratio: 1.81, realisation: 0.96 },
      { model: 'paper', role: 'preset', clips: 2, reps: 1, mode: 'tldr', ratio: 0.2, off: run([500, 500], [30, 30], 0.5, 10), merged: run([400, 400], [16.7, 16.7], 0.5, 10), speedup: 1.25, flops_ratio: 1.8, realisation: 0.69 },
      { model: 'tiny', role: 'embedded', clips: 2, reps: 1, mode: 'tome', ratio: 0.2, off: run([10, 10], [0.7, 0.7], 0.5, 4), merged: run([12, 12], [0.6, 0.6], 0.5, 4), speedup: 0.83, flops_ratio: 1.17, realisation: 0.71 },
    ],
    reference: [
      { model: 'tiny', role: 'embedded', clips: 2, reps: 1, threads: 2, torch_ms_per_clip: [50, 50], torch_compact_ms_per_clip: [40, 40], ort_ms_per_clip: [5, 5], speedup_per_clip: [10, 10], speedup_median: 10, speedup_min: 10, speedup_max: 10, parity: { max_rel_logits_err: 1e-7, tokens_equal: true } },
      { model: 'paper', role: 'preset', clips: 2, reps: 1, threads: 2, torch_ms_per_clip: [600, 600], torch_compact_ms_per_clip: null, ort_ms_per_clip: [500, 500], speedup_per_clip: [1.2, 1.2], speedup_median: 1.2, speedup_min: 1.2, speedup_max: 1.2, parity: { max_rel_logits_err: 1e-7, tokens_equal: true } },
    ],
    limit: {
      micro: [{ name: 'block', kind: 'block', macs: 1e9, reps: 3, ms_median: 20, gflop_per_s: 100 }],
      rows: [
        { model: 'tiny', setting: 'halting', gflop_per_s: 90, block: 'block', block_gflop_per_s: 100, fraction_of_block: 0.9, matmul_gflop_per_s: 120, fraction_of_matmul: 0.75 },
        { model: 'paper', setting: 'halting', gflop_per_s: 50, block: 'block', block_gflop_per_s: 100, fraction_of_block: 0.5, matmul_gflop_per_s: 120, fraction_of_matmul: 0.42 },
      ],
    },
    decode: {
      rows: [{ clip: '10 s 1080p', width: 1920, height: 1080, duration_s: 10, frames: 250, reps: 1, decoded_frames: 104, seeks: 7, ours: { wall_ms: 500, cpu_ms: 700 }, cli: { wall_ms: 1100, cpu_ms: 1800 }, pyav: { wall_ms: 520, cpu_ms: 900 }, decord: { wall_ms: NaN, cpu_ms: NaN } }],
      share: [{ model: 'tiny', clip: '10 s 1080p', reps: 1, decode_s: 0.3, infer_s: 0.01, total_s: 0.31, share: 0.97 }],
    },
    service: {
      model: 'tiny',
      config: { concurrency: 2, queue_size: 16, threads: 2 },
      engine: [{ concurrency: 2, duration_s: 2, videos: 10, throughput: 5 }],
      engine_throughput: 5,
      steps: [{ concurrency: 2, duration_s: 2, requests: 10, ok: 9, rate_429: 0.1, rate_503: 0, other_errors: 0, throughput: 4.5, p50_ms: 300, p99_ms: 500, eld_p50_ms: 1, eld_p99_ms: 4, eld_max_ms: 9, rss_main_mib: 90, rss_worker_mib: 120, stage_ms: { queue: 1, decode: 200, infer: 5 } }],
      saturation: { concurrency: 2, throughput: 4.5, ratio: 0.9, engine_same_concurrency: 5, ratio_same_concurrency: 0.9 },
      eld_p99_worst_ms: 4,
      soak: null,
    },
    profiles: [{ label: 'paper, halting (keep 0.5, threshold 0.99)', wall_ms: 10, kernel_ms: 8, ops: [{ op: 'MatMul', ms: 5, share: 0.625, calls: 40 }], stages: [{ stage: 'joint layers', ms: 5, share: 0.6, flops_share: 0.7 }, { stage: 'embedding', ms: 3, share: 0.4 }] }],
    precision: [
      { model: 'tiny', role: 'embedded', precision: 'fp32', file: 'model.onnx', mib: 8, clips: 8, reps: 3, batch: 8, ms_per_video_b1: 10, ms_per_video_batch: 6, gflops_mean: 0.3, top1_agreement: 1, token_rel_diff: 0 },
      { model: 'tiny', role: 'embedded', precision: 'int8', file: 'model.int8.onnx', mib: 3, clips: 8, reps: 3, batch: 8, ms_per_video_b1: 9, ms_per_video_batch: 5, gflops_mean: 0.3, top1_agreement: 1, token_rel_diff: 0.01 },
      { model: 'paper', role: 'preset', precision: 'fp32', file: 'model.onnx', mib: 90, clips: 8, reps: 3, batch: 8, ms_per_video_b1: 1000, ms_per_video_batch: 900, gflops_mean: 24, top1_agreement: 1, token_rel_diff: 0 },
      { model: 'paper', role: 'preset', precision: 'int8', file: 'model.int8.onnx', mib: 24, clips: 8, reps: 3, batch: 8, ms_per_video_b1: 600, ms_per_video_batch: 500, gflops_mean: 24.5, top1_agreement: 1, token_rel_diff: 0.02 },
    ],
    precision_accuracy: { model: 'models/default', split: 'test', clips: 480, top1: { fp32: 0.95, int8: 0.945 } },
    targets: [],
    notes: ['a note'],
  };
}

describe('bench statistics', () => {
  it('medians and nearest-rank percentiles', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(summarize([1, 2, 3])).toMatchObject({ n: 3, median: 2, min: 1, max: 3, mean: 2 });
    expect(fmt(Number.NaN)).toBe('–');
    expect(fmt(0.0012345)).toBe('0.00123');
    // The first sample is warm-up; then the last third's peak over the first third's.
    expect(peakGrowth([500, 100, 110, 100, 105, 120, 115])).toBeCloseTo(120 / 110 - 1, 12);
    expect(peakGrowth([500, 100, 100])).toBe(0);
  });
});

describe('bench targets and results writer', () => {
  it('judges every target', () => {
    const targets = buildTargets(fakeResults());
    const byId = Object.fromEntries(targets.map((t) => [t.id, t]));
    expect(Object.keys(byId).sort()).toEqual(['1a', '1b', '1m', '1n', '2a', '2b', '3a', '3b', '4', '5a', '5b', '5c', '6a', '6b', '6c', '6d']);
    // Merging is judged on the preset at ratio 0.2 only (the embedded model's row is reported, not judged).
    expect([byId['1m']?.what, byId['1m']?.met]).toEqual(['ToMe 0.2 realisation, paper preset (`paper`)', true]);
    expect([byId['1n']?.what, byId['1n']?.met]).toEqual(['vid-TLDR 0.2 realisation, paper preset (`paper`)', false]);
    expect(byId['1a']?.met).toBe(true);
    expect(byId['1b']?.met).toBe(false);
    expect(byId['2a']?.met).toBe(true);
    expect(byId['2b']?.met).toBe(false);
    expect(byId['3a']?.met).toBe(true);
    expect(byId['3b']?.met).toBe(false);
    expect(byId['4']?.met).toBe(true);
    expect(byId['5a']?.met).toBe(true);
    expect(byId['5b']?.met).toBe(true);
    expect(byId['5c']?.met).toBeNull();
    const slowDecode = fakeResults();
    slowDecode.decode.rows[0]!.ours.cpu_ms = 2000;
    const decode = buildTargets(slowDecode).find((t) => t.id === '4');
    expect(decode?.met).toBe(false);
    expect(byId['6a']?.met).toBe(false); // 1.67x < 1.8x
    expect(byId['6b']?.met).toBe(true); // half a point lost
    expect(byId['6c']?.met).toBe(true); // 0.6x
    const worse = fakeResults();
    worse.precision![3]!.ms_per_video_b1 = 500;
    worse.precision_accuracy!.top1.int8 = 0.935;
    worse.precision![0]!.ms_per_video_batch = 8;
    const again = Object.fromEntries(buildTargets(worse).map((t) => [t.id, t.met]));
    expect([again['6a'], again['6b'], again['6c']]).toEqual([true, false, false]);
  });

  it('judges merging at 0.95, fp32 against the authors\' code at 1.5×, and int8 against it at 3× where the CPU has int8 dot products', () => {
    const r = fakeResults();
    r.merging.find((m) => m.role === 'preset' && m.mode === 'tome')!.realisation = 0.94;
    r.reference[1]!.speedup_median = 1.5;
    let byId = Object.fromEntries(buildTargets(r).map((t) => [t.id, t]));
    expect([byId['1m']?.met, byId['2b']?.met, byId['2b']?.target]).toEqual([false, true, '≥ 1.5×']);
    // Section 2's 600 ms of PyTorch against section 6's int8 run.
    // A run that did not record the CPU's instructions is judged, and says so.
    expect([byId['6d']?.met, byId['6d']?.value]).toEqual([false, "1× (600 → 600 ms, batch 1); the CPU's int8 instructions were not recorded"]);
    r.precision![3]!.ms_per_video_b1 = 150;
    r.machine.int8_dot_products = ['amx_int8'];
    byId = Object.fromEntries(buildTargets(r).map((t) => [t.id, t]));
    expect([byId['6d']?.met, byId['6d']?.value]).toEqual([true, '4× (600 → 150 ms, batch 1)']);
    r.machine.int8_dot_products = [];
    byId = Object.fromEntries(buildTargets(r).map((t) => [t.id, t]));
    expect(byId['6d']?.met).toBeNull();
    expect(byId['6d']?.value).toContain('no int8 dot products');
    r.machine.int8_dot_products = ['avx512_vnni'];
    expect(buildTargets(r).find((t) => t.id === '6d')?.met).toBe(true);
    expect(renderMarkdown({ ...r, targets: buildTargets(r) })).toContain('| int8 dot products | avx512_vnni |');
  });

  it('judges the CPU-limit ratio and each process RSS on its own when a run measured them', () => {
    const r = fakeResults();
    const service = r.service as NonNullable<typeof r.service>;
    service.steps[0]!.cpu = { cores: 2, decode_infer_s_per_video: 0.4, main_s_per_video: 0.02, clients_s_per_video: 0.03, niced_fraction: 0.2, idle_fraction: 0.05, ours_fraction: 0.95, others_fraction: 0 };
    Object.assign(service.saturation, { cpu_limit: 5, ratio_cpu_limit: 0.9 }); // 4.5 videos/s of 2 ÷ 0.4
    const sample = { t_s: 1, rss_main_mib: 100, rss_worker_mib: 100, rss_decode_mib: 200, eld_p99_ms: 3, completed: 1 };
    service.soak = {
      concurrency: 8, duration_s: 180, throughput: 4, samples: [sample], eld_p99_worst_ms: 3,
      first_minute: { rss_main_mib: 100, rss_worker_mib: 100, rss_decode_mib: 200 },
      last_minute: { rss_main_mib: 100, rss_worker_mib: 110, rss_decode_mib: 200 },
      growth: 0.025, // the total hides the inference worker's 10%
      growth_by_process: { main: 0, inference: 0.1, decode: 0 },
    };
    const byId = Object.fromEntries(buildTargets(r).map((t) => [t.id, t]));
    expect(byId['5d']?.met).toBe(true);
    expect(byId['5d']?.value).toContain('4.5 vs 5 videos/s = 90%');
    expect(byId['5c']?.met).toBe(false);
    expect(byId['5c']?.value).toContain('inference 10.0%');
    service.saturation.ratio_cpu_limit = 0.6;
    expect(buildTargets(r).find((t) => t.id === '5d')?.met).toBe(false);
    expect(renderMarkdown({ ...r, targets: buildTargets(r) })).toContain('% of own-CPU limit');
  });

  it('judges the service against the floor measured alone, and the main process on the reference clip', () => {
    const r = fakeResults();
    const service = r.service as NonNullable<typeof r.service>;
    const floor = { decode_ms: 50, decode_wall_ms: 51, decode_videos: 40, decode_threads: 1, pyav_ms: 80, inference_ms: 30, inference_wall_ms: 30.5, inference_runs: 60, total_ms: 80 };
    const step = (concurrency: number, throughput: number, main: number, inference: number, decode: number) => ({
      concurrency, duration_s: 2, videos: throughput * 2, throughput,
      cpu_ms: { main, inference, decode, total: main + inference + decode }, ratio: (main + inference + decode) / floor.total_ms,
    });
    service.floor = [
      { clips: 'held-out clips (2)', files: 2, role: 'service', cores: 2, floor, one: step(1, 10, 2, 32, 52), saturation: step(8, 23.5, 1.5, 30, 50), floor_limit: 25, ratio_floor_limit: 0.94 },
      { clips: '4 s 360p H.264', files: 1, role: 'reference', cores: 2, floor, one: step(1, 10, 1.8, 33, 55), saturation: step(8, 23, 1.9, 31, 51), floor_limit: 25, ratio_floor_limit: 0.92 },
    ];
    let byId = Object.fromEntries(buildTargets(r).map((t) => [t.id, t]));
    expect([byId['5e']?.met, byId['5f']?.met, byId['5g']?.met]).toEqual([true, true, true]);
    expect(byId['5e']?.value).toContain('held-out clips (2): 1.07× at 1 client, 1.02× at 8');
    expect(byId['5f']?.value).toContain('23.5 vs 25 videos/s = 94%');
    expect(byId['5g']?.value).toBe('1.8 ms at 1 client, 1.9 ms at 8');
    // The worse of the two loads decides: 1 client at 1.2× the floor misses even though saturation is near it.
    service.floor[1]!.one = step(1, 10, 3, 40, 53);
    service.floor[0]!.ratio_floor_limit = 0.8;
    byId = Object.fromEntries(buildTargets(r).map((t) => [t.id, t]));
    expect([byId['5e']?.met, byId['5f']?.met, byId['5g']?.met]).toEqual([false, false, false]);
    const md = renderMarkdown({ ...r, targets: buildTargets(r) });
    expect(md).toContain('CPU per video against the floor');
    expect(md).toContain('| 4 s 360p H.264 | 8 clients (saturation) | 23 | 1.9 | 31 | 51 | 83.9 | 50 (PyAV 80) | 30 (0.984) | 80 | **1.05×** | – | 25 (**92%**) |');
  });

  it('reads one client against the floor paced as one client, and 5g beside a bare server', () => {
    const r = fakeResults();
    const service = r.service as NonNullable<typeof r.service>;
    const floor = { decode_ms: 50, decode_wall_ms: 51, decode_videos: 40, decode_threads: 1, pyav_ms: 80, inference_ms: 30, inference_wall_ms: 30.5, inference_runs: 60, total_ms: 80, paced: { decode_ms: 60, inference_ms: 40, total_ms: 100 } };
    const cpu = (main: number, inference: number, decode: number): StepCpu => ({
      cores: 2, main_s_per_video: main / 1000, inference_s_per_video: inference / 1000, decode_s_per_video: decode / 1000,
      decode_infer_s_per_video: (inference + decode) / 1000, clients_s_per_video: 0.001, niced_fraction: 0, idle_fraction: 0.1, ours_fraction: 0.9, others_fraction: 0,
    });
    const one = { ...service.steps[0]!, concurrency: 1, throughput: 10, cpu: cpu(3, 40, 67) };
    const sat = { ...service.steps[0]!, concurrency: 4, throughput: 20, cpu: cpu(2, 32, 54) };
    const row = floorRow('4 s 360p H.264', 1, 'reference', floor, [one, sat]);
    if (!row) throw new Error('no row');
    // 110 CPU ms against 80 back to back and 100 paced; at saturation no worker sleeps, so no paced ratio.
    expect([row.one.ratio, row.one.ratio_paced]).toEqual([110 / 80, 1.1]);
    expect(row.saturation.ratio_paced).toBeUndefined();
    service.floor = [row];
    service.main_reference = { clips: '4 s 360p H.264', gap_ms: 66, uploads: 200, bare_back_to_back_ms: 0.9, bare_gap_ms: 2.5 };
    const byId = Object.fromEntries(buildTargets(r).map((t) => [t.id, t]));
    expect(byId['5e']?.value).toContain('1.38× at 1 client (1.1× the floor paced as one client)');
    expect(byId['5g']?.value).toBe("3 ms at 1 client, 2 ms at 4 (a bare node:http server doing only the hand-offs: 0.9 ms answering at once, 2.5 ms answering each upload after the service's one-client p50 of 66 ms)");
    expect(byId['5g']?.met).toBe(false);
    expect(renderMarkdown({ ...r, targets: buildTargets(r) })).toContain('| 1 client | 10 | 3 | 40 | 67 | 110 | 50 (PyAV 80) | 30 (0.984) | 80 | **1.38×** | 60 + 40 = 100 (1.1×) | – |');
  });

  it('puts the tables between markers, after what a page already holds', () => {
    expect(withTables('', '| a |\n')).toBe(`${TABLES_START}\n| a |\n${TABLES_END}\n`);
    expect(withTables('# Notes\n', '| a |')).toBe(`# Notes\n\n${TABLES_START}\n| a |\n${TABLES_END}\n`);
    expect(withTables(`x\n${TABLES_START}\nold\n${TABLES_END}\ny\n`, '| b |')).toBe(`x\n${TABLES_START}\n| b |\n${TABLES_END}\ny\n`);
  });

  it('renders every section and writes parseable JSON', async () => {
    const r = fakeResults();
    r.targets = buildTargets(r);
    const md = renderMarkdown(r);
    for (const heading of ['## Targets', '## 1. Halting realisation', "### 1b. Token merging's realisation", '## 2. Against the PyTorch reference', "## 3. Against the machine's limit", '## 4. Decoding', '## 5. The service under load', '## 6. Precision and batching']) {
      expect(md).toContain(heading);
    }
    expect(md).toContain('**not met**');
    expect(md).toContain('**met**');
    expect(md).toContain('Test CPU');
    expect(md).not.toContain('Plan'); // tables only: reading the figures is a person's work, outside the markers

    const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-results-'));
    try {
      r.halting[0]!.realisation = Number.NaN; // non-finite numbers become null, not invalid JSON
      const written = await writeResults(dir, r);
      const json = JSON.parse(await readFile(written.json, 'utf8')) as Results;
      expect(json.format).toBe('haltingvt-bench/1');
      expect(json.halting[0]?.realisation).toBeNull();
      const page = await readFile(written.md, 'utf8');
      expect(page.startsWith(`${TABLES_START}\n# Benchmark results (quick run)`)).toBe(true);
      // A second run replaces the tables and keeps what a person wrote around them.
      await writeFile(written.md, `# Our reading\n\n${page}\n## What it means\n\nprose\n`);
      r.mode = 'full';
      await writeResults(dir, r);
      const again = await readFile(written.md, 'utf8');
      expect(again).toMatch(/^# Our reading\n\n<!-- bench tables[^\n]*\n# Benchmark results \(full run\)/);
      expect(again).not.toContain('(quick run)');
      expect(again.endsWith(`${TABLES_END}\n\n## What it means\n\nprose\n`)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a batch\'s padding', () => {
  it('counts every video at the longest live count of each layer, over the live tokens', () => {
    expect(padding([[10, 10], [10, 10]])).toBe(1);
    // Layer 0: 2 × 10 over 20; layer 1: 2 × 8 over 10.
    expect(padding([[10, 8], [10, 2]])).toBeCloseTo(36 / 30, 12);
    expect(padding([])).toBe(1);
  });
});
