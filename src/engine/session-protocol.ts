/**
 * Messages between the main process (session-host.ts) and the inference child process
 * (session-worker.ts). Sent with Node's "advanced" IPC serialization, so typed arrays travel as
 * typed arrays.
 */
import type { ErrorCode } from '../errors.js';
import type { PlainTensor, ValueSpec } from './ort-session.js';

export interface WorkerInit {
  type: 'init';
  modelPath: string;
  executionProviders: string[];
  intraOpNumThreads?: number | undefined;
  interOpNumThreads?: number | undefined;
  /** Values for scalar float inputs during the warm-up run (the knob defaults). */
  warmupScalars: Record<string, number>;
}

export interface WorkerRun {
  type: 'run';
  id: number;
  feeds: Record<string, PlainTensor>;
}

export type ToWorker = WorkerInit | WorkerRun | { type: 'close' };

export interface SerializedError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown> | undefined;
}

export type FromWorker =
  | { type: 'ready'; executionProvider: string; inputs: ValueSpec[]; outputs: ValueSpec[]; warmupMs: number }
  | { type: 'init-failed'; error: SerializedError }
  | { type: 'result'; id: number; outputs: Record<string, PlainTensor> }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string };
