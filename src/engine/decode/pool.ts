/**
 * A small pool of long-lived decode worker processes (worker.ts). Processes, not threads, for the
 * reason the inference worker is one (docs/decisions.md): a decoder stuck or crashing in native code
 * can only be stopped by killing its process, and that must fail one video, not the service.
 *
 * Each worker decodes one video at a time. A video past its wall-clock limit kills its worker
 * (DECODE_TIMEOUT); a worker that dies fails only its own video (DECODER_CRASHED). Either way a new
 * worker is started. When is decided per slot by the restart policy the inference host uses
 * (supervisor.ts): at once after a ready worker dies, with exponential backoff while workers keep
 * dying before they are ready, until a slot has had no ready worker for `maxDownMs`; when no slot
 * is left the pool fails for good (`onFatal`). `accepting()` is the readiness signal, false while
 * no slot can take a video because starts keep failing.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { EngineError } from '../../errors.js';
import { createSupervisor, type Supervisor } from '../supervisor.js';
import type { DecodedVideo, DecodeJob } from './decode-video.js';
import type { FromDecodeWorker, Hwaccel, SerializedError, ToDecodeWorker } from './protocol.js';

export interface DecodePoolOptions {
  workers: number;
  /** Decoder threads in each worker. */
  threads: number;
  hwaccel: Hwaccel;
  /** Wall-clock limit for one video, from the moment a worker takes it. */
  timeoutMs: number;
  logger: Logger;
  /** Limit for a worker to load node-av and say it is ready. */
  startTimeoutMs?: number | undefined;
  /** First and longest delay before restarting a worker that died (doubling in between). */
  backoffMs?: { initial: number; max: number } | undefined;
  /** Longest time without a ready worker, while starts fail, before the pool fails for good; 0 = never. */
  maxDownMs?: number | undefined;
  /** Called once when the pool fails for good after having started: the caller should stop serving. */
  onFatal?: ((error: EngineError) => void) | undefined;
  now?: (() => number) | undefined;
  entry?: WorkerEntry | undefined;
}

/** What to fork: the compiled worker, or the TypeScript source through tsx in development. */
export interface WorkerEntry {
  file: string;
  execArgv: string[];
}

export interface DecoderInfo {
  workers: number;
  threads: number;
  /** Where the first worker decodes: 'cuda' (NVDEC) or 'cpu'. */
  hardware: 'cuda' | 'cpu';
  libav: string;
}

export interface DecodePool {
  /** Resolves when the first worker is ready; rejects if node-av cannot load at all. */
  ready(): Promise<DecoderInfo>;
  decode(job: DecodeJob, signal?: AbortSignal): Promise<DecodedVideo>;
  /** At least one worker is up and can take a video. */
  available(): boolean;
  /** Readiness: false only while no worker is up because starts keep failing (a worker being
   * replaced after its video's timeout does not make the pool unready). */
  accepting(): boolean;
  stats(): DecodePoolStats;
  close(): Promise<void>;
}

export interface DecodePoolStats {
  state: 'starting' | 'up' | 'restarting' | 'down' | 'stopped';
  workers: number;
  /** Workers ready to decode. */
  alive: number;
  busy: number;
  queued: number;
  restarts: number;
  /** Workers that died before they were ready, since the pool started. */
  failedStarts: number;
}

interface Job {
  id: number;
  job: DecodeJob;
  resolve: (r: DecodedVideo) => void;
  reject: (e: unknown) => void;
  settled: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Worker {
  proc: ChildProcess;
  ready: boolean;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Why the pool killed it, so its exit is not reported as a crash. */
  killedFor: 'timeout' | 'abort' | 'start-timeout' | undefined;
  stderr: string;
}

/** One place in the pool: its restart policy, and the worker that fills it now (if any). */
interface Slot {
  supervisor: Supervisor;
  worker: Worker | undefined;
}

const STDERR_KEEP = 4096;

export function createDecodePool(options: DecodePoolOptions): DecodePool {
  const { logger } = options;
  const entry = options.entry ?? defaultDecodeWorkerEntry();
  const backoff = options.backoffMs ?? { initial: 100, max: 30_000 };
  const maxDownMs = options.maxDownMs ?? 0;
  const slots: Slot[] = [];
  const workers = (): Worker[] => slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
  const queue: Job[] = [];
  let info: DecoderInfo | undefined;
  let fatal: EngineError | undefined;
  let closed = false;
  let nextId = 1;
  let readyWaiters: Array<{ resolve: (i: DecoderInfo) => void; reject: (e: unknown) => void }> = [];

  const settle = (job: Job, error: unknown, result?: DecodedVideo): void => {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (error === undefined) job.resolve(result as DecodedVideo);
    else job.reject(error);
  };

  const pump = (): void => {
    for (const w of workers()) {
      if (queue.length === 0) return;
      if (!w.ready || w.job) continue;
      const job = queue.shift() as Job;
      w.job = job;
      w.timer = setTimeout(() => {
        w.killedFor = 'timeout';
        settle(job, new EngineError('DECODE_TIMEOUT', `decoding ${job.job.name} took longer than ${options.timeoutMs} ms`, { timeoutMs: options.timeoutMs }));
        w.proc.kill('SIGKILL');
      }, options.timeoutMs);
      w.proc.send({ type: 'decode', id: job.id, job: job.job } satisfies ToDecodeWorker);
    }
  };

  const start = (slot: Slot): void => {
    if (closed || fatal) return;
    const proc = fork(entry.file, [], { execArgv: entry.execArgv, serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const w: Worker = { proc, ready: false, job: undefined, timer: undefined, killedFor: undefined, stderr: '' };
    slot.worker = w;
    const keep = (chunk: Buffer): void => {
      w.stderr = (w.stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const startTimer = setTimeout(() => {
      w.killedFor = 'start-timeout';
      proc.kill('SIGKILL');
    }, options.startTimeoutMs ?? 30_000);
    // A send to a child that has just died fails with EPIPE; its job is failed by the exit handler.
    proc.on('error', (err) => logger.warn({ err: err.message, pid: proc.pid }, 'decode worker channel error'));

    proc.on('message', (message: FromDecodeWorker) => {
      switch (message.type) {
        case 'ready': {
          clearTimeout(startTimer);
          w.ready = true;
          slot.supervisor.ready();
          if (!info) {
            info = { workers: options.workers, threads: options.threads, hardware: message.hardware, libav: message.libav };
            const level = options.hwaccel === 'cuda' && message.hardware === 'cpu' ? 'warn' : 'info';
            const facts = { hwaccel: options.hwaccel, hardware: message.hardware, reason: message.reason, libav: message.libav, workers: options.workers, threads: options.threads };
            logger[level](facts, message.reason ? `decoding on the CPU: ${message.reason}` : 'decode workers ready');
            for (const r of readyWaiters) r.resolve(info);
            readyWaiters = [];
          }
          pump();
          break;
        }
        case 'init-failed':
          // node-av cannot load or initialise: every new worker would fail the same way.
          clearTimeout(startTimer);
          fail(deserialize(message.error));
          proc.kill('SIGKILL');
          break;
        case 'result':
        case 'error': {
          const job = w.job;
          clearTimeout(w.timer);
          w.job = undefined;
          if (job && job.id === message.id) {
            if (message.type === 'result') settle(job, undefined, message.result);
            else settle(job, deserialize(message.error));
          }
          pump();
          break;
        }
      }
    });

    proc.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      clearTimeout(w.timer);
      if (slot.worker === w) slot.worker = undefined;
      const { job, killedFor } = w;
      const stderr = w.stderr.trim().split('\n').slice(-5).join('\n');
      if (job && closed) settle(job, new EngineError('ENGINE_CLOSED', 'the engine is shutting down'));
      else if (job) {
        const why = `exit code ${code ?? 'none'}, signal ${signal ?? 'none'}`;
        settle(job, new EngineError('DECODER_CRASHED', `the decoder process died while decoding ${job.job.name} (${why}); it has been replaced`, { video: job.job.name, code, signal, stderr }));
      }
      if (closed || fatal) return;
      // A ready worker (one the pool killed for its video's timeout or cancel included) is
      // replaced at once; one that died before it was ready after the backoff.
      const restartInMs = slot.supervisor.exited();
      if (restartInMs < 0) return; // the slot gave up
      if (killedFor === 'timeout' || killedFor === 'abort') return; // a healthy worker, killed on purpose
      const { failuresInRow } = slot.supervisor.stats();
      logger.error({ code, signal, killedFor, failedStarts: failuresInRow, restartInMs, stderr }, 'decode worker died; starting a new one');
      // No worker can take videos now: queued ones fail fast instead of waiting out the backoff.
      if (!accepting()) {
        const down = new EngineError('DECODER_UNAVAILABLE', 'no decode worker is running; retry later', { failedStarts: failuresInRow });
        for (const q of queue.splice(0)) settle(q, down);
      }
    });

    proc.send({ type: 'init', threads: options.threads, hwaccel: options.hwaccel } satisfies ToDecodeWorker);
  };

  const fail = (error: EngineError): void => {
    fatal = error;
    for (const slot of slots) slot.supervisor.stop();
    for (const r of readyWaiters) r.reject(error);
    readyWaiters = [];
    for (const job of queue.splice(0)) settle(job, error);
  };

  const available = (): boolean => workers().some((w) => w.ready);
  const accepting = (): boolean => !closed && !fatal && slots.some((slot) => slot.supervisor.accepting());

  /** A slot that had no ready worker for maxDownMs starts nothing more; the last one fails the pool. */
  const giveUp = (slot: Slot, downMs: number): void => {
    slot.worker?.proc.kill('SIGKILL'); // a start still hanging
    const failedStarts = slot.supervisor.stats().failuresInRow;
    logger.error({ downMs, failedStarts }, 'no decode worker could start in this slot within the limit; giving up on it');
    if (closed || fatal || slots.some((other) => other.supervisor.state() !== 'stopped')) return;
    const error = new EngineError('DECODER_UNAVAILABLE', `no decode worker could start for ${maxDownMs} ms; giving up`, { failedStarts });
    const started = info !== undefined;
    fail(error);
    if (started) options.onFatal?.(error);
  };

  for (let i = 0; i < options.workers; i++) {
    const slot: Slot = {
      worker: undefined,
      supervisor: createSupervisor({
        start: () => start(slot),
        backoff: { initialMs: backoff.initial, maxMs: backoff.max },
        maxDownMs,
        onGiveUp: (downMs) => giveUp(slot, downMs),
        now: options.now ?? (() => performance.now()),
      }),
    };
    slots.push(slot);
  }
  for (const slot of slots) slot.supervisor.launch();

  return {
    ready() {
      if (fatal) return Promise.reject(fatal);
      if (info) return Promise.resolve(info);
      return new Promise((resolve, reject) => readyWaiters.push({ resolve, reject }));
    },

    decode(job, signal) {
      if (closed) return Promise.reject(new EngineError('ENGINE_CLOSED', 'the engine is shutting down'));
      if (fatal) return Promise.reject(fatal);
      if (signal?.aborted) return Promise.reject(new EngineError('ABORTED', 'the request was cancelled'));
      if (!accepting()) {
        return Promise.reject(new EngineError('DECODER_UNAVAILABLE', 'no decode worker is running; retry later', { failedStarts: Math.min(...slots.map((slot) => slot.supervisor.stats().failuresInRow)) }));
      }
      return new Promise<DecodedVideo>((resolve, reject) => {
        const entry: Job = { id: nextId++, job, resolve, reject, settled: false, signal, onAbort: undefined };
        if (signal) {
          // Queued: leaves the queue. Running: its worker is killed, so no CPU goes on a video
          // nobody waits for (a restart costs ~0.1 s of CPU; a long decode costs seconds).
          entry.onAbort = () => {
            const at = queue.indexOf(entry);
            if (at >= 0) queue.splice(at, 1);
            settle(entry, new EngineError('ABORTED', 'the request was cancelled'));
            for (const w of workers()) {
              if (w.job !== entry) continue;
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

    available,
    accepting,

    stats() {
      const all = workers();
      const alive = all.filter((w) => w.ready).length;
      const state = closed ? 'stopped' : fatal || !accepting() ? 'down' : alive > 0 ? 'up' : info === undefined ? 'starting' : 'restarting';
      const counts = slots.map((slot) => slot.supervisor.stats());
      const sum = (key: 'restarts' | 'failedStarts'): number => counts.reduce((total, c) => total + c[key], 0);
      return { state, workers: all.length, alive, busy: all.filter((w) => w.job).length, queued: queue.length, restarts: sum('restarts'), failedStarts: sum('failedStarts') };
    },

    async close() {
      if (closed) return;
      closed = true;
      const closing = new EngineError('ENGINE_CLOSED', 'the engine is shutting down');
      for (const r of readyWaiters) r.reject(closing);
      readyWaiters = [];
      for (const job of queue.splice(0)) settle(job, closing);
      for (const slot of slots) slot.supervisor.stop();
      await Promise.all(
        workers().map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
              const kill = setTimeout(() => w.proc.kill('SIGKILL'), 5000);
              w.proc.once('exit', () => {
                clearTimeout(kill);
                if (w.job) settle(w.job, closing);
                resolve();
              });
              // A worker in the middle of a video cannot read messages until it finishes it.
              if (w.proc.connected && !w.job) w.proc.send({ type: 'close' } satisfies ToDecodeWorker);
              else w.proc.kill('SIGKILL');
            }),
        ),
      );
    },
  };
}

function deserialize(error: SerializedError): EngineError {
  return new EngineError(error.code, error.message, error.details);
}

function defaultDecodeWorkerEntry(): WorkerEntry {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // Running from source (tests, tsx): the child needs tsx's loader to read TypeScript.
    const tsx = createRequire(here).resolve('tsx');
    return { file: fileURLToPath(new URL('./worker.ts', here)), execArgv: ['--import', pathToFileURL(tsx).href] };
  }
  return { file: fileURLToPath(new URL('./worker.js', here)), execArgv: [] };
}
