/**
 * The main process's side of one live stream's worker (worker.ts): forks it, hands it the settings,
 * exposes its stdin for the stream's bytes and turns its messages into calls. The worker ends when
 * its stdin does (after the last windows) or is killed: a stream is never left running.
 */
import os from 'node:os';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { EngineError } from '../../errors.js';
import { workerEntry } from '../workers/entry.js';
import { forkWorker } from '../workers/fork.js';
import type { WorkerEntry } from '../workers/pool.js';
import { deserializeError } from '../workers/protocol.js';
import type { LiveInfo, LiveSummary, LiveWindow } from './decode-stream.js';
import type { FromLiveWorker, LiveInit, ToLiveWorker } from './worker.js';

export interface LiveHandlers {
  started(info: LiveInfo): void;
  window(window: LiveWindow): void;
  /** Packets keep arriving (at most once a second); `at` is the worker's wall clock. */
  progress?(packets: number, at: number): void;
}

export interface LiveProcess {
  /** The stream's bytes go here (a pipe source); end() it when the client's stream ends. Writes after an end are dropped. */
  readonly input: Writable;
  /** A paced worker may read on past the window before the last one acked. */
  ack(): void;
  /** The summary once the worker has sent every window; rejects with an EngineError when the stream failed. */
  readonly done: Promise<LiveSummary>;
  /** Stops the stream now (client gone, a limit, shutdown): the worker is killed and `done` rejects with `reason`. */
  stop(reason: EngineError): void;
  readonly pid: number | undefined;
}

/**
 * A stream's frames are 150 KB buffers, just above glibc's mmap threshold, which glibc raises after
 * the first one is freed: from then on they come from the heap, which fragments, and the decoder's RSS
 * crept up with wall time (94 → 103 MiB over a 10-minute stream, still rising). A fixed threshold keeps
 * them mapped and returned on free: the same 8-minute stream side by side stayed at 87-92 MiB against
 * 87 → 98 MiB without it (what is left is a garbage collector's sawtooth, peaks 91 → 93 MiB over 5 minutes).
 */
const LIVE_WORKER_ENV = { MALLOC_MMAP_THRESHOLD_: '65536' };

/** Kept of a dying worker's output for the log. */
const STDERR_KEEP = 4096;

export interface LiveProcessOptions {
  logger: Logger;
  /** Set in the worker's environment besides LIVE_WORKER_ENV (a pulled source's proxy). */
  env?: Record<string, string> | undefined;
  /** Nice offset of the decoder process below this one (streamDecoderNice). */
  nice: number;
  entry?: WorkerEntry | undefined;
}

export function startLiveProcess(init: Omit<LiveInit, 'progress'>, handlers: LiveHandlers, options: LiveProcessOptions): LiveProcess {
  const proc = forkWorker(options.entry ?? workerEntry(import.meta.url, 'worker'), { stdin: true, env: { ...LIVE_WORKER_ENV, ...options.env } });
  if (options.nice > 0 && proc.pid !== undefined) {
    try {
      os.setPriority(proc.pid, Math.min(19, os.getPriority() + options.nice));
    } catch (err) {
      options.logger.warn({ err, pid: proc.pid }, 'could not lower a live stream decoder\'s priority');
    }
  }
  const input = proc.stdin as Writable;
  // The worker gone (killed, crashed, done early): the stream's bytes have nowhere to go, which
  // `done` reports; a write error must not take the service down.
  input.on('error', () => undefined);
  let stderr = '';
  const keep = (chunk: Buffer): void => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);

  let stoppedFor: EngineError | undefined;
  let outcome: { summary: LiveSummary } | { error: EngineError } | undefined;
  const done = new Promise<LiveSummary>((resolve, reject) => {
    proc.on('message', (message: FromLiveWorker) => {
      if (stoppedFor) return;
      if (message.type === 'started') handlers.started(message.info);
      else if (message.type === 'window') handlers.window(message.window);
      else if (message.type === 'progress') handlers.progress?.(message.packets, message.at);
      else if (message.type === 'ended') outcome = { summary: message.summary };
      else outcome = { error: deserializeError(message.error) };
    });
    proc.on('exit', (code, signal) => {
      if (stoppedFor) return reject(stoppedFor);
      if (outcome && 'summary' in outcome) return resolve(outcome.summary);
      if (outcome) return reject(outcome.error);
      options.logger.error({ code, signal, stderr, pid: proc.pid }, 'a live stream worker died');
      reject(new EngineError('DECODER_CRASHED', `the decoder process died on ${init.name} (exit code ${code}, signal ${signal}); the stream is ended`, { video: init.name }));
    });
  });
  done.catch(() => undefined); // the caller reads it; never an unhandled rejection
  const tell = (message: ToLiveWorker): void => {
    if (proc.connected) proc.send(message, (err: Error | null) => void err); // a worker gone is `done`'s to report
  };
  tell({ type: 'init', init: { ...init, progress: handlers.progress !== undefined } });
  return {
    input,
    done,
    pid: proc.pid,
    ack: () => tell({ type: 'ack' }),
    stop(reason) {
      if (stoppedFor || proc.exitCode !== null || proc.signalCode !== null) return;
      stoppedFor = reason;
      input.destroy();
      proc.kill('SIGKILL');
    },
  };
}
