/**
 * The bounded queue in front of the engine: at most `concurrency` videos are decoded or inferred
 * at once and at most `size` more wait; past that a request is refused at once (QUEUE_FULL, 429)
 * rather than piling up, as Triton's `max_queue_size` does. A waiting request whose signal aborts
 * (its client went away) leaves the queue without ever reaching the engine.
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
  running: number;
}

export interface WorkQueue {
  /** Videos that may run at once (a batch request uses as many lanes). */
  readonly concurrency: number;
  /** Runs `task` when a slot is free; `waitedS` is the time spent waiting for it. */
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<{ value: T; waitedS: number }>;
  /** Whether a new request would be admitted now (checked before accepting an upload). */
  hasRoom(): boolean;
  stats(): QueueStats;
  /** Resolves when nothing runs and nothing waits. */
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
  let idleWaiters: Array<() => void> = [];

  const changed = (): void => {
    options.onChange?.({ queued: waiting.length, running });
    if (running === 0 && waiting.length === 0 && idleWaiters.length > 0) {
      const resolve = idleWaiters;
      idleWaiters = [];
      for (const r of resolve) r();
    }
  };

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
          task().then(
            (value) => {
              release();
              resolve({ value, waitedS });
            },
            (err: unknown) => {
              release();
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
          reject(new EngineError('QUEUE_FULL', `${running} videos are being processed and ${waiting.length} are waiting; retry later`, { queued: waiting.length, running }));
          return;
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        waiting.push(waiter);
        changed();
      });
    },
    hasRoom: () => running < concurrency || waiting.length < size,
    stats: () => ({ queued: waiting.length, running }),
    idle() {
      if (running === 0 && waiting.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
