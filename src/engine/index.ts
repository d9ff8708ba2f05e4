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
 * `createEngine` resolves only after the model's files are verified, the inference worker has
 * opened the session and a warm-up run has finished: a resolved engine is ready.
 */
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import type { EngineError } from '../errors.js';
import { engineConfig, type EngineConfig, type EngineConfigInput } from './config.js';
import { resolveFfmpegBinaries, type ResolvedBinaries } from './ffmpeg-binaries.js';
import { createFfmpegRunner, type FfmpegRunner } from './ffmpeg-runner.js';
import { createKnobValidator, type Knobs } from './knobs.js';
import { loadModel, type Manifest } from './model.js';
import { createPipeline, type ClassifyOptions, type ClassifyResult } from './pipeline.js';
import { createSessionHost, type SessionHost, type SessionHostOptions, type SessionInfo } from './session-host.js';
import type { WorkerState } from './supervisor.js';

export { EngineError, ERRORS, isEngineError, type ErrorCode } from '../errors.js';
export type { ClassifyOptions, ClassifyResult } from './pipeline.js';
export type { Knobs, KnobInput } from './knobs.js';
export type { Manifest } from './model.js';
export type { Prediction, TokenReport } from './postprocess.js';
export type { EngineConfig, EngineConfigInput } from './config.js';
export type { FfmpegRunner, RunOptions, RunResult } from './ffmpeg-runner.js';
export type { HostStats, SessionHost, SessionHostOptions, SessionInfo } from './session-host.js';
export type { WorkerState } from './supervisor.js';
export type { SessionFactory, EngineSession, PlainTensor, ValueSpec } from './ort-session.js';
export { createInProcessHost } from './session-inprocess.js';

export interface EngineOptions {
  /** Model folder with manifest.json, model.onnx and labels.txt (docs/contracts.md). */
  modelDir: string;
  config?: EngineConfigInput | undefined;
  /** Defaults to a silent logger. */
  logger?: Logger | undefined;
  /** Monotonic milliseconds clock; defaults to performance.now. */
  now?: (() => number) | undefined;
  /** ffmpeg/ffprobe runner; defaults to spawning the resolved binaries. */
  runner?: FfmpegRunner | undefined;
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
}

/** One supervised set of worker processes (today the inference worker), for readiness and metrics. */
export interface WorkerPoolStats {
  state: WorkerState;
  /** Workers ready to serve. */
  alive: number;
  restarts: number;
  failedStarts: number;
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
  /** Where the session runs (execution provider) and ffmpeg comes from. */
  readonly info: { model: { name: string; version: string; dir: string }; session: SessionInfo; ffmpeg: ResolvedBinaries | undefined };
  /** Validates `knobs` (BAD_KNOB on failure) and classifies one video file. */
  classify(file: string, knobs?: unknown, options?: ClassifyOptions): Promise<ClassifyResult>;
  /** Knob validation on its own, e.g. to refuse a request before accepting its upload. */
  validateKnobs(knobs: unknown): Knobs;
  /** Worker health and counters, read by readiness and at each metrics scrape. */
  stats(): EngineStats;
  /** Refuses new work, fails queued requests with ENGINE_CLOSED and stops the worker. */
  close(): Promise<void>;
}

export async function createEngine(options: EngineOptions): Promise<Engine> {
  const config = engineConfig(options.config);
  const logger = options.logger ?? pino({ level: 'silent' });
  const now = options.now ?? (() => performance.now());
  const model = await loadModel(options.modelDir);
  const { manifest } = model;
  let ffmpeg: ResolvedBinaries | undefined;
  let runner = options.runner;
  if (!runner) {
    ffmpeg = resolveFfmpegBinaries({ override: { ffmpeg: config.ffmpegPath, ffprobe: config.ffprobePath } });
    logger.info({ ffmpeg: ffmpeg.ffmpeg, ffprobe: ffmpeg.ffprobe, sources: ffmpeg.sources }, 'ffmpeg resolved');
    runner = createFfmpegRunner(ffmpeg);
  }
  const host = (options.createHost ?? createSessionHost)({
    modelPath: model.modelPath,
    executionProviders: config.executionProviders,
    intraOpNumThreads: config.intraOpNumThreads || undefined,
    interOpNumThreads: config.interOpNumThreads || undefined,
    warmupScalars: { keep_ratio: manifest.knobs.keep_ratio.default, halt_threshold: manifest.knobs.halt_threshold.default },
    logger,
    now,
    startTimeoutMs: config.workerStartTimeoutMs,
    restartBackoffMs: config.workerRestartBackoffMs,
    restartBackoffMaxMs: config.workerRestartBackoffMaxMs,
    maxDownMs: config.workerMaxDownMs,
    onFatal: options.onFatal,
  });
  let session: SessionInfo;
  try {
    session = await host.ready();
  } catch (err) {
    await host.close();
    throw err;
  }
  const validateKnobs = createKnobValidator(manifest);
  const classify = createPipeline({ model, config, runner, host, validateKnobs, now, logger });
  return {
    manifest,
    config,
    info: { model: { name: manifest.name, version: manifest.version, dir: model.dir }, session, ffmpeg },
    classify,
    validateKnobs,
    stats: () => {
      const { state, alive, restarts, failedStarts } = host.stats();
      return { accepting: host.accepting(), pools: { inference: { state, alive, restarts, failedStarts } } };
    },
    close: () => host.close(),
  };
}
