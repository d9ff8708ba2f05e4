/**
 * The bounded queue in front of the engine: at most `concurrency` videos hold a slot at once and at
 * most `size` more wait; past that a request is refused at once (QUEUE_FULL, 429) rather than
 * piling up, as Triton's `max_queue_size` does. A waiting request whose signal aborts (its client
 * went away) leaves the queue without ever reaching the engine.
 *
 * A task may give its slot back before it ends (`release`): the service's videos do once decoded,
 * so the next video decodes while this one waits for the inference worker, and no core idles
 * while every video in flight waits for the one inference worker. At most `concurrency` tasks run
 * without their slot (`inferring`); past that a release is ignored and the slot is held to the end,
 * so when inference is the bottleneck the backlog waits here, in `queued`, where the queue-depth
 * metric (and the autoscaler on it) sees it, and at most 2 × `concurrency` videos are in the engine.
 *
 * A request is admitted (`admit()`) before its upload is read and holds its place until it is
 * answered, so uploading, waiting and running requests together never exceed `size + concurrency`:
 * that bounds the upload files on disk, and a refused client hears 429 before it sends its video.
 */
import { EngineError } from '../errors.js';

export interface QueueOptions {
  concurrency: number;
  size: number;
  /** Milliseconds, monotonic. */
  now: () => number;
  /** Called whenever the counts change (metrics gauges). */
  onChange?: ((stats: QueueStats) => void) | undefined;
}

export interface QueueStats {
  queued: number;
  /** Tasks holding a slot. */
  running: number;
  /** Tasks that gave their slot back and still run (the service's: decoded, waiting for or in inference). */
  inferring: number;
  /** Requests holding a place (uploading, waiting or running). */
  admitted: number;
}

export interface WorkQueue {
  /** Videos that may run at once (a batch request uses as many lanes). */
  readonly concurrency: number;
  /**
   * Runs `task` when a slot is free; `waitedS` is the time spent waiting for it. The slot is given
   * back when the task settles, or earlier when it calls `release` (idempotent) while fewer than
   * `concurrency` tasks run without theirs.
   */
  run<T>(task: (release: () => void) => Promise<T>, signal?: AbortSignal): Promise<{ value: T; waitedS: number }>;
  /** Takes a place for one request before its upload is read (QUEUE_FULL when none is left); call the result to give it back. */
  admit(): () => void;
  stats(): QueueStats;
  /** Resolves when nothing runs (with or without its slot), waits or holds a place. */
  idle(): Promise<void>;
}

interface Waiter {
  start: () => void;
  abort: () => void;
}

export function createWorkQueue(options: QueueOptions): WorkQueue {
  const { concurrency, size, now } = options;
  const waiting: Waiter[] = [];
  let running = 0;
  let inferring = 0;
  let admitted = 0;
  let idleWaiters: Array<() => void> = [];

  const stats = (): QueueStats => ({ queued: waiting.length, running, inferring, admitted });
  const isIdle = (): boolean => running === 0 && inferring === 0 && waiting.length === 0 && admitted === 0;
  const changed = (): void => {
    options.onChange?.(stats());
    if (idleWaiters.length > 0 && isIdle()) {
      const resolve = idleWaiters;
      idleWaiters = [];
      for (const r of resolve) r();
    }
  };

  const queueFull = (): EngineError =>
    new EngineError('QUEUE_FULL', `${running} videos are being processed and ${waiting.length} are waiting; retry later`, { queued: waiting.length, running, admitted });

  const release = (): void => {
    running -= 1;
    const next = waiting.shift();
    if (next) next.start();
    else changed();
  };

  return {
    concurrency,
    run(task, signal) {
      if (signal?.aborted) return Promise.reject(new EngineError('ABORTED', 'the client went away before its video was queued'));
      const enqueuedAt = now();
      return new Promise((resolve, reject) => {
        const start = (): void => {
          signal?.removeEventListener('abort', onAbort);
          running += 1;
          changed();
          const waitedS = (now() - enqueuedAt) / 1000;
          let slot: 'held' | 'released early' | 'done' = 'held';
          const releaseEarly = (): void => {
            if (slot !== 'held' || inferring >= concurrency) return;
            slot = 'released early';
            inferring += 1;
            release();
          };
          const settle = (): void => {
            if (slot === 'held') release();
            else if (slot === 'released early') {
              inferring -= 1;
              changed();
            }
            slot = 'done';
          };
          task(releaseEarly).then(
            (value) => {
              settle();
              resolve({ value, waitedS });
            },
            (err: unknown) => {
              settle();
              reject(err);
            },
          );
        };
        const waiter: Waiter = {
          start,
          abort: () => {
            const at = waiting.indexOf(waiter);
            if (at < 0) return;
            waiting.splice(at, 1);
            changed();
            reject(new EngineError('ABORTED', 'the client went away while its video was queued'));
          },
        };
        const onAbort = (): void => waiter.abort();
        if (running < concurrency) {
          start();
          return;
        }
        if (waiting.length >= size) {
          reject(queueFull());
          return;
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        waiting.push(waiter);
        changed();
      });
    },
    admit() {
      if (admitted >= size + concurrency) throw queueFull();
      admitted += 1;
      changed();
      let released = false;
      return () => {
        if (released) return;
        released = true;
        admitted -= 1;
        changed();
      };
    },
    stats,
    idle() {
      if (isIdle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
