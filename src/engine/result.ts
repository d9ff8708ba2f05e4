/**
 * What the engine answers for one video, written once in zod. The engine's result types come from
 * these schemas, the CLI prints them, and the HTTP API serves them as they are: src/http/schemas.ts
 * only adds the client's file name, and registers the parts under the names openapi.yaml gives them.
 */
import { z } from 'zod';
import { MERGE_MODES } from './merging.js';

const count = () => z.number().int().nonnegative();

export const Prediction = z.strictObject({ label: z.string(), index: count(), probability: z.number().min(0).max(1) });
export type Prediction = z.infer<typeof Prediction>;

export const TokenReport = z.strictObject({
  per_layer: z.array(count()).describe('tokens each joint layer processed (class token included); 0 after the class token halted'),
  merged_per_layer: z.array(count()).describe('tokens each joint layer merged away between its attention and its MLP (0 without merging)'),
  total: count().describe('sum of per_layer'),
  dense: count().describe('tokens a dense run (keep_ratio 1, no halting) processes'),
  kept_ratio: z.number().min(0).describe('total / dense'),
  layers_run: count(),
  patch_stop_histogram: z.array(count()).describe('patches per stop layer: index 0 = dropped by the Glimpser, l = stopped at joint layer l'),
});
export type TokenReport = z.infer<typeof TokenReport>;

export const KnobsUsed = z
  .strictObject({
    top_k: z.number().int(),
    keep_ratio: z.number(),
    halt_threshold: z.number(),
    merge_mode: z.enum(MERGE_MODES).optional().describe('absent for models exported without token merging'),
    merge_ratio: z.number().optional(),
  })
  .describe('the knobs the video ran with (defaults filled in)');

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
  .describe('where the compute went; present only with explain=true (about 100-300 KB for 8 frames)');
export type Explanation = z.infer<typeof Explanation>;

export const VideoFacts = z.strictObject({
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
});

export const StageTimings = z
  .strictObject({
    queue: z.number().nonnegative().describe('waiting for a slot in the service queue and for the inference worker'),
    decode: z.number().nonnegative().describe('opening, decoding, scaling and cropping in a decode worker'),
    infer: z.number().nonnegative().describe('normalising the frames and running the model in the inference worker (IPC included)'),
    post: z.number().nonnegative(),
    total: z.number().nonnegative().describe('from entering the queue to the result (the upload itself excluded)'),
  })
  .describe('seconds per stage');
export type StageTimings = z.infer<typeof StageTimings>;

/** One classified video, as every front end shows it (the CLI's JSON line, the HTTP result). */
export const VideoAnswer = z.strictObject({
  top: z.array(Prediction).describe('top-k labels, most probable first (softmax over the logits)'),
  tokens: TokenReport,
  gflops: z.number().nonnegative().describe('GFLOPs (1 multiply-add = 1 FLOP) this video cost'),
  dense_gflops: z.number().positive(),
  knobs: KnobsUsed,
  video: VideoFacts,
  timings_s: StageTimings,
  explain: Explanation.optional(),
});
export type VideoAnswer = z.infer<typeof VideoAnswer>;

/** What `engine.classify` resolves to: the answer, and the raw softmax when asked. */
export type ClassifyResult = VideoAnswer & {
  /** Softmax over every class, only when asked for (ClassifyOptions.probabilities): the OIP PROBABILITIES output. */
  probabilities?: Float64Array;
};
