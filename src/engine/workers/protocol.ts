/**
 * Messages between a worker pool (pool.ts, main process) and one of its worker processes
 * (child.ts), the same for every kind of worker: the kinds differ only in the payloads. Sent with
 * Node's "advanced" IPC serialization, so typed arrays (frames, tensors) travel as typed arrays.
 *
 *   parent → child   init (once) · job (one at a time, with its trace parents when traced) · close
 *   child → parent   ready (after init) or init-failed · result or error per job · log
 */
import { EngineError, isEngineError, type ErrorCode } from '../../errors.js';

/**
 * A job's `trace`, when the request is traced: the parent span of each item the job serves (one for
 * a decode, one per video of an inference batch; undefined for an item that is not traced), as W3C
 * traceparents. The worker makes each item's span under its parent.
 */
export type ToWorker<Init, Job> = { type: 'init'; init: Init } | { type: 'job'; id: number; job: Job; trace?: readonly (string | undefined)[] | undefined } | { type: 'close' };

export type LogLevel = 'info' | 'warn' | 'error';

export type FromWorker<Info, Output> =
  | { type: 'ready'; info: Info }
  /** The worker cannot start at all (a model that does not open, a library that does not load): no restart. */
  | { type: 'init-failed'; error: SerializedError }
  | { type: 'result'; id: number; result: Output }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'log'; level: LogLevel; obj: Record<string, unknown>; msg: string };

export interface SerializedError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown> | undefined;
}

/** A catalogue error as it is; anything else under `fallback`, with its message. */
export function serializeError(err: unknown, fallback: ErrorCode): SerializedError {
  if (isEngineError(err)) return { code: err.code, message: err.message, details: err.details };
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}

export function deserializeError(error: SerializedError): EngineError {
  return new EngineError(error.code, error.message, error.details);
}
