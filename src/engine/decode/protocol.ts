/**
 * Messages between the decode pool (pool.ts, main process) and a decode worker (worker.ts). Sent
 * with Node's "advanced" IPC serialization, so the rgb24 frames travel as a Uint8Array.
 */
import type { ErrorCode } from '../../errors.js';
import type { DecodedVideo, DecodeJob } from './decode-video.js';

export type Hwaccel = 'auto' | 'cuda' | 'none';

export type ToDecodeWorker =
  | { type: 'init'; threads: number; hwaccel: Hwaccel }
  | { type: 'decode'; id: number; job: DecodeJob }
  | { type: 'close' };

export interface SerializedError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown> | undefined;
}

export type FromDecodeWorker =
  /** `hardware`: where this worker decodes; `reason`: why not on the GPU when one was asked for. */
  | { type: 'ready'; hardware: 'cuda' | 'cpu'; reason: string | undefined; libav: string }
  | { type: 'init-failed'; error: SerializedError }
  | { type: 'result'; id: number; result: DecodedVideo }
  | { type: 'error'; id: number; error: SerializedError };
