/**
 * Inference in a child process (worker.ts), through the worker pool (../workers/pool.ts) with one
 * slot: onnxruntime-node's run() blocks the thread that calls it, and a native crash in ONNX
 * Runtime (a segfault or abort, which in a worker_thread would take the whole process down) then
 * fails only the request in flight. Why a process and not a worker_thread: docs/decisions.md.
 *
 * A run whose caller aborts is answered at once and left to finish (its result is dropped): a run
 * takes milliseconds, a restart reloads the model. A run past the time limit is another matter: it
 * is stuck, and the worker is killed and replaced.
 */
import { readFileSync } from 'node:fs';
import { EngineError } from '../../errors.js';
import type { EngineConfig } from '../config.js';
import { workerEntry } from '../workers/entry.js';
import { createWorkerPool, type PoolDeps, type StagePool } from '../workers/pool.js';
import type { Preprocessor, VideoInputSpec } from '../preprocess.js';
import type { PlainTensor, ValueSpec } from './ort-session.js';

/** What the worker is told at start: the model, where to run it, how its input is normalised, and the warm-up run's scalars. */
export interface InferenceInit {
  modelPath: string;
  executionProviders: string[];
  /** 0: ONNX Runtime decides. */
  intraOpNumThreads: number;
  interOpNumThreads: number;
  /** Whether ONNX Runtime's pool threads spin while they wait for work (they burn a core each while idle). */
  spinning: boolean;
  /** The model input's layout and normalisation: the worker turns frames into the `video` tensor. */
  input: VideoInputSpec;
  /** Values for scalar float inputs during the warm-up run (the knob defaults). */
  warmupScalars: Record<string, number>;
}

/**
 * One video's decoded frames as the decode worker produced them: (U, S, S, 3) rgb24, in `rgb` or, when
 * the caller gave the decode worker a scratch file, in `file` (`rgb` then empty); and the frame for
 * each time slot.
 */
export interface VideoFrames {
  rgb: Uint8Array;
  /** The video's span, when traced: the parent of its inference span in the worker (a traceparent). */
  trace?: string | undefined;
  file?: string | undefined;
  slotToFrame: readonly number[];
}

/**
 * One run: the graph's scalar inputs as feeds, and the videos as frames, which the worker
 * normalises into the batch's `video` tensor itself: 301 KB of bytes cross the IPC channel per
 * video instead of the 1.2 MB float tensor, and the main process does no pixel arithmetic. A run
 * with no videos feeds `feeds` as they are (tests, benchmarks).
 */
export interface InferenceJob {
  feeds: Record<string, PlainTensor>;
  videos?: readonly VideoFrames[] | undefined;
}

export interface SessionInfo {
  executionProvider: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  warmupMs: number;
}

export type InferenceOutput = Record<string, PlainTensor>;

export interface SessionHostOptions extends PoolDeps {
  init: InferenceInit;
  /** Wall-clock limit for one run; past it the worker is killed and replaced (INFERENCE_TIMEOUT). */
  timeoutMs: number;
}

export interface RunResult {
  outputs: InferenceOutput;
  /** Waiting for the worker, in seconds. */
  queueS: number;
  /** From sending to the answer (IPC included), in seconds. */
  inferS: number;
}

/** The inference stage's pool of one worker: ready() once the model is loaded and warmed up; run() is one session run. */
export type SessionHost = StagePool<SessionInfo, InferenceJob, RunResult>;

/** The feeds of a run: its scalar feeds, and its videos normalised into the `video` tensor (in whichever process runs the session). */
export function withVideos(job: InferenceJob, preprocessor: Preprocessor): Record<string, PlainTensor> {
  if (!job.videos) return job.feeds;
  const videos = job.videos.map((v) => (v.file ? { rgb: readFrames(v.file), slotToFrame: v.slotToFrame } : v));
  const { data, dims } = preprocessor.batch(videos);
  return { ...job.feeds, video: { dtype: 'float32', dims, data } };
}

/** A decode worker's frames file; gone or unreadable is the run's failure, not a crash. */
function readFrames(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new EngineError('INFERENCE_FAILED', `the decoded frames could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file }, { cause: err });
  }
}

/** The slice of the engine config the host is built from. */
export function inferenceInit(
  config: Pick<EngineConfig, 'executionProviders' | 'intraOpNumThreads' | 'interOpNumThreads' | 'intraOpSpinning'>,
  modelPath: string,
  input: VideoInputSpec,
  warmupScalars: Record<string, number>,
): InferenceInit {
  const { executionProviders, intraOpNumThreads, interOpNumThreads, intraOpSpinning } = config;
  return { modelPath, executionProviders, intraOpNumThreads, interOpNumThreads, spinning: intraOpSpinning, input, warmupScalars };
}

export function createSessionHost(options: SessionHostOptions): SessionHost {
  const { logger } = options;
  const pool = createWorkerPool<InferenceInit, SessionInfo, InferenceJob, InferenceOutput>({
    kind: 'inference',
    entry: options.entry ?? workerEntry(import.meta.url, 'worker'),
    size: 1,
    init: options.init,
    supervision: options.supervision,
    onAbortRunning: 'finish',
    jobTimeout: { ms: options.timeoutMs, error: () => new EngineError('INFERENCE_TIMEOUT', `the model run took longer than ${options.timeoutMs} ms`, { timeoutMs: options.timeoutMs }) },
    errors: {
      crashed: (_job, f) => new EngineError('WORKER_CRASHED', `the inference worker died (${f.why}) while running this request`, { code: f.code, signal: f.signal, stderr: f.stderr }),
      unavailable: (failuresInRow, lastExit) =>
        new EngineError('WORKER_UNAVAILABLE', `no inference worker is running: ${failuresInRow} start(s) in a row failed (${lastExit}); retrying`, { failuresInRow }),
      gaveUp: (downMs, f) =>
        new EngineError('WORKER_UNAVAILABLE', `no inference worker could start for ${downMs} ms (last: ${f?.why ?? 'still starting'}); giving up`, { downMs, stderr: f?.stderr ?? '' }),
    },
    logger,
    now: options.now,
    onFatal: options.onFatal,
  });
  void pool.ready().then(
    (info) => {
      const { intraOpNumThreads, spinning } = options.init;
      logger.info({ executionProvider: info.executionProvider, intraOpNumThreads, spinning, warmupMs: Math.round(info.warmupMs) }, 'inference worker ready');
    },
    () => undefined, // the engine's start reports it
  );
  return {
    ready: () => pool.ready(),
    async run(job, signal, trace) {
      const { result, waitedS, ranS } = await pool.run(job, signal, trace);
      return { outputs: result, queueS: waitedS, inferS: ranS };
    },
    accepting: () => pool.accepting(),
    stats: () => pool.stats(),
    close: () => pool.close(),
  };
}
