/**
 * Engine configuration: one zod schema with the defaults, validated once at start-up. The CLI and
 * the HTTP service build it from their own flags or environment; the service's environment
 * defaults are these (src/config.ts reads them from here), so both refuse the same videos.
 */
import { z } from 'zod';
import { PRECISIONS } from './model.js';

export const EngineConfigSchema = z.strictObject({
  /** Preferred execution providers; on failure the first is dropped and the rest tried (CUDA → CPU). */
  executionProviders: z.array(z.string().min(1)).min(1).default(['cuda', 'cpu']),
  /** Which graph of the model folder runs: fp32 (model.onnx) or a variant its manifest lists (int8 for CPUs, fp16 for CUDA). */
  precision: z.enum(PRECISIONS).default('fp32'),
  /** ORT intra-op threads; 0 lets ORT decide (one per core). */
  intraOpNumThreads: z.number().int().nonnegative().default(0),
  interOpNumThreads: z.number().int().nonnegative().default(0),
  /** Wall-clock limit for decoding one video; past it the video fails and its decode worker is replaced. */
  decodeTimeoutMs: z.number().int().positive().default(60_000),
  /** Longer videos are refused with VIDEO_TOO_LONG: 10 minutes, far past the 8 frames a clip is sampled to. */
  maxDurationS: z.number().positive().default(600),
  /** Frames with more pixels (width x height) are refused with VIDEO_TOO_LARGE before decoding: 4K UHD. */
  maxPixels: z.number().int().positive().default(3840 * 2160),
  /** Decode worker processes: how many videos decode at once. */
  decodeWorkers: z.number().int().positive().default(1),
  /**
   * Decoder threads per worker; 0 means cores ÷ decodeWorkers. A loaded service is bound by
   * CPU-seconds per video, and extra threads cost 10-25% more CPU (docs/decisions.md).
   */
  decodeThreads: z.number().int().nonnegative().default(0),
  /** NVDEC through node-av: auto uses it when a CUDA device opens, cuda asks for it; both fall back to the CPU with a logged reason. */
  decodeHwaccel: z.enum(['auto', 'cuda', 'none']).default('auto'),
  /** Dynamic batching (batcher.ts): most videos per session run; 1 runs every video alone. */
  batchMaxSize: z.number().int().positive().default(1),
  /** How long the oldest waiting video may be held for a fuller batch. */
  batchMaxDelayMs: z.number().int().nonnegative().default(0),
  /** Limit for the worker to load the model and finish its warm-up run. */
  workerStartTimeoutMs: z.number().int().positive().default(120_000),
  /** First delay before starting the worker again after it died while starting; doubles per failure in a row. */
  workerRestartBackoffMs: z.number().int().nonnegative().default(500),
  workerRestartBackoffMaxMs: z.number().int().nonnegative().default(30_000),
  /** Longest time without a ready worker before the engine fails for good (WORKER_UNAVAILABLE); 0 = never. */
  workerMaxDownMs: z.number().int().nonnegative().default(60_000),
});

export type EngineConfig = z.infer<typeof EngineConfigSchema>;
export type EngineConfigInput = z.input<typeof EngineConfigSchema>;

export function engineConfig(input: EngineConfigInput = {}): EngineConfig {
  return EngineConfigSchema.parse(input);
}
