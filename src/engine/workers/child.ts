/**
 * The child side of a worker process: reads the pool's messages and answers them through the
 * handlers a worker kind supplies (inference/worker.ts, decode/worker.ts). Jobs run one after
 * another in arrival order; `close` waits for the one in progress, and so does a parent that goes
 * away (the IPC channel closes).
 */
import type { ErrorCode } from '../../errors.js';
import { endFailed, startSpan, type Span } from '../../telemetry/spans.js';
import { startTracing, type TracedProcess, type Tracing } from '../../telemetry/tracing.js';
import { deserializeError, serializeError, type FromWorker, type LogLevel, type ToWorker } from './protocol.js';

/** What a traced job's spans are called and say: one span per item of the job (a video, or each video of a batch). */
export interface JobSpans<Job, Output> {
  /** The worker's process, as the spans' resource names it. */
  process: TracedProcess;
  name: string;
  /** The attributes of item `index`'s span once the job succeeded. */
  attributes?: ((job: Job, output: Output, index: number, items: number) => Record<string, string | number | boolean | number[]>) | undefined;
}

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
  /** The spans of a traced job (its message carries the parents); tracing itself is on only when OTEL_* say so (telemetry/tracing.ts). */
  spans: JobSpans<Job, Output>;
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
  // Loaded before the first job; a worker whose service does not trace never loads the SDK.
  const tracing: Promise<Tracing | undefined> = startTracing({ process: handlers.spans.process }).catch((err: unknown) => {
    parentLogger().warn({ err: String(err) }, 'tracing could not start in this worker; its spans are lost');
    return undefined;
  });

  const run = async (id: number, job: Job, trace: readonly (string | undefined)[] | undefined): Promise<void> => {
    const tracer = trace && (await tracing)?.tracer;
    const spans: Array<Span | undefined> = tracer ? trace.map((parent) => (parent === undefined ? undefined : startSpan(tracer, handlers.spans.name, parent))) : [];
    try {
      const result = await handlers.run(job);
      const { attributes } = handlers.spans;
      spans.forEach((span, i) => {
        if (!span) return;
        if (attributes) span.setAttributes(attributes(job, result, i, spans.length));
        span.end();
      });
      send({ type: 'result', id, result });
    } catch (err) {
      const error = serializeError(err, handlers.fallback.run);
      await handlers.describeError?.(err, job, error);
      for (const span of spans) if (span) endFailed(span, deserializeError(error));
      send({ type: 'error', id, error });
    }
  };

  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    await busy;
    await Promise.resolve(handlers.close?.()).catch(() => undefined);
    await (await tracing)?.shutdown().catch(() => undefined);
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
      busy = busy.then(() => run(message.id, message.job, message.trace));
    } else void close();
  });
  process.on('disconnect', () => void close());
}
