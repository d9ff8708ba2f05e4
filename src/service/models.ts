/**
 * What this service serves, as every transport describes it: the /v1 model document, and the check
 * that a call names the model (and version) served here.
 */
import { z } from 'zod';
import { knobRanges } from '../engine/index.js';
import { MERGE_MODES } from '../engine/merging.js';
import { PRECISIONS } from '../engine/model.js';
import { EngineError } from '../errors.js';
import type { EnginePort } from './lifecycle.js';

const count = () => z.number().int().nonnegative();

export const ModelRef = z.strictObject({ name: z.string(), version: z.string() });
export type ModelRef = z.infer<typeof ModelRef>;

const KnobRange = z.strictObject({ default: z.number(), min: z.number(), max: z.number() });
const KnobChoices = z.strictObject({ default: z.enum(MERGE_MODES), choices: z.array(z.enum(MERGE_MODES)) });

export const ModelInfo = z
  .strictObject({
    name: z.string(),
    version: z.string(),
    ready: z.boolean(),
    execution_provider: z.string().describe('where the model runs (cpu, cuda...)'),
    precision: z.enum(PRECISIONS).describe('the graph served (MODEL_PRECISION): fp32, or the int8 / fp16 variant from the model folder'),
    precisions: z.array(z.enum(PRECISIONS)).describe('the graphs this model folder offers'),
    labels: z.array(z.string()),
    input: z.strictObject({
      layout: z.string(),
      frames: count(),
      size: count(),
      resize_short_side: count(),
      crop: z.string(),
      sampling: z.string(),
      color: z.string(),
      mean: z.array(z.number()),
      std: z.array(z.number()),
    }),
    knobs: z.strictObject({
      top_k: KnobRange,
      keep_ratio: KnobRange,
      halt_threshold: KnobRange,
      merge_mode: KnobChoices.optional().describe('token merging modes this model offers (absent: none)'),
      merge_ratio: KnobRange.optional(),
    }),
    dense_gflops: z.number().positive().describe('GFLOPs of one video with keep_ratio 1 and no halting'),
  })
;
export type ModelInfo = z.infer<typeof ModelInfo>;


/** NOT_FOUND unless `name` (and `version`, when given) are the served model's. */
export function checkServed(engine: EnginePort, name: string, version?: string): void {
  const { manifest } = engine;
  if (name !== manifest.name) throw new EngineError('NOT_FOUND', `no model named ${JSON.stringify(name)}; this service serves ${JSON.stringify(manifest.name)}`);
  if (version && version !== manifest.version) {
    throw new EngineError('NOT_FOUND', `model ${JSON.stringify(name)} has no version ${JSON.stringify(version)}; it serves ${JSON.stringify(manifest.version)}`);
  }
}

export function modelRef(engine: EnginePort): ModelRef {
  return { name: engine.manifest.name, version: engine.manifest.version };
}

export function modelInfo(engine: EnginePort, ready: boolean): ModelInfo {
  const { manifest } = engine;
  const { input } = manifest;
  const knobs = knobRanges(manifest);
  return {
    name: manifest.name,
    version: manifest.version,
    ready,
    execution_provider: engine.info.session.executionProvider,
    precision: engine.info.model.precision,
    precisions: engine.info.model.precisions,
    labels: manifest.labels,
    input: {
      layout: input.layout,
      frames: input.frames,
      size: input.size,
      resize_short_side: input.resize_short_side,
      crop: input.crop,
      sampling: input.sampling,
      color: input.color,
      mean: input.mean,
      std: input.std,
    },
    knobs: {
      top_k: knobs.top_k,
      keep_ratio: knobs.keep_ratio,
      halt_threshold: knobs.halt_threshold,
      // Only models exported with token merging offer it.
      ...(knobs.merge_mode && knobs.merge_ratio ? { merge_mode: knobs.merge_mode, merge_ratio: knobs.merge_ratio } : {}),
    },
    dense_gflops: manifest.dense_gflops,
  };
}
