/**
 * Engine configuration: one zod schema with the defaults, validated once at start-up. The CLI and
 * the HTTP service build it from their own flags or environment.
 */
import { z } from 'zod';

export const EngineConfigSchema = z.strictObject({
  /** Preferred execution providers; on failure the first is dropped and the rest tried (CUDA → CPU). */
  executionProviders: z.array(z.string().min(1)).min(1).default(['cuda', 'cpu']),
  /** ORT intra-op threads; 0 lets ORT decide (one per core). */
  intraOpNumThreads: z.number().int().nonnegative().default(0),
  interOpNumThreads: z.number().int().nonnegative().default(0),
  /** Limit for ffprobe on one file. */
  probeTimeoutMs: z.number().int().positive().default(10_000),
  /** Limit for all the ffmpeg runs that decode one file. */
  decodeTimeoutMs: z.number().int().positive().default(60_000),
  /** Longer videos are refused with VIDEO_TOO_LONG. */
  maxDurationS: z.number().positive().default(3 * 3600),
  /** Frames with more pixels (width x height) are refused with VIDEO_TOO_LARGE before decoding. */
  maxPixels: z.number().int().positive().default(8192 * 8192),
  /** Videos at least this long use one fast seek per frame instead of one select pass (docs/decisions.md). */
  seekMinDurationS: z.number().nonnegative().default(60),
  seekConcurrency: z.number().int().positive().default(1),
  /** Force a decode strategy (benchmarks). */
  decodeStrategy: z.enum(['select', 'seek']).optional(),
  /** Explicit ffmpeg/ffprobe paths; otherwise PATH, then the npm packages. */
  ffmpegPath: z.string().min(1).optional(),
  ffprobePath: z.string().min(1).optional(),
  /** Dynamic batching (batcher.ts): most videos per session run; 1 runs every video alone. */
  batchMaxSize: z.number().int().positive().default(1),
  /** How long the oldest waiting video may be held for a fuller batch. */
  batchMaxDelayMs: z.number().int().nonnegative().default(0),
  /** Limit for the worker to load the model and finish its warm-up run. */
  workerStartTimeoutMs: z.number().int().positive().default(120_000),
});

export type EngineConfig = z.infer<typeof EngineConfigSchema>;
export type EngineConfigInput = z.input<typeof EngineConfigSchema>;

export function engineConfig(input: EngineConfigInput = {}): EngineConfig {
  return EngineConfigSchema.parse(input);
}
