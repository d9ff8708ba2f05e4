/**
 * Model folder loading: manifest.json → zod (the single source of truth for its shape, see
 * docs/contracts.md) → every listed file checked for size and sha256 → LoadedModel.
 * Every failure names the file and the problem.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EngineError } from '../errors.js';
import { MERGE_MODES } from './merging.js';

const Dim = z.union([z.number().int().nonnegative(), z.string().min(1)]);
const TensorSpec = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32', 'uint8', 'bool']),
  shape: z.array(Dim),
});
export type TensorSpec = z.infer<typeof TensorSpec>;

const Knob = z
  .object({ default: z.number(), min: z.number(), max: z.number() })
  .refine((k) => k.min <= k.default && k.default <= k.max, { message: 'needs min <= default <= max' });
export type KnobRange = z.infer<typeof Knob>;

/** A knob with named values; merge_mode's are indices of MERGE_MODES in the graph, so only those. */
const ChoiceKnob = z
  .object({ default: z.enum(MERGE_MODES), choices: z.array(z.enum(MERGE_MODES)).min(1) })
  .refine((k) => k.choices.includes(k.default), { message: 'needs default among the choices' });
export type ChoiceKnob = z.infer<typeof ChoiceKnob>;

const Positive = z.number().int().positive();

/** Graph precisions the engine can serve: fp32 is the manifest's graph, the others its `variants`. */
export const PRECISIONS = ['fp32', 'int8', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** A reduced-precision copy of the graph (models/haltingvt/export/variants.py), same inputs and outputs. */
const Variant = z.looseObject({
  file: z.string().min(1),
  precision: z.enum(['int8', 'fp16']),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  method: z.string().optional(),
});
const Rgb = z.tuple([z.number(), z.number(), z.number()]);

export const ManifestSchema = z
  .looseObject({
    format: z.literal('haltingvt-manifest/1'),
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'must be URL-safe (letters, digits, . _ -)'),
    version: z.string().min(1),
    preset: z.string().optional(),
    config: z.record(z.string(), z.unknown()),
    labels: z.array(z.string()).min(1),
    input: z.object({
      layout: z.literal('NCTHW'),
      frames: Positive,
      size: Positive,
      resize_short_side: Positive,
      resize_rounding: z.literal('floor(x + 0.5)'),
      // Goes into an ffmpeg filter string: only plain flag names.
      scale_flags: z.string().regex(/^[a-z_]+(\+[a-z_]+)*$/, 'must be ffmpeg scale flags such as "bilinear"'),
      crop: z.literal('center'),
      sampling: z.literal('segment-centre'),
      color: z.literal('rgb24'),
      mean: Rgb,
      std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
    }),
    graph: z.object({
      file: z.string().min(1),
      opset: Positive,
      inputs: z.array(TensorSpec).min(1),
      outputs: z.array(TensorSpec).min(1),
    }),
    // merge_mode and merge_ratio: models exported before token merging have neither (nor the inputs).
    knobs: z.object({ keep_ratio: Knob, halt_threshold: Knob, top_k: Knob, merge_mode: ChoiceKnob.optional(), merge_ratio: Knob.optional() }),
    flops: z.object({
      frames: Positive,
      patches: Positive,
      patch_dim: Positive,
      dim: Positive,
      mlp_hidden: Positive,
      glimpser_blocks: z.number().int().nonnegative(),
      joint_blocks: Positive,
      classes: Positive,
      motion_classes: z.number().int().nonnegative(),
      // The whole patch embedding per video; manifests written before the conv3d stem lack it and
      // mean the per-frame patch projection, T*P*patch_dim*D.
      embed_macs: Positive.optional(),
      // Attention heads (ToMe's metric is dim / heads wide); manifests written before merging lack it.
      heads: Positive.optional(),
    }),
    dense_gflops: z.number().positive(),
    // Absent in manifests written before variants existed: fp32 only.
    variants: z.record(z.string(), Variant).optional(),
    files: z.record(z.string(), z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() })),
  })
  .superRefine((m, ctx) => {
    const issue = (p: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path: p, message });
    if (m.input.resize_short_side < m.input.size) issue(['input', 'resize_short_side'], `must be >= input.size (${m.input.size})`);
    if (m.flops.frames !== m.input.frames) issue(['flops', 'frames'], `must equal input.frames (${m.input.frames})`);
    if (m.flops.classes !== m.labels.length) issue(['flops', 'classes'], `must equal the number of labels (${m.labels.length})`);
    if (!(m.graph.file in m.files)) issue(['files'], `must list the graph file "${m.graph.file}"`);
    for (const [name, dims] of Object.entries(REQUIRED_INPUTS)) {
      const spec = m.graph.inputs.find((s) => s.name === name);
      if (!spec) issue(['graph', 'inputs'], `must declare input "${name}"`);
      else if (spec.shape.length !== dims) issue(['graph', 'inputs'], `input "${name}" must have ${dims} dims`);
    }
    for (const [name, dims] of Object.entries(REQUIRED_OUTPUTS)) {
      const spec = m.graph.outputs.find((s) => s.name === name);
      if (!spec) issue(['graph', 'outputs'], `must declare output "${name}"`);
      else if (spec.shape.length !== dims) issue(['graph', 'outputs'], `output "${name}" must have ${dims} dims`);
    }
    if ((m.knobs.merge_mode === undefined) !== (m.knobs.merge_ratio === undefined)) issue(['knobs'], 'merge_mode and merge_ratio come together');
    if (m.knobs.merge_mode !== undefined) {
      for (const name of ['merge_mode', 'merge_ratio']) {
        const spec = m.graph.inputs.find((s) => s.name === name);
        if (!spec || spec.shape.length !== 0) issue(['graph', 'inputs'], `knob ${name} needs a scalar graph input "${name}"`);
      }
      if (m.knobs.merge_mode.choices.includes('tome') && m.flops.heads === undefined) issue(['flops', 'heads'], 'needed to count ToMe merges');
    }
    for (const [key, v] of Object.entries(m.variants ?? {})) {
      if (key !== v.precision) issue(['variants', key], `precision is ${v.precision}, listed under ${key}`);
      if (m.files[v.file]?.sha256 !== v.sha256) issue(['variants', key], `file "${v.file}" must be listed in files with the same sha256`);
    }
    for (const file of Object.keys(m.files)) {
      if (path.isAbsolute(file) || file.split(/[\\/]/).includes('..')) issue(['files', file], 'must be a path inside the model folder');
    }
  });
export type Manifest = z.infer<typeof ManifestSchema>;

/** Graph inputs and outputs the engine feeds and reads, with their ranks (docs/contracts.md). */
const REQUIRED_INPUTS = { video: 5, keep_ratio: 0, halt_threshold: 0 } as const;
const REQUIRED_OUTPUTS = { logits: 2, active_tokens: 2, patch_stop_layer: 3 } as const;

export interface LoadedModel {
  dir: string;
  manifest: Manifest;
  /** Absolute path of the ONNX graph served: the fp32 graph or the chosen variant. */
  modelPath: string;
  precision: Precision;
  /** What the folder offers: fp32 and its variants. */
  precisions: Precision[];
}

/** The precisions a manifest offers, fp32 first. */
export function precisionsOf(manifest: Manifest): Precision[] {
  return PRECISIONS.filter((p) => p === 'fp32' || manifest.variants?.[p] !== undefined);
}

/** Loads the folder; `precision` picks the graph (a missing variant fails before any file is hashed). */
export async function loadModel(dir: string, precision: Precision = 'fp32'): Promise<LoadedModel> {
  const root = path.resolve(dir);
  const manifestPath = path.join(root, 'manifest.json');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    throw new EngineError('MODEL_NOT_FOUND', `${manifestPath}: cannot read (${errnoOf(err)})`, { file: manifestPath }, { cause: err });
  }
  const manifest = parseManifest(text, manifestPath);
  const precisions = precisionsOf(manifest);
  const graphFile = precision === 'fp32' ? manifest.graph.file : manifest.variants?.[precision]?.file;
  if (graphFile === undefined) {
    throw new EngineError('MODEL_NOT_FOUND', `${manifestPath}: no ${precision} variant of the graph (this model offers ${precisions.join(', ')}); make one with \`python -m haltingvt quantize\``, {
      file: manifestPath,
      precision,
      precisions,
    });
  }
  // Sequential on purpose: a model is a few large files and hashing is disk-bound.
  for (const [name, expected] of Object.entries(manifest.files)) {
    await verifyFile(path.join(root, name), expected);
  }
  await checkLabelsFile(root, manifest);
  return { dir: root, manifest, modelPath: path.join(root, graphFile), precision, precisions };
}

export function parseManifest(text: string, where = 'manifest.json'): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EngineError('MODEL_INVALID', `${where}: not valid JSON (${(err as Error).message})`, { file: where }, { cause: err });
  }
  const result = ManifestSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new EngineError('MODEL_INVALID', `${where}: ${problems.join('; ')}`, { file: where, problems });
  }
  return result.data;
}

async function verifyFile(file: string, expected: { sha256: string; bytes: number }): Promise<void> {
  let bytes: number;
  try {
    bytes = (await stat(file)).size;
  } catch (err) {
    throw new EngineError('MODEL_NOT_FOUND', `${file}: listed in manifest.json but ${errnoOf(err)}`, { file }, { cause: err });
  }
  if (bytes !== expected.bytes) {
    throw new EngineError('MODEL_INVALID', `${file}: ${bytes} bytes, manifest.json says ${expected.bytes}`, { file, bytes, expected: expected.bytes });
  }
  const actual = await sha256File(file);
  if (actual !== expected.sha256) {
    throw new EngineError('MODEL_INVALID', `${file}: sha256 ${actual} does not match manifest.json (${expected.sha256})`, {
      file,
      sha256: actual,
      expected: expected.sha256,
    });
  }
}

async function checkLabelsFile(root: string, manifest: Manifest): Promise<void> {
  if (!('labels.txt' in manifest.files)) return;
  const file = path.join(root, 'labels.txt');
  const lines = (await readFile(file, 'utf8')).split('\n').map((l) => l.replace(/\r$/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const same = lines.length === manifest.labels.length && lines.every((l, i) => l === manifest.labels[i]);
  if (!same) {
    throw new EngineError('MODEL_INVALID', `${file}: ${lines.length} labels that differ from manifest.json's ${manifest.labels.length}`, { file });
  }
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

function errnoOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' ? 'does not exist' : code ? `error ${code}` : String(err);
}
