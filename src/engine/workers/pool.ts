/**
 * A pool of long-lived worker processes of one kind (inference, decode), each running one job at
 * a time: forks them (fork.ts), talks the worker protocol (protocol.ts), keeps the job table
 * and kills. Processes rather than threads because a native call that hangs or crashes (a decoder,
 * ONNX Runtime) can only be stopped by killing its process, and that must fail one job, not the
 * service (docs/decisions.md, "Worker supervision").
 *
 * - Jobs wait in one FIFO queue and go to the first ready, idle worker.
 * - A worker that dies fails only the job it was running (`errors.crashed`) and is replaced when
 *   its slot's supervisor (supervisor.ts) says: at once if it had been ready, after a doubling
 *   backoff if it died while starting. While no slot can start a worker, queued and new jobs fail
 *   at once (`errors.unavailable`) rather than wait an unknown time.
 * - `jobTimeout` kills a worker whose job runs past it; the job fails with the given error.
 * - A caller's abort drops a queued job; a running one is killed with its worker (`kill`: decoding
 *   costs seconds, a restart 0.1 s) or left to finish with its result dropped (`finish`: an
 *   inference run is short, a restart reloads the model).
 * - `maxJobsPerWorker` retires a worker after that many jobs: it finishes and exits, and a fresh one
 *   takes its slot at once, so whatever a native library keeps between jobs (the decode workers'
 *   malloc heap crept with every video; docs/decisions.md, "Decode worker memory") is bounded.
 * - A worker that cannot initialise at all (init-failed) fails the pool for good, and so does a
 *   pool whose every slot went `maxDownMs` without a ready worker; `onFatal` hears of it if the
 *   pool had been ready, so that the service exits and is replaced.
 */
import type { Logger } from 'pino';
import { EngineError } from '../../errors.js';
import type { EngineConfig } from '../config.js';
import { forkWorker, type ChildProcess } from './fork.js';
import { deserializeError, type FromWorker, type ToWorker } from './protocol.js';
import { createSupervisor, type Supervisor, type WorkerState } from './supervisor.js';

/** What to fork: the compiled worker, or the TypeScript source through tsx in development (entry.ts). */
export interface WorkerEntry {
  file: string;
  execArgv: string[];
}

/** The restart policy and start limit, shared by every pool: a slice of the engine's config. */
export type WorkerSupervision = Pick<EngineConfig, 'workerStartTimeoutMs' | 'workerRestartBackoffMs' | 'workerRestartBackoffMaxMs' | 'workerMaxDownMs'>;

/** What every pool of the engine is built with, besides its own settings. */
export interface PoolDeps {
  supervision: WorkerSupervision;
  logger: Logger;
  /** Milliseconds, monotonic (queue timings, supervision). */
  now: () => number;
  /** Called once when the pool fails for good after having started: the caller should stop serving. */
  onFatal?: ((error: EngineError) => void) | undefined;
  /** The worker to fork; tests give a fake. */
  entry?: WorkerEntry | undefined;
}

export interface WorkerFailure {
  /** "exit code N, signal S" */
  why: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines the worker wrote. */
  stderr: string;
}

export interface WorkerPoolOptions<Init, Job> {
  /** What logs and errors call these workers: `inference`, `decode`. */
  kind: string;
  entry: WorkerEntry;
  size: number;
  /** Sent to every worker as it starts. */
  init: Init;
  supervision: WorkerSupervision;
  onAbortRunning: 'kill' | 'finish';
  /** Jobs after which a worker is retired and replaced; 0 or absent: never. */
  maxJobsPerWorker?: number | undefined;
  jobTimeout?: { ms: number; error: (job: Job) => EngineError } | undefined;
  errors: {
    crashed: (job: Job, failure: WorkerFailure) => EngineError;
    /** No slot can start a worker now; `failuresInRow` is the fewest failed starts in a row of any slot. */
    unavailable: (failuresInRow: number, lastExit: string) => EngineError;
    gaveUp: (downMs: number, failure: WorkerFailure | undefined) => EngineError;
  };
  /** The first worker's info, once (the pool's ready()); a log line for it is the caller's. */
  logger: Logger;
  /** Milliseconds, monotonic. */
  now: () => number;
  onFatal?: ((error: EngineError) => void) | undefined;
}

export interface JobResult<Output> {
  result: Output;
  /** Waiting for a worker, and from sending to the answer (IPC included), in seconds. */
  waitedS: number;
  ranS: number;
}

export interface WorkerPoolStats {
  state: WorkerState;
  /** Worker processes, ready or starting. */
  workers: number;
  /** Workers ready to serve. */
  alive: number;
  busy: number;
  queued: number;
  /** Ready workers that died and were replaced. */
  restarts: number;
  /** Workers replaced on purpose after maxJobsPerWorker jobs. */
  retired: number;
  /** Workers that died or were killed before they were ready. */
  failedStarts: number;
  /** The fewest failed starts in a row of any slot (0 once a slot has a ready worker). */
  failuresInRow: number;
  pids: number[];
}

/**
 * What a pipeline stage sees of its pool (decode/pool.ts, inference/host.ts): the same calls,
 * with the stage's own info and result shapes.
 */
export interface StagePool<Info, Job, Result> {
  /** Resolves with what the first ready worker said; rejects if the pool fails before one is ready. */
  ready(): Promise<Info>;
  /** `trace`: the parent span of each item of the job, as traceparents (protocol.ts). */
  run(job: Job, signal?: AbortSignal, trace?: readonly (string | undefined)[]): Promise<Result>;
  /** Readiness: false while no worker can start (or after a fatal failure or close). */
  accepting(): boolean;
  stats(): WorkerPoolStats;
  close(): Promise<void>;
}

export interface WorkerPool<Info, Job, Output> {
  /** Resolves with the first ready worker's info; rejects if the pool fails before one is ready. */
  ready(): Promise<Info>;
  run(job: Job, signal?: AbortSignal, trace?: readonly (string | undefined)[]): Promise<JobResult<Output>>;
  /** Readiness: false while no slot can take a job because starts keep failing, after a fatal failure or close. */
  accepting(): boolean;
  stats(): WorkerPoolStats;
  /** Refuses new jobs, fails queued ones with ENGINE_CLOSED and stops every worker. */
  close(): Promise<void>;
}

interface Entry<Job, Output> {
  id: number;
  job: Job;
  trace: readonly (string | undefined)[] | undefined;
  enqueuedAt: number;
  sentAt: number;
  resolve: (r: JobResult<Output>) => void;
  reject: (e: unknown) => void;
  settled: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Worker<Job, Output> {
  proc: ChildProcess;
  ready: boolean;
  running: Entry<Job, Output> | undefined;
  jobs: number;
  jobTimer: NodeJS.Timeout | undefined;
  /** Why the pool killed (or retired) it, so that its exit is not reported as a crash. */
  killedFor: 'timeout' | 'abort' | 'start-timeout' | 'retired' | undefined;
  stderr: string;
}

/** One place in the pool: its restart policy, and the worker filling it now (if any). */
interface Slot<Job, Output> {
  supervisor: Supervisor;
  worker: Worker<Job, Output> | undefined;
  lastFailure: WorkerFailure | undefined;
}

const STDERR_KEEP = 4096;
const CLOSE_KILL_MS = 5000;

const closedError = (): EngineError => new EngineError('ENGINE_CLOSED', 'the engine is shutting down');
const tail = (text: string): string => text.trim().split('\n').slice(-5).join('\n');

export function createWorkerPool<Init, Info, Job, Output>(options: WorkerPoolOptions<Init, Job>): WorkerPool<Info, Job, Output> {
  const { kind, logger, now, supervision } = options;
  const slots: Array<Slot<Job, Output>> = [];
  const queue: Array<Entry<Job, Output>> = [];
  const workers = (): Array<Worker<Job, Output>> => slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
  let info: Info | undefined;
  let fatal: EngineError | undefined;
  let closed = false;
  let nextId = 1;
  let retired = 0;
  /** Retired workers until they have exited: close() waits for them too. */
  const leaving = new Set<Promise<void>>();
  let lastExit = '';
  let readyWaiters: Array<{ resolve: (i: Info) => void; reject: (e: unknown) => void }> = [];

  const settle = (entry: Entry<Job, Output>, error: unknown, result?: JobResult<Output>): void => {
    if (entry.settled) return;
    entry.settled = true;
    if (entry.onAbort) entry.signal?.removeEventListener('abort', entry.onAbort);
    if (error === undefined) entry.resolve(result as JobResult<Output>);
    else entry.reject(error);
  };

  const accepting = (): boolean => !closed && !fatal && slots.some((slot) => slot.supervisor.accepting());
  const fewestFailuresInRow = (): number => Math.min(...slots.map((s) => s.supervisor.stats().failuresInRow));
  const unavailable = (): EngineError => options.errors.unavailable(fewestFailuresInRow(), lastExit);

  const pump = (): void => {
    for (const w of workers()) {
      if (queue.length === 0) return;
      // A worker the pool has killed may still deliver a message it sent before it died: it takes no more jobs.
      if (!w.ready || w.running || w.killedFor) continue;
      const entry = queue.shift() as Entry<Job, Output>;
      entry.sentAt = now();
      w.running = entry;
      const timeout = options.jobTimeout;
      if (timeout) {
        w.jobTimer = setTimeout(() => {
          w.killedFor = 'timeout';
          settle(entry, timeout.error(entry.job));
          w.proc.kill('SIGKILL');
        }, timeout.ms);
      }
      w.proc.send({ type: 'job', id: entry.id, job: entry.job, trace: entry.trace } satisfies ToWorker<Init, Job>);
    }
  };

  /** Fails the pool for good: nothing more starts, every waiter hears `error`. */
  const fail = (error: EngineError): void => {
    if (fatal || closed) return;
    const started = info !== undefined;
    fatal = error;
    for (const slot of slots) slot.supervisor.stop();
    for (const w of readyWaiters) w.reject(error);
    readyWaiters = [];
    for (const entry of queue.splice(0)) settle(entry, error);
    for (const w of workers()) {
      if (w.running) settle(w.running, error);
      w.proc.kill('SIGKILL');
    }
    // Before the first ready worker, ready() carries the error to whoever is starting the engine.
    if (started) options.onFatal?.(error);
  };

  const start = (slot: Slot<Job, Output>): void => {
    if (closed || fatal) return;
    const proc = forkWorker(options.entry, { stdin: false });
    const w: Worker<Job, Output> = { proc, ready: false, running: undefined, jobs: 0, jobTimer: undefined, killedFor: undefined, stderr: '' };
    slot.worker = w;
    const keep = (chunk: Buffer): void => {
      w.stderr = (w.stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const startTimer = setTimeout(() => {
      logger.error({ timeoutMs: supervision.workerStartTimeoutMs, pid: proc.pid }, `${kind} worker did not become ready in time; killing it`);
      w.killedFor = 'start-timeout';
      proc.kill('SIGKILL');
    }, supervision.workerStartTimeoutMs);
    // A send to a worker that has just died fails with EPIPE; its job is failed by the exit handler.
    proc.on('error', (err) => logger.warn({ err: err.message, pid: proc.pid }, `${kind} worker channel error`));

    proc.on('message', (message: FromWorker<Info, Output>) => {
      if (w.killedFor && message.type !== 'log') return; // sent before the kill; its job is already answered
      switch (message.type) {
        case 'ready':
          clearTimeout(startTimer);
          w.ready = true;
          slot.supervisor.ready();
          if (info === undefined) {
            info = message.info;
            for (const r of readyWaiters) r.resolve(message.info);
            readyWaiters = [];
          }
          pump();
          break;
        case 'init-failed':
          // What cannot initialise once will not the next time either: no restart.
          clearTimeout(startTimer);
          fail(deserializeError(message.error));
          break;
        case 'result':
        case 'error': {
          const entry = w.running;
          clearTimeout(w.jobTimer);
          w.running = undefined;
          if (entry && entry.id === message.id) {
            if (message.type === 'result') settle(entry, undefined, { result: message.result, waitedS: (entry.sentAt - entry.enqueuedAt) / 1000, ranS: (now() - entry.sentAt) / 1000 });
            else settle(entry, deserializeError(message.error));
          }
          w.jobs += 1;
          if (options.maxJobsPerWorker && w.jobs >= options.maxJobsPerWorker) retire(slot, w);
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
      clearTimeout(w.jobTimer);
      if (slot.worker === w) slot.worker = undefined;
      const failure: WorkerFailure = { why: `exit code ${code ?? 'none'}, signal ${signal ?? 'none'}`, code, signal, stderr: tail(w.stderr) };
      const { running, killedFor } = w;
      if (running) settle(running, closed ? closedError() : fatal ?? options.errors.crashed(running.job, failure));
      if (killedFor === 'retired' && (code !== 0 || signal !== null)) logger.warn({ code, signal, stderr: failure.stderr }, `a retired ${kind} worker did not exit cleanly`);
      if (closed || fatal || killedFor === 'retired') return;
      const retryInMs = slot.supervisor.exited();
      if (retryInMs < 0) return; // the slot gave up
      if (killedFor === 'timeout' || killedFor === 'abort') return; // a healthy worker, killed on purpose, replaced at once
      lastExit = failure.why;
      slot.lastFailure = failure;
      if (w.ready) {
        logger.error({ code, signal, stderr: failure.stderr }, `${kind} worker crashed; starting a new one`);
        return;
      }
      const { failuresInRow } = slot.supervisor.stats();
      logger.error({ code, signal, killedFor, failuresInRow, retryInMs, stderr: failure.stderr }, `${kind} worker died while starting; retrying after a backoff`);
      // No worker can take jobs now: the queued ones fail fast instead of waiting out the backoff.
      if (!accepting()) {
        const down = unavailable();
        for (const entry of queue.splice(0)) settle(entry, down);
      }
    });

    proc.send({ type: 'init', init: options.init } satisfies ToWorker<Init, Job>);
  };

  /**
   * An idle worker past maxJobsPerWorker leaves its slot to a fresh one, started now (jobs wait for
   * it as for any start: ~0.2 s once per maxJobsPerWorker jobs), and exits once told to close. One
   * slot at a time: while another slot has no ready worker this one serves on and tries again after
   * its next job, so that workers that reach the limit together are not all starting at once.
   */
  const retire = (slot: Slot<Job, Output>, w: Worker<Job, Output>): void => {
    if (closed || fatal || slot.worker !== w) return;
    if (!slots.every((other) => other === slot || other.worker?.ready === true)) return;
    w.killedFor = 'retired';
    retired += 1;
    logger.info({ pid: w.proc.pid, jobs: w.jobs }, `${kind} worker retired after its job limit; a fresh one takes its place`);
    slot.worker = undefined;
    const gone = stopWorker(w);
    leaving.add(gone);
    void gone.then(() => leaving.delete(gone));
    slot.supervisor.replacing();
    start(slot);
  };

  /** A slot that had no ready worker for maxDownMs starts nothing more; the last one fails the pool. */
  const giveUp = (slot: Slot<Job, Output>, downMs: number): void => {
    slot.worker?.proc.kill('SIGKILL'); // a start still hanging
    logger.error({ downMs, failuresInRow: slot.supervisor.stats().failuresInRow }, `no ${kind} worker could start in this slot within the limit; giving up on it`);
    if (slots.some((other) => other.supervisor.state() !== 'stopped')) return;
    const error = options.errors.gaveUp(downMs, slot.lastFailure);
    logger.fatal({ err: error }, `no ${kind} worker could start within the limit; giving up`);
    fail(error);
  };

  for (let i = 0; i < options.size; i++) {
    const slot: Slot<Job, Output> = {
      worker: undefined,
      lastFailure: undefined,
      supervisor: createSupervisor({
        start: () => start(slot),
        backoff: { initialMs: supervision.workerRestartBackoffMs, maxMs: supervision.workerRestartBackoffMaxMs },
        maxDownMs: supervision.workerMaxDownMs,
        onGiveUp: (downMs) => giveUp(slot, downMs),
        now,
      }),
    };
    slots.push(slot);
  }
  for (const slot of slots) slot.supervisor.launch();

  const stopWorker = (w: Worker<Job, Output>): Promise<void> =>
    new Promise((resolve) => {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
      const kill = setTimeout(() => w.proc.kill('SIGKILL'), CLOSE_KILL_MS);
      w.proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      // A worker that may be killed mid-job is; one whose job should finish is asked to close after it.
      if (w.proc.connected && !(w.running && options.onAbortRunning === 'kill')) w.proc.send({ type: 'close' } satisfies ToWorker<Init, Job>);
      else w.proc.kill('SIGKILL');
    });

  return {
    ready() {
      if (fatal) return Promise.reject(fatal);
      if (info !== undefined) return Promise.resolve(info);
      return new Promise((resolve, reject) => readyWaiters.push({ resolve, reject }));
    },

    run(job, signal, trace) {
      if (closed) return Promise.reject(closedError());
      if (fatal) return Promise.reject(fatal);
      if (!accepting()) return Promise.reject(unavailable());
      if (signal?.aborted) return Promise.reject(new EngineError('ABORTED', 'the request was cancelled'));
      return new Promise<JobResult<Output>>((resolve, reject) => {
        const entry: Entry<Job, Output> = { id: nextId++, job, trace, enqueuedAt: now(), sentAt: 0, resolve, reject, settled: false, signal, onAbort: undefined };
        if (signal) {
          entry.onAbort = () => {
            const at = queue.indexOf(entry);
            if (at >= 0) queue.splice(at, 1);
            settle(entry, new EngineError('ABORTED', 'the request was cancelled'));
            if (options.onAbortRunning !== 'kill') return;
            for (const w of workers()) {
              if (w.running !== entry) continue;
              w.killedFor = 'abort';
              w.proc.kill('SIGKILL');
            }
          };
          signal.addEventListener('abort', entry.onAbort, { once: true });
        }
        queue.push(entry);
        pump();
      });
    },

    accepting,

    stats() {
      const all = workers();
      const alive = all.filter((w) => w.ready).length;
      const state: WorkerState = closed || fatal ? 'stopped' : !accepting() ? 'down' : alive > 0 ? 'up' : info === undefined ? 'starting' : 'restarting';
      const counts = slots.map((slot) => slot.supervisor.stats());
      const sum = (key: 'restarts' | 'failedStarts'): number => counts.reduce((total, c) => total + c[key], 0);
      return {
        state,
        workers: all.length,
        alive,
        busy: all.filter((w) => w.running).length,
        queued: queue.length,
        restarts: sum('restarts'),
        retired,
        failedStarts: sum('failedStarts'),
        failuresInRow: fewestFailuresInRow(),
        pids: all.flatMap((w) => (w.proc.pid === undefined ? [] : [w.proc.pid])),
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const r of readyWaiters) r.reject(closedError());
      readyWaiters = [];
      for (const entry of queue.splice(0)) settle(entry, closedError());
      for (const slot of slots) slot.supervisor.stop();
      await Promise.all([...workers().map(stopWorker), ...leaving]);
    },
  };
}
