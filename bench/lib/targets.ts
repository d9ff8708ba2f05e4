/**
 * The issue's targets, judged from one Results object, each with a short note on where the time
 * goes and a plan when it is not met. Pure: the test suite runs it on a made-up Results.
 */
import type { OpProfile, Results, TargetResult } from './report.js';
import { fmt, pct } from './stats.js';

export const THRESHOLDS = { realisation: 0.9, speedup: 3, blockFraction: 0.85, serviceFraction: 0.9, eldP99Ms: 20, rssGrowth: 0.05 } as const;

function topOps(p: OpProfile | undefined, n = 4): string {
  if (!p) return 'no profile';
  return p.ops.slice(0, n).map((o) => `${o.op} ${pct(o.share, 0)}`).join(', ');
}

const GEMM = new Set(['MatMul', 'FusedMatMul', 'Gemm', 'Conv', 'MatMulNBits']);

/** Share of kernel time outside the GEMM-like ops. */
function nonGemmShare(p: OpProfile | undefined): number {
  if (!p) return Number.NaN;
  return p.ops.filter((o) => !GEMM.has(o.op)).reduce((a, o) => a + o.share, 0);
}

function stageLine(p: OpProfile | undefined): string {
  if (!p || p.stages.length < 2) return '';
  return p.stages
    .filter((x) => x.share >= 0.02)
    .map((x) => `${x.stage} ${pct(x.share, 0)} of kernel time${x.flops_share !== undefined && Number.isFinite(x.flops_share) ? ` for ${pct(x.flops_share, 0)} of FLOPs` : ''}`)
    .join('; ');
}

function profileFor(r: Results, model: string, setting: 'halting' | 'dense'): OpProfile | undefined {
  return r.profiles.find((p) => p.label.startsWith(`${model}, ${setting}`));
}

export function buildTargets(r: Results): TargetResult[] {
  const targets: TargetResult[] = [];
  const roleName = (role: string): string => {
    if (role === 'embedded') return 'embedded model';
    const preset = r.models.find((m) => m.role === 'preset');
    return preset?.name.startsWith('paper') ? 'paper preset' : `preset (${preset?.name ?? '?'})`;
  };

  r.halting.forEach((h, i) => {
    const met = h.realisation >= THRESHOLDS.realisation;
    const notes: string[] = [];
    const glimpserTime = h.dense.ms_total / h.keep_only.ms_total;
    const glimpserFlops = h.dense.gflops_mean / h.keep_only.gflops_mean;
    const haltTime = h.keep_only.ms_total / h.halting.ms_total;
    const haltFlops = h.keep_only.gflops_mean / h.halting.gflops_mean;
    if (!met) {
      const p = profileFor(r, h.model, 'halting');
      notes.push(
        `Split of the ratio: Glimpser pruning (dense → keep ${h.keep_only.knobs.keep_ratio}) gives ${fmt(glimpserTime)}× time for ${fmt(glimpserFlops)}× FLOPs (${fmt(glimpserTime / glimpserFlops)}); ` +
          `halting on top (keep-only → halting) gives ${fmt(haltTime)}× time for ${fmt(haltFlops)}× FLOPs (${fmt(haltTime / haltFlops)}).`,
      );
      if (p) notes.push(`Profile of the halting run: ${fmt(p.wall_ms)} ms wall, kernels ${fmt(p.kernel_ms)} ms (${pct(p.kernel_ms / p.wall_ms, 0)}); top ops ${topOps(p)}. By stage: ${stageLine(p)}.`);
      const calls = p ? p.ops.reduce((a, o) => a + o.calls, 0) : Number.NaN;
      notes.push(
        h.dense.ms_total / h.clips < 20
          ? `Plan: at dim ${r.models.find((m) => m.name === h.model)?.summary.match(/dim (\d+)/)?.[1] ?? '?'} a run is ${fmt(h.halting.ms_total / h.clips)} ms over ~${fmt(calls, 2)} kernels, and the fixed per-kernel cost (thread-pool dispatch, the per-layer If, compaction, elementwise ops that are memory-bound) does not shrink with the token count, so removed tokens save less than their FLOPs; ` +
              'cut the kernel count (null key/value folded into K/V, fused attention via com.microsoft.MultiHeadAttention, LayerNorm+Add fusion), and let the service batch concurrent videos into one run so that per-kernel cost is amortised.'
          : 'Plan: FLOPs that halting removes are the cheap, linear ones first; fuse attention into com.microsoft.MultiHeadAttention (CPU kernel) so the smaller sequences also get a better kernel, and check thread-pool efficiency on the short late-layer sequences (intra-op spinning, smaller GEMMs).',
      );
    }
    targets.push({
      id: `1${String.fromCharCode(97 + i)}`,
      what: `halting realisation, ${roleName(h.role)} (\`${h.model}\`)`,
      target: `≥ ${THRESHOLDS.realisation}`,
      value: `${fmt(h.realisation)} (time ${fmt(h.speedup)}× for ${fmt(h.flops_ratio)}× fewer FLOPs)`,
      met,
      notes,
    });
  });

  r.reference.forEach((x, i) => {
    const met = x.speedup_median >= THRESHOLDS.speedup;
    const notes: string[] = [];
    const h = r.halting.find((y) => y.model === x.model);
    if (!met && h) {
      // forward_reference computes every token at every joint layer: the keep-only FLOPs.
      const flopsGain = h.keep_only.gflops_mean / h.halting.gflops_mean;
      notes.push(
        `The reference computes ${fmt(h.keep_only.gflops_mean, 4)} GFLOPs per video (every kept token at every joint layer), ours ${fmt(h.halting.gflops_mean, 4)}: FLOPs explain ${fmt(flopsGain)}× of the ${fmt(x.speedup_median)}×, per-FLOP efficiency the other ${fmt(x.speedup_median / flopsGain)}×.` +
          (x.torch_compact_ms_per_clip ? ` PyTorch with halted tokens removed (forward_compact) takes ${fmt(avg(x.torch_compact_ms_per_clip))} ms.` : ''),
      );
      notes.push(
        `At default knobs halting removes only ${pct(1 - 1 / flopsGain, 0)} of what the reference computes, so 3× would need ${fmt(THRESHOLDS.speedup / flopsGain)}× more work per second than PyTorch on the same 2 threads; ` +
          'both run fp32 GEMMs of the same class (MLAS vs oneDNN/MKL), and the runtime edge measured here is the per-FLOP factor above (graph-level fusion, no Python per layer).',
      );
      notes.push(
        'Plan: (1) int8 dynamic quantization of the MatMul weights (onnxruntime.quantization.quantize_dynamic: this CPU has AVX-512 VNNI, where int8 GEMMs typically reach about twice the fp32 rate; not measured yet), gated on held-out accuracy; ' +
          '(2) the graph fixes listed under target 3 (null key/value folded into K/V, fused attention) for the non-GEMM time; (3) more FLOPs removed at equal accuracy (lower keep, earlier halting via training), since FLOPs are the only lever that is not shared with PyTorch.',
      );
    }
    targets.push({
      id: `2${String.fromCharCode(97 + i)}`,
      what: `speedup per video vs PyTorch reference, ${roleName(x.role)}`,
      target: `≥ ${THRESHOLDS.speedup}×`,
      value: `${fmt(x.speedup_median)}× median (${fmt(x.speedup_min)}–${fmt(x.speedup_max)})`,
      met,
      notes,
    });
  });

  const halRows = r.limit.rows.filter((x) => x.setting === 'halting');
  halRows.forEach((x, i) => {
    const met = x.fraction_of_block >= THRESHOLDS.blockFraction;
    const notes: string[] = [];
    if (!met) {
      const p = profileFor(r, x.model, 'halting');
      const blockProfile = r.profiles.find((q) => q.label.startsWith('one dense'));
      const dense = r.limit.rows.find((y) => y.model === x.model && y.setting === 'dense');
      notes.push(
        `Dense run of the same model: ${fmt(dense?.gflop_per_s)} GFLOP/s (${pct(dense?.fraction_of_block, 0)} of the block). Halting run: top ops ${topOps(p, 6)}; ` +
          `non-GEMM kernels ${pct(nonGemmShare(p), 0)} of kernel time (the DeiT-S block: ${pct(nonGemmShare(blockProfile), 0)}). By stage: ${stageLine(p)}.`,
      );
      notes.push(
        'Plan: (1) fold the null key/value into K and V (one extra row, N+1 keys) instead of concatenating a null column onto the N×N logits and splitting the probabilities again: removes the big Concat/Split and an elementwise pass per joint layer; ' +
          '(2) let ORT fuse attention (com.microsoft.MultiHeadAttention has a CPU kernel) so the per-head Reshape/Transpose/Split copies go; (3) for the Glimpser, run the 8-token temporal attention as one batched MatMul over all patches (it already is) but with the heads folded into the batch without Transpose copies.',
      );
    }
    const model = r.models.find((m) => m.name === x.model);
    targets.push({
      id: `3${String.fromCharCode(97 + i)}`,
      what: `model GFLOP/s vs one dense joint block, ${roleName(model?.role ?? '')}`,
      target: `≥ ${pct(THRESHOLDS.blockFraction, 0)} of the block`,
      value: `${fmt(x.gflop_per_s)} vs ${fmt(x.block_gflop_per_s)} GFLOP/s = ${pct(x.fraction_of_block, 0)} (${x.block})`,
      met,
      notes,
    });
  });

  // Issue 13: per clip, our decode stage's CPU and wall time against PyAV's (the best anchor measured).
  const vsPyav = r.decode.rows.filter((x) => Number.isFinite(x.pyav.cpu_ms));
  if (vsPyav.length > 0) {
    const misses = vsPyav.filter((x) => x.ours.cpu_ms > x.pyav.cpu_ms || x.ours.wall_ms > x.pyav.wall_ms);
    targets.push({
      id: '4',
      what: 'decode CPU and wall ms per video vs PyAV, every clip',
      target: '≤ PyAV on every clip',
      value: vsPyav.map((x) => `${x.clip}: CPU ${fmt(x.ours.cpu_ms / x.pyav.cpu_ms)}×, wall ${fmt(x.ours.wall_ms / x.pyav.wall_ms)}×`).join('; '),
      met: misses.length === 0,
      notes:
        misses.length === 0
          ? []
          : [
              `Above PyAV: ${misses.map((x) => `${x.clip} (ours decoded ${x.decoded_frames} frames, ${x.seeks} seeks)`).join('; ')}. Both run libavcodec at one thread on the same frames, so a gap of a few percent is this shared machine's noise.`,
              'Plan: re-run the section alone; if the gap stays, profile the worker (perf) to split it between the demux-only index pass, the libavfilter graph built per video, and decoding.',
            ],
    });
  }

  const s = r.service;
  if (s) {
    const sat = s.saturation;
    const best = s.steps.find((x) => x.concurrency === sat.concurrency);
    const metThroughput = sat.ratio >= THRESHOLDS.serviceFraction;
    targets.push({
      id: '5a',
      what: 'service throughput at saturation vs the engine alone',
      target: `≥ ${pct(THRESHOLDS.serviceFraction, 0)}`,
      value: `${fmt(sat.throughput)} vs ${fmt(s.engine_throughput)} videos/s = ${pct(sat.ratio, 0)} (at ${sat.concurrency} clients; ${pct(sat.ratio_same_concurrency, 0)} of the engine at the service's CONCURRENCY=${s.config.concurrency})`,
      met: metThroughput,
      notes: metThroughput || !best
        ? []
        : [
            `Server-side stage medians at ${best.concurrency} clients: queue ${fmt(best.stage_ms.queue)} ms, decode ${fmt(best.stage_ms.decode)} ms, infer ${fmt(best.stage_ms.infer)} ms; client p50 ${fmt(best.p50_ms)} ms. The rest is upload spooling to a temp file, multipart/JSON work and the load generator sharing the 2 cores.`,
            'Plan: raise CONCURRENCY so decode of the next video overlaps inference of this one, and keep the load generator off the server\'s cores when measuring on a bigger machine.',
          ],
    });
    const eldWorst = Math.max(s.eld_p99_worst_ms, s.soak?.eld_p99_worst_ms ?? 0);
    const eldMet = eldWorst <= THRESHOLDS.eldP99Ms;
    targets.push({
      id: '5b',
      what: 'main-thread event-loop delay p99 under load',
      target: `≤ ${THRESHOLDS.eldP99Ms} ms`,
      value: `${fmt(eldWorst)} ms worst (steps${s.soak ? ' and soak windows' : ''})`,
      met: eldMet,
      notes: eldMet ? [] : ['Plan: find the blocking work with --cpu-prof on the server under load (JSON serialisation of large results, synchronous fs calls in upload handling) and move it off the main thread.'],
    });
    const soak = s.soak;
    const rssMet = soak ? soak.growth <= THRESHOLDS.rssGrowth : null;
    targets.push({
      id: '5c',
      what: 'RSS flat during the soak (first vs last minute)',
      target: `growth ≤ ${pct(THRESHOLDS.rssGrowth, 0)}`,
      value: soak ? `${fmt(soak.first_minute.rss_main_mib + soak.first_minute.rss_worker_mib)} → ${fmt(soak.last_minute.rss_main_mib + soak.last_minute.rss_worker_mib)} MiB (${pct(soak.growth)})` : 'no soak in this mode',
      met: rssMet,
      notes: rssMet === false ? ['Plan: take heap snapshots at the start and end of a soak (--heapsnapshot-signal) and compare retained sizes; check the worker (ORT arena growth with varying token counts: enableCpuMemArena / memory pattern off).'] : [],
    });
  }
  return targets;
}

function avg(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
