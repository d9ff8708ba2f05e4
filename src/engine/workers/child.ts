/**
 * The child side of a worker process: reads the pool's messages and answers them through the
 * handlers a worker kind supplies (inference/worker.ts, decode/worker.ts). Jobs run one after
 * another in arrival order; `close` waits for the one in progress, and so does a parent that goes
 * away (the IPC channel closes).
 */
import type { ErrorCode } from '../../errors.js';
import { serializeError, type FromWorker, type LogLevel, type ToWorker } from './protocol.js';

export interface WorkerHandlers<Init, Info, Job, Output> {
  /** Opens what the worker serves; its answer is the pool's `info`. Throwing is init-failed. */
  init(init: Init): Promise<Info> | Info;
  run(job: Job): Promise<Output> | Output;
  /** Catalogue codes for errors that are not EngineErrors. */
  fallback: { init: ErrorCode; run: ErrorCode };
  /** Refines an error before it is sent (e.g. with the library's own log lines). */
  describeError?: ((err: unknown, job: Job, serialized: ReturnType<typeof serializeError>) => Promise<void> | void) | undefined;
  /** Releases what init opened before the process exits. */
  close?: (() => Promise<void> | void) | undefined;
}

/** Log lines for the parent's logger (a worker has no logger of its own). */
export function parentLogger(): Record<LogLevel, (obj: Record<string, unknown>, msg: string) => void> {
  const log = (level: LogLevel) => (obj: Record<string, unknown>, msg: string) => void process.send?.({ type: 'log', level, obj, msg } satisfies FromWorker<never, never>);
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

export function serveWorker<Init, Info, Job, Output>(handlers: WorkerHandlers<Init, Info, Job, Output>): void {
  const send = (message: FromWorker<Info, Output>): void => {
    process.send?.(message);
  };
  let busy: Promise<void> = Promise.resolve();
  let closing = false;

  const run = async (id: number, job: Job): Promise<void> => {
    try {
      send({ type: 'result', id, result: await handlers.run(job) });
    } catch (err) {
      const error = serializeError(err, handlers.fallback.run);
      await handlers.describeError?.(err, job, error);
      send({ type: 'error', id, error });
    }
  };

  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    await busy;
    await Promise.resolve(handlers.close?.()).catch(() => undefined);
    process.exit(0);
  };

  process.on('message', (message: ToWorker<Init, Job>) => {
    if (message.type === 'init') {
      Promise.resolve()
        .then(() => handlers.init(message.init))
        .then(
          (info) => send({ type: 'ready', info }),
          (err: unknown) => send({ type: 'init-failed', error: serializeError(err, handlers.fallback.init) }),
        );
    } else if (message.type === 'job') {
      busy = busy.then(() => run(message.id, message.job));
    } else void close();
  });
  process.on('disconnect', () => void close());
}
