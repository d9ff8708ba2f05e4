/**
 * Inference in a child process (worker.ts), through the worker pool (../workers/pool.ts) with one
 * slot: onnxruntime-node's run() blocks the thread that calls it, and a native crash in ONNX
 * Runtime (a segfault or abort, which in a worker_thread would take the whole process down) then
 * fails only the request in flight. Why a process and not a worker_thread: docs/decisions.md.
 *
 * A run whose caller aborts is answered at once and left to finish (its result is dropped): a run
 * takes milliseconds, a restart reloads the model.
 */
import { EngineError } from '../../errors.js';
import type { EngineConfig } from '../config.js';
import { workerEntry } from '../workers/entry.js';
import { createWorkerPool, type PoolDeps, type WorkerPoolStats } from '../workers/pool.js';
import type { PlainTensor, ValueSpec } from './ort-session.js';

/** What the worker is told at start: the model, where to run it, and the warm-up run's scalars. */
export interface InferenceInit {
  modelPath: string;
  executionProviders: string[];
  /** 0: ONNX Runtime decides. */
  intraOpNumThreads: number;
  interOpNumThreads: number;
  /** Values for scalar float inputs during the warm-up run (the knob defaults). */
  warmupScalars: Record<string, number>;
}

export interface SessionInfo {
  executionProvider: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  warmupMs: number;
}

export type InferenceJob = Record<string, PlainTensor>;
export type InferenceOutput = Record<string, PlainTensor>;

export interface SessionHostOptions extends PoolDeps {
  init: InferenceInit;
}

export interface RunResult {
  outputs: InferenceOutput;
  /** Waiting for the worker, in seconds. */
  queueS: number;
  /** From sending to the answer (IPC included), in seconds. */
  inferS: number;
}

export interface SessionHost {
  /** Resolves when the worker has loaded the model and run its warm-up. */
  ready(): Promise<SessionInfo>;
  run(feeds: InferenceJob, signal?: AbortSignal): Promise<RunResult>;
  /** Whether work is accepted now: false while no worker can start (WORKER_UNAVAILABLE) or after close. */
  accepting(): boolean;
  stats(): WorkerPoolStats;
  close(): Promise<void>;
}

/** The slice of the engine config the host is built from. */
export function inferenceInit(config: Pick<EngineConfig, 'executionProviders' | 'intraOpNumThreads' | 'interOpNumThreads'>, modelPath: string, warmupScalars: Record<string, number>): InferenceInit {
  return { modelPath, executionProviders: config.executionProviders, intraOpNumThreads: config.intraOpNumThreads, interOpNumThreads: config.interOpNumThreads, warmupScalars };
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
    (info) => logger.info({ executionProvider: info.executionProvider, warmupMs: Math.round(info.warmupMs) }, 'inference worker ready'),
    () => undefined, // the engine's start reports it
  );
  return {
    ready: () => pool.ready(),
    async run(feeds, signal) {
      const { result, waitedS, ranS } = await pool.run(feeds, signal);
      return { outputs: result, queueS: waitedS, inferS: ranS };
    },
    accepting: () => pool.accepting(),
    stats: () => pool.stats(),
    close: () => pool.close(),
  };
}
