/**
 * Keeps the ONNX Runtime session in a child process (session-worker.ts) so inference never blocks
 * the main event loop, and so a native crash in ORT (a segfault or abort, which in a worker_thread
 * would take the whole process down) fails only the request in flight. The host queues requests,
 * sends one at a time, and replaces a child that dies, as supervisor.ts decides: at once after a
 * crash, with backoff after failed starts, for ever or until `maxDownMs` without a worker. Why a
 * process and not a worker_thread: docs/decisions.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { EngineError } from '../errors.js';
import type { PlainTensor, ValueSpec } from './ort-session.js';
import type { FromWorker, SerializedError, ToWorker } from './session-protocol.js';
import { createSupervisor, type SupervisorStats } from './supervisor.js';

/** What to fork: the compiled worker, or the TypeScript source through tsx in development. */
export interface WorkerEntry {
  file: string;
  execArgv: string[];
}

export interface SessionHostOptions {
  modelPath: string;
  executionProviders: string[];
  intraOpNumThreads?: number | undefined;
  interOpNumThreads?: number | undefined;
  /** Scalar inputs for the warm-up run, e.g. the knob defaults. */
  warmupScalars: Record<string, number>;
  logger: Logger;
  /** Milliseconds clock for queue timings. */
  now: () => number;
  /** Limit for opening the model and the warm-up run. */
  startTimeoutMs?: number | undefined;
  /** First delay before starting again after a child died while starting; doubles per failure in a row. */
  restartBackoffMs?: number | undefined;
  restartBackoffMaxMs?: number | undefined;
  /** Longest time without a ready child before the host fails for good (WORKER_UNAVAILABLE); 0 = never. */
  maxDownMs?: number | undefined;
  /** Called once when the host fails for good after having started: the caller should stop serving. */
  onFatal?: ((error: EngineError) => void) | undefined;
  entry?: WorkerEntry | undefined;
}

export interface HostStats extends SupervisorStats {
  queued: number;
  inFlight: number;
  /** The child's pid, absent between children. */
  pid: number | undefined;
}

export interface SessionInfo {
  executionProvider: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  warmupMs: number;
}

export interface RunResult {
  outputs: Record<string, PlainTensor>;
  /** Waiting for the child, in seconds. */
  queueS: number;
  /** From sending to the answer (IPC included), in seconds. */
  inferS: number;
}

export interface SessionHost {
  /** Resolves when the first child has loaded the model and run its warm-up. */
  ready(): Promise<SessionInfo>;
  run(feeds: Record<string, PlainTensor>, signal?: AbortSignal): Promise<RunResult>;
  /** Whether work is accepted now: false while no child can start (WORKER_UNAVAILABLE) or after close. */
  accepting(): boolean;
  stats(): HostStats;
  close(): Promise<void>;
}

interface Job {
  id: number;
  feeds: Record<string, PlainTensor>;
  enqueuedAt: number;
  sentAt: number;
  resolve: (r: RunResult) => void;
  reject: (e: unknown) => void;
  settled: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const STDERR_KEEP = 4096;

export function createSessionHost(options: SessionHostOptions): SessionHost {
  const { logger, now } = options;
  const entry = options.entry ?? defaultWorkerEntry();
  const queue: Job[] = [];
  const inFlight = new Map<number, Job>();
  let child: ChildProcess | undefined;
  let info: SessionInfo | undefined;
  let fatal: EngineError | undefined;
  let closed = false;
  let nextId = 1;
  let stderrTail = '';
  let lastExit = '';
  let everReady = false;
  let readyWaiters: Array<{ resolve: (i: SessionInfo) => void; reject: (e: unknown) => void }> = [];
  let startTimer: NodeJS.Timeout | undefined;

  const settle = (job: Job, error: unknown, result?: RunResult): void => {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (error === undefined) job.resolve(result as RunResult);
    else job.reject(error);
  };

  const failEverything = (error: EngineError): void => {
    fatal = error;
    supervisor.stop();
    for (const w of readyWaiters) w.reject(error);
    readyWaiters = [];
    for (const job of queue.splice(0)) settle(job, error);
    for (const job of inFlight.values()) settle(job, error);
    inFlight.clear();
    child?.kill('SIGKILL');
    // Before the first ready child, ready() carries the error to whoever is starting the engine.
    if (everReady) options.onFatal?.(error);
  };

  const unavailable = (): EngineError => {
    const { failuresInRow } = supervisor.stats();
    return new EngineError('WORKER_UNAVAILABLE', `no inference worker is running: ${failuresInRow} start(s) in a row failed (${lastExit}); retrying`, { failuresInRow });
  };

  const pump = (): void => {
    while (child && info && inFlight.size === 0 && queue.length > 0) {
      const job = queue.shift() as Job;
      job.sentAt = now();
      inFlight.set(job.id, job);
      child.send({ type: 'run', id: job.id, feeds: job.feeds } satisfies ToWorker);
    }
  };

  const start = (): void => {
    if (closed || fatal) return;
    info = undefined;
    stderrTail = '';
    const proc = fork(entry.file, [], { execArgv: entry.execArgv, serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    child = proc;
    const keep = (chunk: Buffer): void => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_KEEP);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    startTimer = setTimeout(() => {
      logger.error({ timeoutMs: options.startTimeoutMs }, 'inference worker did not become ready in time; killing it');
      proc.kill('SIGKILL');
    }, options.startTimeoutMs ?? 120_000);

    // A send to a child that has just died fails with EPIPE; its jobs are failed by the exit handler.
    proc.on('error', (err) => logger.warn({ err: err.message, pid: proc.pid }, 'inference worker channel error'));

    proc.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'ready':
          clearTimeout(startTimer);
          supervisor.ready();
          everReady = true;
          info = { executionProvider: message.executionProvider, inputs: message.inputs, outputs: message.outputs, warmupMs: message.warmupMs };
          logger.info({ pid: proc.pid, executionProvider: info.executionProvider, warmupMs: Math.round(message.warmupMs) }, 'inference worker ready');
          for (const w of readyWaiters) w.resolve(info);
          readyWaiters = [];
          pump();
          break;
        case 'init-failed':
          // Opening the model fails the same way every time: no restart.
          clearTimeout(startTimer);
          failEverything(deserialize(message.error));
          break;
        case 'result':
        case 'error': {
          const job = inFlight.get(message.id);
          inFlight.delete(message.id);
          if (job) {
            const queueS = (job.sentAt - job.enqueuedAt) / 1000;
            if (message.type === 'result') settle(job, undefined, { outputs: message.outputs, queueS, inferS: (now() - job.sentAt) / 1000 });
            else settle(job, deserialize(message.error));
          }
          pump();
          break;
        }
        case 'log':
          logger[message.level]({ ...message.obj, worker: proc.pid }, message.msg);
          break;
      }
    });

    proc.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      if (child === proc) child = undefined;
      if (closed || fatal) return;
      const wasReady = info !== undefined;
      info = undefined;
      const why = `exit code ${code ?? 'none'}, signal ${signal ?? 'none'}`;
      lastExit = why;
      const crashed = new EngineError('WORKER_CRASHED', `the inference worker died (${why}) while running this request`, {
        code,
        signal,
        stderr: stderrTail.trim().split('\n').slice(-5).join('\n'),
      });
      for (const job of inFlight.values()) settle(job, crashed);
      inFlight.clear();
      const retryInMs = supervisor.exited();
      if (wasReady) {
        logger.error({ code, signal, stderr: crashed.details?.stderr }, 'inference worker crashed; starting a new one');
        return;
      }
      // No child can run until a start succeeds: waiting requests get a truthful 503 now rather
      // than wait an unknown time.
      const down = unavailable();
      for (const job of queue.splice(0)) settle(job, down);
      logger.error({ code, signal, ...supervisor.stats(), retryInMs, stderr: crashed.details?.stderr }, 'inference worker died while starting; retrying after a backoff');
    });

    proc.send({
      type: 'init',
      modelPath: options.modelPath,
      executionProviders: options.executionProviders,
      intraOpNumThreads: options.intraOpNumThreads,
      interOpNumThreads: options.interOpNumThreads,
      warmupScalars: options.warmupScalars,
    } satisfies ToWorker);
  };

  const supervisor = createSupervisor({
    start,
    backoff: { initialMs: options.restartBackoffMs ?? 500, maxMs: options.restartBackoffMaxMs ?? 30_000 },
    maxDownMs: options.maxDownMs ?? 60_000,
    now,
    onGiveUp: (downMs) => {
      const error = new EngineError('WORKER_UNAVAILABLE', `no inference worker could start for ${downMs} ms (last: ${lastExit || 'still starting'}); giving up`, {
        downMs,
        stderr: stderrTail.trim().split('\n').slice(-5).join('\n'),
      });
      logger.fatal({ err: error, ...supervisor.stats() }, 'no inference worker could start within the limit; giving up');
      failEverything(error);
    },
  });
  supervisor.launch();

  return {
    ready() {
      if (fatal) return Promise.reject(fatal);
      if (info) return Promise.resolve(info);
      return new Promise((resolve, reject) => readyWaiters.push({ resolve, reject }));
    },

    run(feeds, signal) {
      if (closed) return Promise.reject(new EngineError('ENGINE_CLOSED', 'the engine is shutting down'));
      if (fatal) return Promise.reject(fatal);
      if (!supervisor.accepting()) return Promise.reject(unavailable());
      if (signal?.aborted) return Promise.reject(new EngineError('ABORTED', 'the request was cancelled'));
      return new Promise<RunResult>((resolve, reject) => {
        const job: Job = { id: nextId++, feeds, enqueuedAt: now(), sentAt: 0, resolve, reject, settled: false, signal, onAbort: undefined };
        if (signal) {
          // A queued job leaves the queue; a running one is answered now and its result dropped.
          job.onAbort = () => {
            const at = queue.indexOf(job);
            if (at >= 0) queue.splice(at, 1);
            settle(job, new EngineError('ABORTED', 'the request was cancelled'));
          };
          signal.addEventListener('abort', job.onAbort, { once: true });
        }
        queue.push(job);
        pump();
      });
    },

    accepting: () => !closed && !fatal && supervisor.accepting(),

    stats() {
      return { ...supervisor.stats(), queued: queue.length, inFlight: inFlight.size, pid: child?.pid };
    },

    async close() {
      if (closed) return;
      closed = true;
      supervisor.stop();
      const closing = new EngineError('ENGINE_CLOSED', 'the engine is shutting down');
      for (const w of readyWaiters) w.reject(closing);
      readyWaiters = [];
      for (const job of queue.splice(0)) settle(job, closing);
      clearTimeout(startTimer);
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
        proc.once('exit', () => {
          clearTimeout(kill);
          for (const job of inFlight.values()) settle(job, closing);
          inFlight.clear();
          resolve();
        });
        if (proc.connected) proc.send({ type: 'close' } satisfies ToWorker);
        else proc.kill('SIGKILL');
      });
    },
  };
}

function deserialize(error: SerializedError): EngineError {
  return new EngineError(error.code, error.message, error.details);
}

export function defaultWorkerEntry(): WorkerEntry {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // Running from source (tests, tsx): the child needs tsx's loader to read TypeScript.
    const tsx = createRequire(here).resolve('tsx');
    return { file: fileURLToPath(new URL('./session-worker.ts', here)), execArgv: ['--import', pathToFileURL(tsx).href] };
  }
  return { file: fileURLToPath(new URL('./session-worker.js', here)), execArgv: [] };
}
