/**
 * `make bench`: everything measured side by side in one run, written to bench/results.json and, as
 * tables between markers, to bench/results.md (what a person wrote around them stays).
 *
 *   node --import tsx bench/run.ts            full run (about 10-15 minutes on 2 cores)
 *   node --import tsx bench/run.ts --quick    CI smoke run (under a minute), results in bench/out/quick/
 *
 * Sections: 1 halting realisation (engine ORT session), 2 PyTorch reference, 3 machine limit
 * (micro graphs), 4 decoding, 5 the service under load (with its CPU per video by process against a
 * floor measured from its parts alone: decode alone + inference alone at one thread), 6 precision
 * (fp32 vs int8) and batching (plus, in full mode, both graphs' top-1 on the test split); machine
 * facts in the header. Generated clips, models and tensors live under bench/out/ (gitignored).
 *
 * Options: --model DIR (embedded model; default models/default, else models/fixtures/tiny),
 * --preset NAME, --threads N, --clips N, --soak SECONDS, --results DIR, --skip LIST
 * (comma list of halting,decode,service,precision,accuracy), --merge results.json (the skipped sections
 * come from that earlier run, with a note saying so: `--skip halting,service --merge bench/results.json`
 * measures only the decoders and keeps the rest), --render results.json (re-judge and re-render only).
 * `make bench BENCH_ARGS=--quick` runs the quick mode through make.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultModelDir } from '../src/paths.js';
import { createEngine, type Engine } from '../src/engine/index.js';
import { loadModel } from '../src/engine/model.js';
import { measureDecode, measureShare, syntheticClip, type ClipSpec } from './lib/decode.js';
import { heldOutClips, helper, log, machineFacts, ROOT, runPython, watchLoad, type PythonFacts } from './lib/env.js';
import {
  decodeTensor,
  defaults,
  denseKnobs,
  feeds,
  info,
  limitRows,
  measureHalting,
  measureMerging,
  measureMicro,
  measureReference,
  profileOps,
  stageFlops,
  writeTensors,
  type MicroGraph,
  type Subject,
} from './lib/models.js';
import type { CpuFloor, DecodeRow, HaltingRow, LimitRow, MergingRow, MicroRow, OpProfile, PrecisionAccuracy, PrecisionRow, ReferenceRow, Results, ServiceResults, ServiceStep, ShareRow } from './lib/report.js';
import { writeResults } from './lib/report.js';
import { ensureInt8, measurePrecisions } from './lib/precision.js';
import { measureService, engineThroughput } from './lib/service.js';
import { measureFloor, type FloorOptions } from './lib/floor.js';
import { fewestStep, floorRow } from './lib/floor-rows.js';
import { mainCpuPerUpload } from './lib/main-floor.js';
import { buildTargets } from './lib/targets.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    model: { type: 'string' },
    preset: { type: 'string' },
    threads: { type: 'string' },
    clips: { type: 'string' },
    soak: { type: 'string' },
    results: { type: 'string' },
    skip: { type: 'string', default: '' },
    render: { type: 'string' },
    merge: { type: 'string' },
  },
});

const quick = values.quick ?? false;
const mode = quick ? 'quick' : 'full';
const skip = new Set((values.skip ?? '').split(',').filter(Boolean));
const threads = Number(values.threads ?? Math.min(os.cpus().length, 2));
const OUT = path.join(ROOT, 'bench', 'out');
const resultsDir = path.resolve(values.results ?? (quick ? path.join(OUT, 'quick') : path.join(ROOT, 'bench')));

/** make_it_halt strength for the preset's random weights (see the note in the Models table). */
const PRESET_STRENGTH = 3;

/** Section 5's reference clip, on which the server's main process is judged (bench/ab.ts uses the same). */
const REFERENCE_CLIP = { label: '4 s 360p H.264', spec: { seconds: 4, width: 640, height: 360 } };

/** Everything that makes quick quick. */
const plan = quick
  ? {
      clips: 2,
      presetClips: 2,
      preset: 'test-micro',
      presetTarget: [] as string[],
      reps: { embedded: 2, preset: 2, torch: 1, micro: 3, precision: 1 },
      profileRuns: 1,
      batch: 2,
      accuracySplit: null as string | null,
      decodeClips: [
        { label: '3 s 360p H.264', spec: { seconds: 3, width: 640, height: 360 } },
        { label: '10 s 1080p H.264, GOP 250', spec: { seconds: 10, width: 1920, height: 1080, gop: 250 } },
      ],
      decodeReps: 1,
      shareReps: 1,
      engineLevels: [2],
      engineSeconds: 2,
      levels: [1, 2],
      stepSeconds: 2,
      soakSeconds: 0,
      floorSeconds: 1.5,
      floorPyavReps: 1,
      mainReference: { uploads: 20, warm: 10 },
    }
  : {
      clips: 8,
      presetClips: 8,
      preset: 'paper-minik-g05-b20',
      // The paper's Table 1 reports 24.2 GFLOPs for HaltingVT-S (Glimpser 0.5, beta 20) on Mini-Kinetics.
      presetTarget: ['--target-gflops', '24.2'],
      reps: { embedded: 7, preset: 3, torch: 3, micro: 15, precision: 3 },
      profileRuns: 3,
      // Videos per batched run in section 6, whose target compares a batch of 8 against one at a time.
      batch: 8,
      // Section 6's accuracy: the split where figures are reported, never chosen (haltingvt.splits).
      accuracySplit: 'test' as string | null,
      // The decoding clips: short and long, 360p to 1080p, long and short GOPs, a rotated portrait
      // video and VP9, the cases where frame seeking and decoder start-up cost differ (docs/benchmarks.md).
      decodeClips: [
        { label: '3 s 360p H.264', spec: { seconds: 3, width: 640, height: 360 } },
        { label: '10 s 1080p H.264, GOP 250', spec: { seconds: 10, width: 1920, height: 1080, gop: 250 } },
        { label: '10 s 1080p H.264, GOP 25', spec: { seconds: 10, width: 1920, height: 1080, gop: 25 } },
        { label: '10 s portrait 1080p, rotate 90', spec: { seconds: 10, width: 1920, height: 1080, gop: 25, rotate: 90 } },
        { label: '10 s VP9 WebM 720p', spec: { seconds: 10, width: 1280, height: 720, gop: 60, codec: 'vp9' } },
        { label: '2 min 720p H.264, GOP 60', spec: { seconds: 120, width: 1280, height: 720, gop: 60 } },
        { label: '2 min 720p H.264, GOP 250', spec: { seconds: 120, width: 1280, height: 720, gop: 250 } },
      ],
      decodeReps: 3,
      shareReps: 2,
      engineLevels: [2, 4],
      engineSeconds: 15,
      levels: [1, 2, 4, 8, 24],
      stepSeconds: 15,
      soakSeconds: 300,
      // Each part of section 5's CPU floor repeats for this long per set of clips (whole passes).
      floorSeconds: 8,
      floorPyavReps: 3,
      // Target 5g's reference: a bare node:http server's main-process CPU per upload of the reference clip.
      mainReference: { uploads: 200, warm: 50 },
    };
if (values.clips) plan.clips = plan.presetClips = Number(values.clips);
if (values.preset) plan.preset = values.preset;
if (values.soak) plan.soakSeconds = Number(values.soak);

/** Runs one bench section; a failure becomes a note, because one failed section must not lose the others' measurements. */
async function section(name: string, notes: string[], work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    log(`${name} section failed: ${(err as Error).stack ?? String(err)}`);
    notes.push(`The ${name} section failed in this run: ${(err as Error).message}`);
  }
}

/** A CPU engine on `modelDir` for the length of `work`. */
async function withEngine<T>(modelDir: string, threads: number, work: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await createEngine({ modelDir, config: { executionProviders: ['cpu'], intraOpNumThreads: threads } });
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}

/** The CPU floor on one set of clips, with a note when one thread's inference CPU strays from its wall time (then something else ran in the process). */
async function floorOf(s: Subject, label: string, files: string[], o: FloorOptions, notes: string[]): Promise<CpuFloor> {
  log(`CPU floor on ${label}: decode alone, inference alone at 1 thread, PyAV`);
  const f = await measureFloor(s, files, o);
  log(`CPU floor on ${label}: decode ${f.decode_ms.toFixed(1)} ms (PyAV ${f.pyav_ms.toFixed(1)}) + inference ${f.inference_ms.toFixed(1)} ms (wall ${f.inference_wall_ms.toFixed(1)}) = ${f.total_ms.toFixed(1)} CPU ms per video`);
  const drift = f.inference_ms / f.inference_wall_ms - 1;
  if (Math.abs(drift) > 0.1) notes.push(`CPU floor on ${label}: inference alone at 1 thread spent ${f.inference_ms.toFixed(1)} CPU ms per ${f.inference_wall_ms.toFixed(1)} wall ms (${(100 * drift).toFixed(0)}%): something besides the one ORT thread ran in the bench process, or the thread waited.`);
  return f;
}

/**
 * Target 5g's reference, after the service has stopped: what a bare node:http server doing only the
 * main process's hand-offs spends per upload of the reference clip, back to back and with the
 * service's own one-client latency as the gap (bench/lib/main-floor.ts).
 */
async function mainReference(clips: string, clipFile: string, gapMs: number): Promise<NonNullable<ServiceResults['main_reference']>> {
  log(`5g's reference: a bare node:http server on ${clips}, back to back and with a ${gapMs} ms gap`);
  const clip = readFileSync(clipFile);
  const run = (gap: number): Promise<number> => mainCpuPerUpload({ env: { MODE: 'bare', GAP_MS: String(gap) }, clipFile, clip, ...plan.mainReference });
  const backToBack = await run(0);
  const gapped = await run(gapMs);
  log(`5g's reference: ${backToBack.toFixed(2)} main-process CPU ms per upload back to back, ${gapped.toFixed(2)} with the gap`);
  return { clips, gap_ms: gapMs, uploads: plan.mainReference.uploads, bare_back_to_back_ms: backToBack, bare_gap_ms: gapped };
}

/** --render FILE: judge the targets again and rewrite the Markdown from an existing results.json (no measuring). */
async function render(file: string): Promise<void> {
  const results = JSON.parse(await readFile(file, 'utf8'), (_k, v: unknown) => (v === null ? Number.NaN : v)) as Results;
  results.targets = buildTargets(results);
  const written = await writeResults(path.dirname(path.resolve(file)), results);
  log(`re-rendered ${path.relative(ROOT, written.md)}`);
}

/** --merge FILE: the sections this run skipped are taken from an earlier run's results.json, each with the run it was measured in. */
async function mergeSkipped(results: Results, file: string): Promise<void> {
  const base = JSON.parse(await readFile(file, 'utf8'), (_k, v: unknown) => (v === null ? Number.NaN : v)) as Results;
  const own = { started: results.started, command: results.command };
  const theirs = (section: 'halting' | 'decode' | 'service') => base.provenance?.[section] ?? { started: base.started, command: base.command };
  const provenance: NonNullable<Results['provenance']> = {};
  const names = { halting: '1-3 (halting, PyTorch reference, machine limit, profiles)', decode: '4 (decoding)', service: '5 (the service under load)' } as const;
  for (const section of ['halting', 'decode', 'service'] as const) {
    if (!skip.has(section)) {
      provenance[section] = own;
      continue;
    }
    provenance[section] = theirs(section);
    if (section === 'halting') Object.assign(results, { halting: base.halting, reference: base.reference, limit: base.limit, profiles: base.profiles, models: base.models });
    if (section === 'decode') results.decode = base.decode;
    if (section === 'service') results.service = base.service;
  }
  results.provenance = provenance;
  const earlier = (['halting', 'decode', 'service'] as const).filter((x) => skip.has(x)).map((x) => `section ${names[x]}: run started ${provenance[x]?.started} (\`${provenance[x]?.command}\`)`);
  results.notes.unshift(
    `This run measured only ${(['halting', 'decode', 'service'] as const).filter((x) => !skip.has(x)).map((x) => `section ${names[x]}`).join(', ') || 'nothing'}; the others come from earlier runs through --merge (${earlier.join('; ')}). Ratios are taken within each section's own run.`,
    ...base.notes.filter((n) => !n.startsWith('This run measured only')).map((n) => (n.startsWith('(earlier run)') ? n : `(earlier run) ${n}`)),
  );
}

async function main(): Promise<void> {
  if (values.render) return render(values.render);
  const started = new Date();
  const t0 = performance.now();
  const notes: string[] = [];
  const command = `node --import tsx bench/run.ts ${process.argv.slice(2).join(' ')}`.trim();
  log(`${mode} run, ${threads} threads, results in ${path.relative(ROOT, resultsDir) || '.'}`);

  // The clips are generated with the ffmpeg command line (the service itself no longer runs it).
  const binaries = { ffmpeg: 'ffmpeg', ffprobe: 'ffprobe' };
  const watcher = watchLoad();
  const pyFacts = await helper<PythonFacts>(['facts']);
  const machine = await machineFacts(threads, pyFacts, binaries.ffmpeg);

  // ---- models and inputs ----------------------------------------------------------------------
  const embeddedDir = values.model ? path.resolve(values.model) : defaultModelDir([ROOT]);
  const isDefault = existsSync(path.join(ROOT, 'models', 'default', 'manifest.json')) && embeddedDir === path.join(ROOT, 'models', 'default');
  const embedded = await loadModel(embeddedDir);
  const embeddedNote = isDefault
    ? 'the embedded default model (trained weights)'
    : `${path.relative(ROOT, embeddedDir)}${values.model ? ' (chosen with --model)' : ': models/default/manifest.json did not exist when this run started, so the test fixture stands in for the embedded model'}`;
  if (!isDefault && !values.model) notes.push(`Embedded-model rows ran on ${path.relative(ROOT, embeddedDir)}: the trained default model (models/default) was not exported yet.`);
  const heldoutDir = path.join(OUT, 'heldout');
  const clips = await heldOutClips(heldoutDir, Math.max(plan.clips, plan.presetClips));

  log(`preparing ${plan.preset} with random weights`);
  const presetMeta = await helper<{ dir: string; preset: string; halt_center_default: number; halt_center: number; tuned_mean_gflops: number; no_halt_gflops: number; target_gflops: number; tune_clips: number }>([
    'prepare-preset', '--preset', plan.preset, '--clips', heldoutDir, '--count', String(plan.presetClips), '--threads', String(threads),
    '--out', path.join(OUT, 'models', `${plan.preset}-random`), '--strength', String(PRESET_STRENGTH), ...plan.presetTarget,
  ]);
  const preset = await loadModel(path.resolve(ROOT, presetMeta.dir));
  const subjects: Subject[] = [
    { role: 'embedded', model: embedded, note: embeddedNote },
    {
      role: 'preset',
      model: preset,
      note:
        `random weights (haltingvt.testing.random_model, seed 0, make_it_halt strength ${PRESET_STRENGTH}: fc2 row 0 of each joint block drawn ${PRESET_STRENGTH}× wider than the init, so channel 0 and the halting scores spread; ` +
        `at strength 20 the class token of some clips halts at the first joint layer and the rest never halt, at ${PRESET_STRENGTH} tokens halt progressively over the later layers); ` +
        `halt_center shifted from ${presetMeta.halt_center_default} to ${presetMeta.halt_center.toFixed(3)} by bisection on forward_compact so that the mean GFLOPs on ${presetMeta.tune_clips} held-out clips is ` +
        `${presetMeta.tuned_mean_gflops.toFixed(2)} (target ${presetMeta.target_gflops.toFixed(2)}; no halting at keep ${preset.manifest.knobs.keep_ratio.default}: ${presetMeta.no_halt_gflops.toFixed(2)}); exported with export/graph.build_graph`,
    },
  ];

  // Micro graphs: the large MatMul and DeiT-S block of the brief, plus a block at each model's own width and token count.
  const blockSpecs = new Set<string>(['785,384,6,1536']);
  for (const s of subjects) {
    const f = s.model.manifest.flops;
    const tokens = 1 + f.frames * Math.min(f.patches, Math.max(1, Math.ceil(Math.fround(defaults(s).keep_ratio) * f.patches)));
    const heads = Number((s.model.manifest.config as { num_heads?: number }).num_heads ?? 1);
    blockSpecs.add(`${tokens},${f.dim},${heads},${f.mlp_hidden}`);
  }
  const micro = await helper<{ graphs: MicroGraph[] }>(['micro', '--out', path.join(OUT, 'micro'), '--matmul', '785x384x1536', ...[...blockSpecs].flatMap((b) => ['--block', b])]);

  const tensorsOf = new Map<string, Float32Array[]>(); // decoded once, for sections 1 and 6
  const tensorsFor = (s: Subject, n: number): Float32Array[] => {
    const name = s.model.manifest.name;
    const have = tensorsOf.get(name) ?? [];
    for (const file of clips.slice(have.length, n)) have.push(decodeTensor(s, file));
    tensorsOf.set(name, have);
    return have.slice(0, n);
  };
  const halting: HaltingRow[] = [];
  const merging: MergingRow[] = [];
  const reference: ReferenceRow[] = [];
  const profiles: OpProfile[] = [];
  let microRows: MicroRow[] = [];
  let limit: LimitRow[] = [];
  if (!skip.has('halting')) {
    for (const s of subjects) {
      const n = s.role === 'preset' ? plan.presetClips : plan.clips;
      const name = s.model.manifest.name;
      log(`${name}: decoding ${n} held-out clips through the engine's decode stages`);
      const tensors = tensorsFor(s, n);
      const tensorDir = path.join(OUT, 'tensors', name);
      await writeTensors(tensorDir, s, tensors);
      const reps = s.role === 'preset' ? plan.reps.preset : plan.reps.embedded;
      log(`${name}: ORT dense / keep-only / halting, ${n} clips × ${reps} reps`);
      const h = await measureHalting(s, tensors, threads, reps);
      log(`${name}: realisation ${h.row.realisation.toFixed(3)} (time ${h.row.speedup.toFixed(2)}×, FLOPs ${h.row.flops_ratio.toFixed(2)}×)`);
      halting.push(h.row);
      log(`${name}: token merging (ToMe, vid-TLDR) against merging off`);
      merging.push(...(await measureMerging(s, tensors, threads, reps)));
      log(`${name}: PyTorch reference`);
      const ref = await measureReference(s, tensorDir, h, threads, plan.reps.torch);
      log(`${name}: PyTorch reference / ORT = ${ref.speedup_median.toFixed(2)}× (median)`);
      reference.push(ref);
      for (const [label, knobs] of [['halting', defaults(s)], ['dense', denseKnobs(s)]] as const) {
        profiles.push(
          await profileOps(`${name}, ${label} (keep ${knobs.keep_ratio}, threshold ${knobs.halt_threshold})`, s.model.modelPath, feeds(s, tensors[0] as Float32Array, knobs), threads, plan.profileRuns, path.join(OUT, 'profile'), (active) =>
            stageFlops(s, knobs, active),
          ),
        );
      }
    }
    log('micro graphs');
    microRows = await measureMicro(micro.graphs, threads, plan.reps.micro);
    const deitBlock = micro.graphs.find((g) => g.kind === 'block' && g.tokens === 785 && g.dim === 384);
    if (deitBlock) {
      const blk = microRows.find((m) => m.name === deitBlock.name);
      if (blk) profiles.push(await profileOps(`one dense DeiT-S joint block at 785 tokens`, deitBlock.file, { x: { dtype: 'float32', dims: deitBlock.input.dims, data: new Float32Array(deitBlock.input.dims.reduce((a, b) => a * b, 1)).fill(0.1) } }, threads, plan.profileRuns * 3, path.join(OUT, 'profile')));
    }
    limit = limitRows(halting, microRows, micro.graphs, subjects);
  }

  // ---- decoding ---------------------------------------------------------------------------------
  const decodeRows: DecodeRow[] = [];
  const share: ShareRow[] = [];
  if (!skip.has('decode')) await section('decode', notes, async () => {
    const input = embedded.manifest.input;
    const files: Array<{ label: string; file: string }> = plan.decodeClips.map((c) => ({ label: c.label, file: syntheticClip(binaries.ffmpeg, path.join(OUT, 'clips'), c.spec as ClipSpec) }));
    for (const { label, file } of files) {
      decodeRows.push(await measureDecode(binaries, file, label, { frames: input.frames, size: input.size, shortSide: input.resize_short_side, scaleFlags: input.scale_flags, reps: plan.decodeReps }));
    }
    for (const s of subjects) {
      log(`${s.model.manifest.name}: end-to-end classify for the decode share`);
      const runs = [{ label: `held-out clips (${Math.min(4, clips.length)})`, files: clips.slice(0, 4) }, ...files.map((f) => ({ label: f.label, files: [f.file] }))];
      share.push(...(await withEngine(s.model.dir, threads, (engine) => measureShare(engine, runs, plan.shareReps))));
    }
  });

  // ---- service ---------------------------------------------------------------------------------
  let service: ServiceResults | null = null;
  if (!skip.has('service')) await section('service', notes, async () => {
    const concurrency = 2; // the service's default CONCURRENCY
    const engineRuns = await withEngine(embedded.dir, threads, async (engine) => {
      await engineThroughput(engine, clips, 1, 1); // warm-up
      const runs: ServiceResults['engine'] = [];
      for (const c of plan.engineLevels) runs.push(await engineThroughput(engine, clips, c, plan.engineSeconds));
      return runs;
    });
    // The floor's parts are measured alone: the engine above has closed and the server is not started yet.
    const referenceSet = { label: REFERENCE_CLIP.label, files: [syntheticClip(binaries.ffmpeg, path.join(OUT, 'clips'), REFERENCE_CLIP.spec)], role: 'reference' as const };
    const sets = [{ label: `held-out clips (${clips.length})`, files: clips, role: 'service' as const }, referenceSet];
    const floorOptions = { decodeThreads: Math.max(1, Math.floor(os.availableParallelism() / concurrency)), seconds: plan.floorSeconds, pyavReps: plan.floorPyavReps };
    const served = subjects.find((x) => x.role === 'embedded') as Subject; // the model the server runs
    const floors: CpuFloor[] = [];
    for (const set of sets) floors.push(await floorOf(served, set.label, set.files, floorOptions, notes));
    const measured = await measureService({
      modelDir: embedded.dir,
      modelName: embedded.manifest.name,
      // The service as deployed: INTRA_OP_THREADS=0 takes the cores its decoding leaves (1 on 2 cores at
      // CONCURRENCY 2). --threads is for the engine and kernel sections; given to the server it would
      // measure a configuration nobody runs (2 threads cost 5-7 ms more inference CPU per video here).
      threads: 0,
      concurrency,
      queueSize: 16,
      files: clips,
      levels: plan.levels,
      stepSeconds: plan.stepSeconds,
      soakSeconds: plan.soakSeconds,
      soakConcurrency: 8,
      soakSampleS: 5,
      engineThroughput: engineRuns,
      probes: [referenceSet],
    });
    const stepsOf = (label: string): ServiceStep[] => measured.probes?.find((p) => p.clips === label)?.steps ?? [];
    measured.floor = sets.flatMap((set, i) => floorRow(set.label, set.files.length, set.role, floors[i] as CpuFloor, set.role === 'service' ? measured.steps : stepsOf(set.label)) ?? []);
    service = measured;
    const oneClient = fewestStep(stepsOf(referenceSet.label));
    if (oneClient) {
      // Its own failure must not lose the section's measurements above.
      try {
        measured.main_reference = await mainReference(referenceSet.label, referenceSet.files[0] as string, Math.round(oneClient.p50_ms));
      } catch (err) {
        notes.push(`5g's reference (a bare node:http server) not measured: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  });

  // ---- precision and batching ------------------------------------------------------------------
  const precision: PrecisionRow[] = [];
  let precisionAccuracy: PrecisionAccuracy | null = null;
  if (!skip.has('precision')) await section('precision', notes, async () => {
    for (const subject of subjects) {
      // The preset is made by this bench (random weights): its int8 variant too. A committed model
      // without one is timed in fp32 only.
      const s = await ensureInt8(subject, subject.role === 'preset');
      const n = Math.min(plan.batch, s.role === 'preset' ? plan.presetClips : plan.clips);
      log(`${s.model.manifest.name}: fp32 vs int8, batch 1 vs ${n}, ${plan.reps.precision} reps`);
      const rows = await measurePrecisions(s, tensorsFor(s, n), threads, plan.reps.precision, n);
      for (const x of rows) log(`${x.model} ${x.precision}: ${x.ms_per_video_b1.toFixed(1)} ms/video at batch 1, ${x.ms_per_video_batch.toFixed(1)} at batch ${x.batch}`);
      precision.push(...rows);
    }
    if (plan.accuracySplit && !skip.has('accuracy') && embedded.manifest.variants?.int8) {
      const top1: Record<string, number> = {};
      let count = 0;
      for (const p of ['fp32', 'int8']) {
        log(`${embedded.manifest.name} ${p}: top-1 on the ${plan.accuracySplit} split`);
        const out = await runPython(['-m', 'haltingvt', 'eval', '--model', embedded.dir, ...(p === 'fp32' ? [] : ['--variant', p]), '--split', plan.accuracySplit, '--threads', String(threads), '--quiet']);
        const report = JSON.parse(out) as { clips: number; default: { top1: number } };
        top1[p] = report.default.top1;
        count = report.clips;
      }
      precisionAccuracy = { model: path.relative(ROOT, embedded.dir), split: plan.accuracySplit, clips: count, top1 };
    }
  });

  const watched = watcher.stop();
  if (watched.busy > 0) {
    notes.push(
      `Other heavy processes shared the 2 cores for about ${Math.round((100 * watched.busy) / Math.max(1, watched.samples))}% of this run (${watched.seen.join(', ')}; highest 1-minute load average ${watched.maxLoad.toFixed(1)}): ` +
        'absolute times are slower and noisier than on an idle machine; ratios are taken within the run, but contention hits the 2-thread runs (ORT, PyTorch) harder than single-threaded work.',
    );
  }
  const results: Results = {
    format: 'haltingvt-bench/1',
    mode,
    command,
    started: started.toISOString(),
    wall_s: (performance.now() - t0) / 1000,
    machine,
    models: subjects.map(info),
    halting,
    merging,
    reference,
    limit: { micro: microRows, rows: limit },
    decode: { rows: decodeRows, share },
    service,
    profiles,
    precision,
    precision_accuracy: precisionAccuracy,
    targets: [],
    notes,
  };
  if (values.merge) await mergeSkipped(results, values.merge);
  results.targets = buildTargets(results);
  const written = await writeResults(resultsDir, results);
  log(`wrote ${path.relative(ROOT, written.md)} and ${path.relative(ROOT, written.json)} in ${results.wall_s.toFixed(0)} s`);
  for (const t of results.targets) log(`target ${t.id} ${t.what}: ${t.value} → ${t.met === null ? 'not measured' : t.met ? 'met' : 'NOT met'}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
