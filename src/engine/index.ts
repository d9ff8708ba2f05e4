/**
 * The engine's public interface: everything between a video file and a result. The CLI and the
 * HTTP service use only what this file exports.
 *
 * ```ts
 * const engine = await createEngine({ modelDir: 'models/default', logger });
 * const result = await engine.classify('clip.mp4', { top_k: 3, keep_ratio: 0.5 }, { signal });
 * // result.top[0].label, result.tokens.kept_ratio, result.gflops, result.timings_s.infer ...
 * await engine.close();
 * ```
 *
 * Failures are `EngineError`s (src/errors.ts) with a `code` and an HTTP `status`.
 * `config.precision` picks the graph (fp32, or a variant the manifest lists; a missing one fails first).
 * `createEngine` resolves only after the model's files are verified, a decode worker has loaded
 * node-av, and the inference worker has opened the session and finished a warm-up run: a resolved
 * engine is ready.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import type { EngineError } from '../errors.js';
import { engineConfig, streamBatchSize, threadPlan, type EngineConfig, type EngineConfigInput } from './config.js';
import { createDecodePool, type DecodePool, type DecodePoolOptions, type DecoderInfo } from './decode/pool.js';
import { createSessionHost, inferenceInit, type SessionHost, type SessionHostOptions, type SessionInfo } from './inference/host.js';
import { createKnobValidator, type KnobInput, type Knobs } from './knobs.js';
import { loadModel, type Manifest, type Precision } from './model.js';
import { startLiveProcess, type LiveHandlers, type LiveProcess } from './live/process.js';
import type { LiveSource } from './live/worker.js';
import { createPipeline, type ClassifyFrames, type ClassifyOptions, type ClassifyResult } from './pipeline.js';
import type { WorkerPoolStats } from './workers/pool.js';
import type { Tracer } from '../telemetry/spans.js';

export { EngineError, ERRORS, isEngineError, type ErrorCode } from '../errors.js';
export type { ClassifyOptions, ClassifyResult, DecodedFrames, FramesAnswer } from './pipeline.js';
export type { LiveHandlers, LiveProcess } from './live/process.js';
export type { LiveInfo, LiveSummary, LiveWindow } from './live/decode-stream.js';
export type { LiveSource } from './live/worker.js';
export { knobRanges, NUMBER_TEXT, type Knobs, type KnobInput } from './knobs.js';
export { PRECISIONS, type Manifest, type Precision } from './model.js';
export { round6, topK, type Prediction, type TokenReport } from './postprocess.js';
export type { Explanation } from './explain.js';
export type { EngineConfig, EngineConfigInput } from './config.js';
export type { SessionHost, SessionHostOptions, SessionInfo } from './inference/host.js';
export type { DecoderInfo } from './decode/pool.js';
export type { WorkerPoolStats } from './workers/pool.js';
export type { WorkerState } from './workers/supervisor.js';

export interface EngineOptions {
  /** Model folder with manifest.json, model.onnx and labels.txt (docs/contracts.md). */
  modelDir: string;
  config?: EngineConfigInput | undefined;
  /** Defaults to a silent logger. */
  logger?: Logger | undefined;
  /** Monotonic milliseconds clock; defaults to performance.now. */
  now?: (() => number) | undefined;
  /** Builds the decode worker pool; tests inject one whose workers misbehave. */
  createDecoder?: ((options: DecodePoolOptions) => DecodePool) | undefined;
  /**
   * Builds the session host; defaults to the child-process host. Tests inject
   * `createInProcessHost(factory)` to run a fake or failing SessionFactory in-process.
   */
  createHost?: ((options: SessionHostOptions) => SessionHost) | undefined;
  /**
   * Called once if a started engine fails for good (no worker could start within
   * workerMaxDownMs): the service should exit so that its orchestrator replaces it.
   */
  onFatal?: ((error: EngineError) => void) | undefined;
  /** Spans for the pipeline's own stages; only when tracing is on (the workers start their own). */
  tracer?: Tracer | undefined;
}

export interface LiveStreamRequest {
  /** What errors and logs call the stream. */
  name: string;
  windowMs: number;
  strideMs: number;
  source: LiveSource;
  /** Each window waits for an ack before the worker reads on (LiveInit.paced). */
  paced: boolean;
  /** The stream's own temp folder, for its windows' frames files. */
  dir: string;
  /** Extra environment of the stream's worker (a pulled source's proxy). */
  env?: Record<string, string> | undefined;
}

export interface EngineStats {
  /** Whether every pool can take work now; false while a pool has no worker that can start. */
  accepting: boolean;
  /** By pool name, e.g. `inference`. */
  pools: Record<string, WorkerPoolStats>;
}

export interface Engine {
  readonly manifest: Manifest;
  readonly config: EngineConfig;
  /** Where the session runs (execution provider) and how videos are decoded. */
  readonly info: { model: { name: string; version: string; dir: string; precision: Precision; precisions: Precision[] }; session: SessionInfo; decode: DecoderInfo };
  /** Classifies one video file with knobs from validateKnobs. */
  classify(file: string, knobs: Knobs, options?: ClassifyOptions): Promise<ClassifyResult>;
  /** A window's frames (a live stream's) through the model: the same batcher and worker as files. */
  classifyFrames: ClassifyFrames;
  /**
   * Starts decoding a live stream in a worker of its own: write its bytes to `input`; each window
   * whose frames are decoded comes to `handlers.window` (its frames file in `stream.dir`).
   */
  openStream(stream: LiveStreamRequest, handlers: LiveHandlers): LiveProcess;
  /** Checks knobs against the model's ranges (BAD_KNOB naming every problem); what passes is a `Knobs`. */
  validateKnobs(knobs: KnobInput): Knobs;
  /** Worker health and counters of both pools (inference, decode), read by readiness and at each
   * metrics scrape. */
  stats(): EngineStats;
  /** Refuses new work, fails queued requests with ENGINE_CLOSED and stops the worker. */
  close(): Promise<void>;
}

export async function createEngine(options: EngineOptions): Promise<Engine> {
  const config = engineConfig(options.config);
  const logger = options.logger ?? pino({ level: 'silent' });
  const now = options.now ?? (() => performance.now());
  const model = await loadModel(options.modelDir, config.precision);
  const { manifest } = model;
  const threads = threadPlan(config, os.availableParallelism());
  const decoder = (options.createDecoder ?? createDecodePool)({
    workers: config.decodeWorkers,
    init: { threads: threads.decodeThreads, hwaccel: config.decodeHwaccel },
    timeoutMs: config.decodeTimeoutMs,
    maxVideosPerWorker: config.decodeWorkerMaxVideos,
    supervision: config,
    logger,
    now,
    onFatal: options.onFatal,
  });
  const host = (options.createHost ?? createSessionHost)({
    init: inferenceInit({ ...config, intraOpNumThreads: threads.intraOpNumThreads }, model.modelPath, manifest.input, { keep_ratio: manifest.knobs.keep_ratio.default, halt_threshold: manifest.knobs.halt_threshold.default }),
    timeoutMs: config.inferenceTimeoutMs,
    supervision: config,
    logger,
    now,
    onFatal: options.onFatal,
  });
  let session: SessionInfo;
  let decode: DecoderInfo;
  try {
    [session, decode] = await Promise.all([host.ready(), decoder.ready()]);
  } catch (err) {
    await Promise.all([host.close(), decoder.close()]);
    throw err;
  }
  const validateKnobs = createKnobValidator(manifest);
  const streamBatch = streamBatchSize(config.streamBatchMaxSize, session.warmupMs);
  if (config.streamBatchMaxSize === 0) logger.info({ streamBatchMaxSize: streamBatch, warmupMs: Math.round(session.warmupMs) }, 'live stream batch size chosen from the model\'s warm-up run');
  const { classify, classifyFrames } = createPipeline({ model, config, decoder, host, now, logger, tracer: options.tracer, streamBatchSize: streamBatch });
  const { frames, size, resize_short_side: resizeShortSide, scale_flags: scaleFlags } = manifest.input;
  return {
    manifest,
    config,
    info: { model: { name: manifest.name, version: manifest.version, dir: model.dir, precision: model.precision, precisions: model.precisions }, session, decode },
    classify,
    classifyFrames,
    // One decoder thread per stream: streams run side by side, each in its own process.
    openStream: ({ env, ...stream }, handlers) =>
      startLiveProcess({ ...stream, frames, size, resizeShortSide, scaleFlags, maxPixels: config.maxPixels, threads: 1 }, handlers, { logger, nice: config.streamDecoderNice, env }),
    validateKnobs,
    stats: () => ({
      accepting: host.accepting() && decoder.accepting(),
      // Built when read (a scrape): the service's readiness checks, several per request, read only `accepting`.
      get pools() {
        return { inference: host.stats(), decode: decoder.stats() };
      },
    }),
    close: async () => {
      await Promise.all([host.close(), decoder.close()]);
    },
  };
}
