/**
 * Stage 5 with dynamic batching (Triton's semantics): videos whose tensors are ready while the
 * worker is busy, or within `maxDelayMs` of the oldest waiting one, run as one batch of at most
 * `maxSize` in a single session run. The graph takes a batch and halts each video on its own
 * (per-video token counts), but its knobs are scalars, so only videos with the same graph knobs
 * (infer.ts GRAPH_KNOBS) share a run; the oldest waiting video always goes in the next run (FIFO,
 * nobody starves). `maxSize` 1 is plain one-video runs, in arrival order.
 */
import { EngineError } from '../errors.js';
import { infer, sameGraphKnobs, splitBatch, type InferResult, type ModelOutputs } from './infer.js';
import type { Knobs } from './knobs.js';
import type { SessionHost, VideoFrames } from './inference/host.js';

export interface BatchOptions {
  maxSize: number;
  /** How long the oldest waiting video may be held for a fuller batch; 0 never waits. */
  maxDelayMs: number;
}

export type BatchedInfer = (video: VideoFrames, knobs: Knobs, signal?: AbortSignal) => Promise<InferResult>;

interface Waiting {
  video: VideoFrames;
  knobs: Knobs;
  signal: AbortSignal | undefined;
  enqueuedAt: number;
  resolve: (r: InferResult) => void;
  reject: (e: unknown) => void;
  /**
   * The client left: out of the queue and answered ABORTED at once. Listened to while the video
   * waits and while it is in a shared run; a lone run hands the signal to the host instead.
   */
  onAbort: () => void;
}

export function createBatcher(host: SessionHost, options: BatchOptions, now: () => number): BatchedInfer {
  const waiting: Waiting[] = [];
  let running = false;
  let timer: NodeJS.Timeout | undefined;

  const take = (): Waiting[] => {
    const [oldest] = waiting;
    if (!oldest) return [];
    const batch: Waiting[] = [];
    for (let i = 0; i < waiting.length && batch.length < options.maxSize; ) {
      const w = waiting[i] as Waiting;
      if (sameGraphKnobs(w.knobs, oldest.knobs)) {
        batch.push(w);
        waiting.splice(i, 1);
      } else i++;
    }
    return batch;
  };

  const dispatch = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (running) return; // the run in progress schedules the next when it ends
    const batch = take();
    if (batch.length === 0) return;
    running = true;
    void runBatch(batch).finally(() => {
      running = false;
      schedule();
    });
  };

  const runBatch = async (batch: Waiting[]): Promise<void> => {
    const startedAt = now();
    const [first] = batch as [Waiting];
    try {
      if (batch.length === 1) {
        first.signal?.removeEventListener('abort', first.onAbort);
        const result = await infer(host, [first.video], first.knobs, first.signal);
        first.resolve({ ...result, queueS: result.queueS + (startedAt - first.enqueuedAt) / 1000 });
        return;
      }
      // As in a lone run (the host's abort), a video whose client leaves is answered at once (its
      // listener stays on); the run goes on for the others and its result for that video is dropped.
      // The frames go as they are: the worker normalises them into the batch tensor.
      const result = await infer(host, batch.map((w) => w.video), first.knobs);
      const split: ModelOutputs[] = splitBatch(result.outputs, batch.length);
      batch.forEach((w, i) =>
        w.signal?.aborted
          ? w.reject(new EngineError('ABORTED', 'the request was cancelled'))
          : w.resolve({ outputs: split[i] as ModelOutputs, queueS: result.queueS + (startedAt - w.enqueuedAt) / 1000, inferS: result.inferS }),
      );
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      for (const w of batch) w.signal?.removeEventListener('abort', w.onAbort);
    }
  };

  const schedule = (): void => {
    if (running || waiting.length === 0) return;
    const [oldest] = waiting as [Waiting];
    const ready = waiting.filter((w) => sameGraphKnobs(w.knobs, oldest.knobs)).length;
    const due = oldest.enqueuedAt + options.maxDelayMs - now();
    if (ready >= options.maxSize || due <= 0) return dispatch();
    if (!timer) timer = setTimeout(dispatch, due);
  };

  return (video, knobs, signal) =>
    new Promise<InferResult>((resolve, reject) => {
      if (signal?.aborted) return reject(new EngineError('ABORTED', 'the request was cancelled'));
      const entry: Waiting = {
        video,
        knobs,
        signal,
        enqueuedAt: now(),
        resolve,
        reject,
        onAbort: () => {
          const at = waiting.indexOf(entry);
          if (at >= 0) waiting.splice(at, 1);
          reject(new EngineError('ABORTED', 'the request was cancelled'));
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      waiting.push(entry);
      schedule();
    });
}
