/**
 * Engine configuration: one zod schema with the defaults, validated once at start-up. The CLI and
 * the HTTP service build it from their own flags or environment; the service's environment
 * defaults are these (src/config.ts reads them from here), so both refuse the same videos.
 */
import { z } from 'zod';
import { PRECISIONS } from './model.js';

/**
 * The providers onnxruntime-node 1.30 can create on Linux x64, in the order a GPU box should prefer
 * them (docs/gpu.md): CUDA where its libraries and a device are present (the CUDA image), WebGPU
 * (Dawn over Vulkan: NVIDIA without the CUDA libraries, AMD, Intel), the CPU always.
 */
export const EXECUTION_PROVIDERS = ['cuda', 'webgpu', 'cpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** Providers that own device memory: at most one per session (ort-session.ts, providerAttempts). */
export const GPU_PROVIDERS: ReadonlySet<string> = new Set<ExecutionProvider>(['cuda', 'webgpu']);

/** Why a preference list cannot be used, or undefined: unknown names, repeats. */
export function providerListProblem(list: readonly string[]): string | undefined {
  const unknown = list.filter((p) => !(EXECUTION_PROVIDERS as readonly string[]).includes(p));
  if (unknown.length > 0) return `unknown execution provider ${unknown.map((p) => `"${p}"`).join(', ')} (known: ${EXECUTION_PROVIDERS.join(', ')})`;
  if (new Set(list).size !== list.length) return 'names a provider twice';
  return undefined;
}

export const EngineConfigSchema = z.strictObject({
  /** Preferred execution providers; on failure the first is dropped and the rest tried (CUDA → WebGPU → CPU, docs/gpu.md). */
  executionProviders: z
    .array(z.string().min(1))
    .min(1)
    .superRefine((list, ctx) => {
      const problem = providerListProblem(list);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default(['cuda', 'cpu']),
  /** Which graph of the model folder runs: fp32 (model.onnx) or a variant its manifest lists (int8 for CPUs, fp16 for CUDA). */
  precision: z.enum(PRECISIONS).default('fp32'),
  /** ORT intra-op threads; 0 picks them by threadPlan: the cores the other videos' decoding leaves. */
  intraOpNumThreads: z.number().int().nonnegative().default(0),
  interOpNumThreads: z.number().int().nonnegative().default(0),
  /**
   * Whether ORT's pool threads spin while they wait for work. Off: a thread sleeps between runs and
   * between a run's parallel sections, and the cores go to decoding (docs/decisions.md, "Inference
   * threads do not spin").
   */
  intraOpSpinning: z.boolean().default(false),
  /**
   * Wall-clock limit for one inference run (a batch counts once); past it the run's videos fail and
   * the worker is replaced, so a run stuck in native code cannot hold every later video. Runs take
   * milliseconds to seconds; the limit is for the stuck ones.
   */
  inferenceTimeoutMs: z.number().int().positive().default(60_000),
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
  /**
   * Videos after which a decode worker is retired and a fresh one takes its place; 0: never. A
   * worker's malloc heap creeps by ~1 KB per video for good (docs/decisions.md, "Decode worker
   * memory"); a fresh one costs a start, ~0.2 s that the videos queued behind it wait. Measured
   * at 500 (2 cores, 4 clients, 150 s, 2026-12-07): 21.56 videos/s against 21.42 never retiring, no
   * video failed, the decode workers' RSS flat (194-202 MiB) against 202 → 208.
   */
  decodeWorkerMaxVideos: z.number().int().nonnegative().default(1000),
  /** NVDEC through node-av: auto uses it when a CUDA device opens, cuda asks for it; both fall back to the CPU with a logged reason. */
  decodeHwaccel: z.enum(['auto', 'cuda', 'none']).default('auto'),
  /** Dynamic batching (batcher.ts): most videos per session run; 1 runs every video alone. */
  batchMaxSize: z.number().int().positive().default(1),
  /** How long the oldest waiting video may be held for a fuller batch. */
  batchMaxDelayMs: z.number().int().nonnegative().default(0),
  /**
   * Live stream windows waiting for the inference worker at the same time (with equal knobs) run as
   * one batch of up to this many; 0 lets the model decide (streamBatchSize). Many streams on few
   * cores: 47 streams of 25 fps 360p on 2 cores with the embedded model held (p99 lag 0.92 s) at 8 and
   * did not at 1 (p99 4.6 s, 47 windows dropped), `bench/streams.ts --trial 47` of 2026-12-06.
   */
  streamBatchMaxSize: z.number().int().nonnegative().default(0),
  /**
   * How much lower live stream decoders run than the rest of the service (nice, 0..19): the inference
   * worker, which every stream shares and whose delay is every stream's lag, goes first; a decoder
   * that waits has its pipe to buffer in. Nice is a weight, not a priority: at 5 (weight 335 against
   * 1024) fifty runnable decoders still hold the inference worker to a few percent of a core, at 19
   * (weight 15) to most of one. Measured with the batch above (`bench/streams.ts --trial N`, 2 cores,
   * 2026-12-07, runs alternated): 50 streams held at 19 twice (lag p50 0.36-0.40 s, p99 1.3-1.9 s, the
   * windows' inference wait p99 0.10-0.16 s), not at 5 (p50 1.5-3.8 s, wait p99 2.0-4.5 s, 0 and 187
   * windows dropped); at 58 streams 0-1 dropped at 19 against 104-139 at 5. (Earlier: 47 held at 5, not at 0.)
   */
  streamDecoderNice: z.number().int().min(0).max(19).default(19),
  /** Limit for the worker to load the model and finish its warm-up run. */
  workerStartTimeoutMs: z.number().int().positive().default(120_000),
  /** First delay before starting the worker again after it died while starting; doubles per failure in a row. */
  workerRestartBackoffMs: z.number().int().nonnegative().default(500),
  workerRestartBackoffMaxMs: z.number().int().nonnegative().default(30_000),
  /** Longest time without a ready worker before the engine fails for good (WORKER_UNAVAILABLE); 0 = never. */
  workerMaxDownMs: z.number().int().nonnegative().default(60_000),
});

export type EngineConfig = z.infer<typeof EngineConfigSchema>;

/**
 * Threads for the settings left at 0. Each decode worker gets cores ÷ workers (a worker decodes one
 * video; a loaded service is bound by CPU-seconds per video, and extra threads cost 10-25% more CPU,
 * docs/decisions.md). Inference gets the cores that decoding leaves while it runs: with W videos in
 * flight, at most W − 1 others decode meanwhile, so cores − (W − 1), at least one. On 2 cores with 2
 * decode workers that is one thread, which measured better than two on every count: CPU per video
 * 84.6 against 95.7 ms, one video's latency 78 against 84 ms, 20.9 and 23.6 videos/s at saturation
 * against 20.0 and 20.2 in two runs (bench/ab.ts; docs/decisions.md, "Inference threads do not spin").
 */
export function threadPlan(config: Pick<EngineConfig, 'decodeWorkers' | 'decodeThreads' | 'intraOpNumThreads'>, cores: number): { decodeThreads: number; intraOpNumThreads: number } {
  return {
    decodeThreads: config.decodeThreads || Math.max(1, Math.floor(cores / config.decodeWorkers)),
    intraOpNumThreads: config.intraOpNumThreads || Math.max(1, cores - (config.decodeWorkers - 1)),
  };
}

/** Below this, one run at batch 1 (the warm-up's) is short enough that batching pays. */
export const STREAM_BATCH_RUN_MS = 100;

/**
 * The stream batch size: the configured one, or for 0, 8 when one run of the model at batch 1 (the
 * warm-up) takes under STREAM_BATCH_RUN_MS, else 1. A batch pads every video to the batch's longest
 * live token count layer by layer (the graph's compaction) and its activations outgrow the caches,
 * so it pays only where a run's fixed costs and small GEMMs dominate. Measured (make bench section 6
 * and its profile at batch 1 and 8): the embedded model, a 28 ms warm-up, costs 0.77-0.84× per video
 * at batch 8; the DeiT-S-sized preset, about 1 s, costs 1.10-1.38×, of which padding is 1.14×
 * (tokens; 1.16× for attention's tokens²) and the rest elementwise ops 1.3-2× slower per video
 * (Add, Softmax, Transpose, LayerNormalization) while its MatMuls gain 7%.
 */
export function streamBatchSize(configured: number, warmupMs: number): number {
  if (configured > 0) return configured;
  return warmupMs < STREAM_BATCH_RUN_MS ? 8 : 1;
}

export type EngineConfigInput = z.input<typeof EngineConfigSchema>;

export function engineConfig(input: EngineConfigInput = {}): EngineConfig {
  return EngineConfigSchema.parse(input);
}
