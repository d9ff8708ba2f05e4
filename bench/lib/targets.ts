/**
 * The benchmark's targets, judged from one Results object: a row each (what, target, measured, met).
 * Reading the misses is a person's work, in bench/results.md around the tables. Pure: the test
 * suite runs it on a made-up Results.
 */
import type { CpuFloorRow, Results, ServiceResults, TargetResult } from './report.js';
import { fmt, mean, pct } from './stats.js';

export const THRESHOLDS = {
  /** Halting's speed-up ÷ its FLOP reduction (1a, 1b). */
  haltingRealisation: 0.9,
  /** Token merging's, on the preset at ratio 0.2 (1m, 1n): the CPU-floor work asks 0.95 of it, its saliency pass and merge gathers included. */
  mergingRealisation: 0.95,
  /** Our fp32 graph per video against the authors' PyTorch code, same weights and tokens (2a, 2b). */
  fp32VsReference: 1.5,
  /** Our int8 graph against their fp32 PyTorch on the preset (6d), judged where the CPU has int8 dot products (VNNI or AMX). */
  int8VsReference: 3,
  blockFraction: 0.85,
  serviceFraction: 0.9,
  cpuLimitFraction: 0.85,
  /** Section 5 against the floor measured alone (decode alone + inference alone at one thread): CPU per video, videos/s of cores ÷ floor. */
  floorCpuRatio: 1.15,
  floorThroughputFraction: 0.9,
  /** The server's main process per video on the 4 s 360p reference clip. */
  mainCpuMs: 2,
  eldP99Ms: 20,
  rssGrowth: 0.05,
  /** int8 vs fp32 per video on the preset (section 6), and the top-1 points int8 may lose on the embedded model. */
  int8Speedup: 1.8,
  int8Top1Loss: 0.01,
  /** Per-video cost of a batch vs one video at a time, embedded model. */
  batchCost: 0.7,
} as const;

export function buildTargets(r: Results): TargetResult[] {
  const targets: TargetResult[] = [];
  const roleName = (role: string): string => {
    if (role === 'embedded') return 'embedded model';
    const preset = r.models.find((m) => m.role === 'preset');
    return preset?.name.startsWith('paper') ? 'paper preset' : `preset (${preset?.name ?? '?'})`;
  };

  r.halting.forEach((h, i) => {
    const met = h.realisation >= THRESHOLDS.haltingRealisation;
    targets.push({
      id: `1${String.fromCharCode(97 + i)}`,
      what: `halting realisation, ${roleName(h.role)} (\`${h.model}\`)`,
      target: `≥ ${THRESHOLDS.haltingRealisation}`,
      value: `${fmt(h.realisation)} (time ${fmt(h.speedup)}× for ${fmt(h.flops_ratio)}× fewer FLOPs)`,
      met,
    });
  });

  // Merging realises its FLOPs like halting does, where the joint layers are most of the cost (the
  // preset; on the embedded model 79% of the GFLOPs come before them: docs/model-card.md).
  const mergingPreset = r.merging.filter((m) => m.role === 'preset' && m.ratio === 0.2);
  mergingPreset.forEach((m, i) => {
    targets.push({
      id: `1${String.fromCharCode(109 + i)}`,
      what: `${m.mode === 'tome' ? 'ToMe' : 'vid-TLDR'} ${m.ratio} realisation, ${roleName(m.role)} (\`${m.model}\`)`,
      target: `≥ ${THRESHOLDS.mergingRealisation}`,
      value: `${fmt(m.realisation)} (time ${fmt(m.speedup)}× for ${fmt(m.flops_ratio)}× fewer FLOPs)`,
      met: m.realisation >= THRESHOLDS.mergingRealisation,
    });
  });

  r.reference.forEach((x, i) => {
    const met = x.speedup_median >= THRESHOLDS.fp32VsReference;
    targets.push({
      id: `2${String.fromCharCode(97 + i)}`,
      what: `speedup per video vs PyTorch reference (fp32 both), ${roleName(x.role)}`,
      target: `≥ ${THRESHOLDS.fp32VsReference}×`,
      value: `${fmt(x.speedup_median)}× median (${fmt(x.speedup_min)}–${fmt(x.speedup_max)})`,
      met,
    });
  });

  const halRows = r.limit.rows.filter((x) => x.setting === 'halting');
  halRows.forEach((x, i) => {
    const met = x.fraction_of_block >= THRESHOLDS.blockFraction;
    const model = r.models.find((m) => m.name === x.model);
    targets.push({
      id: `3${String.fromCharCode(97 + i)}`,
      what: `model GFLOP/s vs one dense joint block, ${roleName(model?.role ?? '')}`,
      target: `≥ ${pct(THRESHOLDS.blockFraction, 0)} of the block`,
      value: `${fmt(x.gflop_per_s)} vs ${fmt(x.block_gflop_per_s)} GFLOP/s = ${pct(x.fraction_of_block, 0)} (${x.block})`,
      met,
    });
  });

  // Per clip, our decode stage's CPU and wall time against PyAV's (the best anchor measured).
  const vsPyav = r.decode.rows.filter((x) => Number.isFinite(x.pyav.cpu_ms));
  if (vsPyav.length > 0) {
    targets.push({
      id: '4',
      what: 'decode CPU and wall ms per video vs PyAV, every clip',
      target: '≤ PyAV on every clip',
      value: vsPyav.map((x) => `${x.clip}: CPU ${fmt(x.ours.cpu_ms / x.pyav.cpu_ms)}×, wall ${fmt(x.ours.wall_ms / x.pyav.wall_ms)}×`).join('; '),
      met: vsPyav.every((x) => x.ours.cpu_ms <= x.pyav.cpu_ms && x.ours.wall_ms <= x.pyav.wall_ms),
    });
  }

  const s = r.service;
  if (s) {
    const sat = s.saturation;
    const metThroughput = sat.ratio >= THRESHOLDS.serviceFraction;
    targets.push({
      id: '5a',
      what: 'service throughput at saturation vs the engine alone',
      target: `≥ ${pct(THRESHOLDS.serviceFraction, 0)}`,
      value: `${fmt(sat.throughput)} vs ${fmt(s.engine_throughput)} videos/s = ${pct(sat.ratio, 0)} (at ${sat.concurrency} clients; ${pct(sat.ratio_same_concurrency, 0)} of the engine at the service's CONCURRENCY=${s.config.concurrency})`,
      met: metThroughput,
    });
    const eldWorst = Math.max(s.eld_p99_worst_ms, s.soak?.eld_p99_worst_ms ?? 0);
    const eldMet = eldWorst <= THRESHOLDS.eldP99Ms;
    targets.push({
      id: '5b',
      what: 'main-thread event-loop delay p99 under load',
      target: `≤ ${THRESHOLDS.eldP99Ms} ms`,
      value: `${fmt(eldWorst)} ms worst (steps${s.soak ? ' and soak windows' : ''})`,
      met: eldMet,
    });
    const soak = s.soak;
    // Each process on its own where measured: a total hides one that grows behind others that do not.
    const byProcess = soak?.growth_by_process;
    const worst = soak ? (byProcess ? Math.max(byProcess.main, byProcess.inference, byProcess.decode) : soak.growth) : Number.NaN;
    const total = (w: { rss_main_mib: number; rss_worker_mib: number; rss_decode_mib?: number }): number => w.rss_main_mib + w.rss_worker_mib + (w.rss_decode_mib ?? 0);
    targets.push({
      id: '5c',
      what: `RSS flat during the soak (first vs last minute${byProcess ? ', each of main, inference worker, decode workers' : ''})`,
      target: `growth ≤ ${pct(THRESHOLDS.rssGrowth, 0)}`,
      value: soak
        ? `${fmt(total(soak.first_minute))} → ${fmt(total(soak.last_minute))} MiB in all (${pct(soak.growth)})` +
          (byProcess ? `; main ${pct(byProcess.main)}, inference ${pct(byProcess.inference)}, decode ${pct(byProcess.decode)}` : '')
        : 'no soak in this mode',
      met: soak ? worst <= THRESHOLDS.rssGrowth : null,
    });
    // Against what the cores allow at the decode-plus-inference CPU the service itself spent in the
    // same step: whether it keeps the cores busy. CPU it wastes raises this limit, so the floor's
    // targets (5e, 5f) judge the cost; this one tells idle cores apart from wasted ones.
    if (sat.cpu_limit !== undefined && sat.ratio_cpu_limit !== undefined) {
      const step = s.steps.find((x) => x.concurrency === sat.concurrency);
      const cpu = step?.cpu;
      targets.push({
        id: '5d',
        what: "service throughput at saturation vs cores ÷ the service's own decode-plus-inference CPU per video (cores kept busy; measured against its own CPU, not the floor)",
        target: `≥ ${pct(THRESHOLDS.cpuLimitFraction, 0)}`,
        value:
          `${fmt(sat.throughput)} vs ${fmt(sat.cpu_limit)} videos/s = ${pct(sat.ratio_cpu_limit, 0)} (at ${sat.concurrency} clients` +
          (cpu ? `; ${fmt(cpu.decode_infer_s_per_video * 1000)} CPU-ms per video on ${cpu.cores} cores; server main ${fmt(cpu.main_s_per_video * 1000)} ms, bench clients ${fmt(cpu.clients_s_per_video * 1000)} ms per video; machine: server and clients ${pct(cpu.ours_fraction, 0)}, other processes ${pct(cpu.others_fraction, 0)}, idle ${pct(cpu.idle_fraction, 0)}` : '') +
          ')',
        met: sat.ratio_cpu_limit >= THRESHOLDS.cpuLimitFraction,
      });
    }
    floorTargets(s.floor ?? [], s.main_reference).forEach((t) => targets.push(t));
  }
  precisionTargets(r, roleName).forEach((t) => targets.push(t));
  return targets;
}

/** Section 5 against the floor measured alone, on every set of clips that has one; the main process on the reference clip. */
function floorTargets(rows: CpuFloorRow[], bare: ServiceResults['main_reference']): TargetResult[] {
  if (rows.length === 0) return [];
  const out: TargetResult[] = [
    {
      id: '5e',
      what: 'service CPU per video (main + inference + decode processes) vs the floor (decode alone + inference alone at 1 thread), at 1 client and at saturation',
      target: `≤ ${THRESHOLDS.floorCpuRatio}× the floor`,
      value: rows
        .map(
          (x) =>
            `${x.clips}: ${fmt(x.one.ratio)}× at 1 client${x.one.ratio_paced !== undefined ? ` (${fmt(x.one.ratio_paced)}× the floor paced as one client)` : ''}, ${fmt(x.saturation.ratio)}× at ${x.saturation.concurrency} (${fmt(x.one.cpu_ms.total)} and ${fmt(x.saturation.cpu_ms.total)} vs ${fmt(x.floor.total_ms)} CPU ms)`,
        )
        .join('; '),
      met: rows.every((x) => Math.max(x.one.ratio, x.saturation.ratio) <= THRESHOLDS.floorCpuRatio),
    },
    {
      id: '5f',
      what: 'service throughput at saturation vs cores ÷ the floor',
      target: `≥ ${pct(THRESHOLDS.floorThroughputFraction, 0)}`,
      value: rows.map((x) => `${x.clips}: ${fmt(x.saturation.throughput)} vs ${fmt(x.floor_limit)} videos/s = ${pct(x.ratio_floor_limit, 0)} (at ${x.saturation.concurrency} clients, ${x.cores} cores)`).join('; '),
      met: rows.every((x) => x.ratio_floor_limit >= THRESHOLDS.floorThroughputFraction),
    },
  ];
  const ref = rows.find((x) => x.role === 'reference');
  if (ref) {
    out.push({
      id: '5g',
      what: `server main-process CPU per video, ${ref.clips} clip, at 1 client and at saturation`,
      target: `≤ ${fmt(THRESHOLDS.mainCpuMs)} ms`,
      value:
        `${fmt(ref.one.cpu_ms.main)} ms at 1 client, ${fmt(ref.saturation.cpu_ms.main)} ms at ${ref.saturation.concurrency}` +
        (bare ? ` (a bare node:http server doing only the hand-offs: ${fmt(bare.bare_back_to_back_ms)} ms answering at once, ${fmt(bare.bare_gap_ms)} ms answering each upload after the service's one-client p50 of ${fmt(bare.gap_ms)} ms)` : ''),
      met: Math.max(ref.one.cpu_ms.main, ref.saturation.cpu_ms.main) <= THRESHOLDS.mainCpuMs,
    });
  }
  return out;
}

function precisionTargets(r: Results, roleName: (role: string) => string): TargetResult[] {
  const out: TargetResult[] = [];
  const rows = r.precision ?? [];
  const of = (role: string, precision: string) => rows.find((x) => x.role === role && x.precision === precision);
  const [pf, pi] = [of('preset', 'fp32'), of('preset', 'int8')];
  if (pf && pi) {
    const ratio = pf.ms_per_video_b1 / pi.ms_per_video_b1;
    out.push({
      id: '6a',
      what: `int8 vs fp32 speed per video, ${roleName('preset')}`,
      target: `≥ ${THRESHOLDS.int8Speedup}×`,
      value: `${fmt(ratio)}× (${fmt(pf.ms_per_video_b1)} → ${fmt(pi.ms_per_video_b1)} ms, batch 1)`,
      met: ratio >= THRESHOLDS.int8Speedup,
    });
  }
  const acc = r.precision_accuracy;
  if (acc && acc.top1.fp32 !== undefined && acc.top1.int8 !== undefined) {
    const lost = acc.top1.fp32 - acc.top1.int8;
    out.push({
      id: '6b',
      what: `int8 top-1 lost vs fp32, embedded model (${acc.split} split, ${acc.clips} clips)`,
      target: `≤ ${fmt(100 * THRESHOLDS.int8Top1Loss)} point`,
      value: `${pct(acc.top1.fp32, 1)} → ${pct(acc.top1.int8, 1)} (${fmt(100 * lost)} points)`,
      met: lost <= THRESHOLDS.int8Top1Loss + 1e-9,
    });
  }
  const ef = of('embedded', 'fp32');
  if (ef && ef.batch > 1) {
    const ratio = ef.ms_per_video_batch / ef.ms_per_video_b1;
    out.push({
      id: '6c',
      what: `per-video cost at batch ${ef.batch} vs batch 1, embedded model (fp32)`,
      target: `≤ ${THRESHOLDS.batchCost}×`,
      value: `${fmt(ratio)}× (${fmt(ef.ms_per_video_b1)} → ${fmt(ef.ms_per_video_batch)} ms)`,
      met: ratio <= THRESHOLDS.batchCost,
    });
  }
  const ref = r.reference.find((x) => x.role === 'preset');
  if (pi && ref) {
    // Section 2's PyTorch reference and section 6's int8 graph run the same clips at the same threads.
    const torchMs = mean(ref.torch_ms_per_clip);
    const ratio = torchMs / pi.ms_per_video_b1;
    const dot = r.machine.int8_dot_products;
    // Unknown (not recorded) is judged, and says so; a CPU known to have none is not.
    const judged = dot === undefined || dot.length > 0;
    const said = dot === undefined ? "; the CPU's int8 instructions were not recorded" : judged ? '' : '; this CPU has no int8 dot products, so not judged';
    out.push({
      id: '6d',
      what: `int8 vs the authors' fp32 PyTorch per video, ${roleName('preset')} (on CPUs with VNNI or AMX)`,
      target: `≥ ${THRESHOLDS.int8VsReference}×`,
      value: `${fmt(ratio)}× (${fmt(torchMs)} → ${fmt(pi.ms_per_video_b1)} ms, batch 1)${said}`,
      met: judged ? ratio >= THRESHOLDS.int8VsReference : null,
    });
  }
  return out;
}
