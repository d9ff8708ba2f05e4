/**
 * The HTTP API's shapes, written once in zod: handlers parse requests with them, the response
 * types come from `z.infer`, and openapi.yaml is generated from them (src/http/openapi.ts), so the
 * documentation cannot drift from the code. Every schema that openapi.yaml names is registered in
 * `apiSchemas` under its component name.
 */
import { z } from 'zod';
import { MERGE_MODES } from '../engine/merging.js';
import { PRECISIONS } from '../engine/model.js';
import { ERRORS, type ErrorCode } from '../errors.js';

export const apiSchemas = z.registry<{ id: string }>();

const count = () => z.number().int().nonnegative();

// ---------------------------------------------------------------- requests

/** Knob values arrive as text (query string or multipart fields); an absent knob takes the model default. */
const knobText = (name: string, integer: boolean) =>
  z
    .string()
    .trim()
    .regex(integer ? /^[0-9]+$/ : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `${name} must be ${integer ? 'an integer' : 'a number'}`)
    .transform(Number)
    .optional();

export const KnobFields = z.strictObject(
  {
    top_k: knobText('top_k', true).describe('labels to return, most probable first'),
    keep_ratio: knobText('keep_ratio', false).describe('share of patches per frame the Glimpser keeps (lower is cheaper)'),
    halt_threshold: knobText('halt_threshold', false).describe('halting threshold; higher halts later (at least joint layers - 1 disables halting)'),
    // The engine checks the value against the model's choices (a model may not offer merging).
    merge_mode: z.string().trim().optional().describe(`training-free token merging in the joint layers: ${MERGE_MODES.join(', ')} (ToMe, vid-TLDR)`),
    merge_ratio: knobText('merge_ratio', false).describe('share of the live patch tokens each joint layer merges away (lower merges less; needs merge_mode)'),
  },
  {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? `unknown field ${iss.keys.join(', ')}; known: file, top_k, keep_ratio, halt_threshold, merge_mode, merge_ratio, explain` : undefined,
  },
);
export type KnobFields = z.infer<typeof KnobFields>;

/** `explain=true` (query string or form field, /v1) asks for the Explanation; not a knob, so not echoed in `knobs`. */
export const ExplainField = z
  .enum(['true', 'false', '1', '0'], { error: 'explain must be true or false' })
  .optional()
  .transform((v) => v === 'true' || v === '1')
  .describe('true: add `explain` (stop map, sampled frames, thumbnails) to each result; off by default');

export const ModelNameParams = z.object({ name: z.string().min(1) });

// ---------------------------------------------------------------- responses

export const ErrorBody = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]]).describe('stable error code, see the ERRORS catalogue'),
      status: z.number().int().describe('the HTTP status, repeated'),
      message: z.string().describe('what went wrong; for 5xx a generic text (the full error is in the server log under the request id)'),
      request_id: z.string(),
      details: z.record(z.string(), z.unknown()).optional().describe('structured facts for 4xx errors: knob ranges, limits...'),
    }),
  })
  .register(apiSchemas, { id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const ModelRef = z.strictObject({ name: z.string(), version: z.string() }).register(apiSchemas, { id: 'ModelRef' });

export const Knobs = z
  .strictObject({
    top_k: z.number().int(),
    keep_ratio: z.number(),
    halt_threshold: z.number(),
    merge_mode: z.enum(MERGE_MODES).optional().describe('absent for models exported without token merging'),
    merge_ratio: z.number().optional(),
  })
  .describe('the knobs the video ran with (defaults filled in)')
  .register(apiSchemas, { id: 'Knobs' });

export const Explanation = z
  .strictObject({
    grid: z
      .strictObject({ frames: count(), rows: count(), cols: count(), joint_layers: count() })
      .describe('the patch grid: stop_map has `frames` rows of rows*cols patches (raster order)'),
    stop_map: z
      .array(z.array(count()))
      .describe(
        'per frame token, per patch: 0 = dropped by the Glimpser, l = stopped after joint layer l (it halted there, was merged into another token there, or the class token halted there; the graph does not say which)',
      ),
    slot_to_map_frame: z.array(count()).describe('for each sampled frame (thumbnail), the stop_map row that covers it'),
    sampled_indices: z.array(count()).describe('the sampled frame indices, in slot order'),
    timestamps_s: z.array(z.number().nullable()).describe('presentation time of each sampled frame (index / frame rate); null when the stream declares no rate'),
    thumbnails: z
      .strictObject({ format: z.literal('png'), size: count(), data: z.array(z.string()).describe('base64 PNG, one per sampled frame') })
      .describe('the frames as the model saw them (after resize and crop), at most 112 × 112 each'),
    merged_per_layer: z
      .array(count())
      .describe('tokens each joint layer merged away; which tokens is not exposed by the graph: a merged patch shows the merging layer in stop_map'),
  })
  .describe('where the compute went; present only with explain=true (about 100-300 KB for 8 frames)')
  .register(apiSchemas, { id: 'Explanation' });
export type Explanation = z.infer<typeof Explanation>;

export const VideoResult = z
  .strictObject({
    filename: z.string().nullable().describe('the client file name, when the upload carried one'),
    top: z
      .array(z.strictObject({ label: z.string(), index: count(), probability: z.number().min(0).max(1) }))
      .describe('top-k labels, most probable first (softmax over the logits)'),
    tokens: z.strictObject({
      per_layer: z.array(count()).describe('tokens each joint layer processed (class token included); 0 after the class token halted'),
      merged_per_layer: z.array(count()).describe('tokens each joint layer merged away between its attention and its MLP (0 without merging)'),
      total: count().describe('sum of per_layer'),
      dense: count().describe('tokens a dense run (keep_ratio 1, no halting) processes'),
      kept_ratio: z.number().min(0).describe('total / dense'),
      layers_run: count(),
      patch_stop_histogram: z.array(count()).describe('patches per stop layer: index 0 = dropped by the Glimpser, l = stopped at joint layer l'),
    }),
    gflops: z.number().nonnegative().describe('GFLOPs (1 multiply-add = 1 FLOP) this video cost'),
    dense_gflops: z.number().positive(),
    knobs: Knobs,
    video: z.strictObject({
      width: count(),
      height: count(),
      rotation: z.number().int().describe('display rotation in degrees (0, 90, 180 or 270); frames are decoded upright'),
      duration_s: z.number().nullable(),
      frame_count: count(),
      frame_count_source: z.enum(['container', 'counted']).describe('frame_count from the container header, or from counting packets'),
      sampled_indices: z.array(count()),
      decoded_frames: count().describe('frames decoded to reach the sampled ones (the decode cost)'),
      seeks: count().describe('keyframe seeks made to skip frames no sample needs'),
      padded_frames: count(),
    }),
    timings_s: z
      .strictObject({
        queue: z.number().nonnegative().describe('waiting for a slot in the service queue and for the inference worker'),
        decode: z.number().nonnegative().describe('opening, decoding and scaling in a decode worker, then preprocessing'),
        infer: z.number().nonnegative(),
        post: z.number().nonnegative(),
        total: z.number().nonnegative().describe('from entering the queue to the result (the upload itself excluded)'),
      })
      .describe('seconds per stage'),
    explain: Explanation.optional(),
  })
  .register(apiSchemas, { id: 'VideoResult' });
export type VideoResult = z.infer<typeof VideoResult>;

export const ClassifyResponse = z
  .strictObject({ request_id: z.string(), model: ModelRef, ...VideoResult.shape })
  .register(apiSchemas, { id: 'ClassifyResponse' });
export type ClassifyResponse = z.infer<typeof ClassifyResponse>;

export const BatchItem = z
  .discriminatedUnion('ok', [
    z.strictObject({ index: count(), ok: z.literal(true), result: VideoResult }),
    z.strictObject({ index: count(), ok: z.literal(false), filename: z.string().nullable(), error: ErrorBody.shape.error }),
  ])
  .register(apiSchemas, { id: 'BatchItem' });
export type BatchItem = z.infer<typeof BatchItem>;

export const BatchResponse = z
  .strictObject({
    request_id: z.string(),
    model: ModelRef,
    knobs: Knobs,
    succeeded: count(),
    failed: count(),
    items: z.array(BatchItem).describe('one entry per uploaded file, in upload order'),
  })
  .register(apiSchemas, { id: 'BatchResponse' });
export type BatchResponse = z.infer<typeof BatchResponse>;

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
  .register(apiSchemas, { id: 'ModelInfo' });
export type ModelInfo = z.infer<typeof ModelInfo>;

export const ModelList = z.strictObject({ models: z.array(ModelInfo) }).register(apiSchemas, { id: 'ModelList' });

export const Liveness = z.strictObject({ status: z.literal('ok') }).register(apiSchemas, { id: 'Liveness' });
export const Readiness = z
  .strictObject({
    status: z
      .enum(['starting', 'ready', 'unavailable', 'draining', 'failed'])
      .describe('ready: serving; starting: the model loads; unavailable: no inference worker can run now (it is being restarted); draining: shutting down; failed: the model could not load'),
  })
  .register(apiSchemas, { id: 'Readiness' });
export const V2Live = z.strictObject({ live: z.boolean() }).register(apiSchemas, { id: 'V2Live' });
export const V2Ready = z.strictObject({ ready: z.boolean() }).register(apiSchemas, { id: 'V2Ready' });
