/**
 * Stage 5: send the frames and the knobs to the inference worker (which normalises the frames into
 * the `video` tensor and runs the model) and read its three outputs back as plain arrays; a batch of
 * videos (batcher.ts) is split back into one per video.
 */
import { EngineError } from '../errors.js';
import type { Knobs } from './knobs.js';
import { mergeModeIndex } from './merging.js';
import type { PlainTensor } from './inference/ort-session.js';
import type { SessionHost, VideoFrames } from './inference/host.js';

export interface ModelOutputs {
  /** (classes) raw scores for the video. */
  logits: Float32Array;
  /** (joint_layers) tokens each joint layer processed, class token included. */
  activeTokens: number[];
  /** (frames * patches) 0 = dropped by the Glimpser, else the 1-based joint layer where the patch stopped. */
  patchStopLayer: number[];
}

export interface InferResult {
  outputs: ModelOutputs;
  queueS: number;
  inferS: number;
}

/** The knobs the graph itself takes as scalar inputs (top_k is applied after it). */
export const GRAPH_KNOBS = ['keep_ratio', 'halt_threshold', 'merge_mode', 'merge_ratio'] as const;
export type GraphKnobs = Pick<Knobs, (typeof GRAPH_KNOBS)[number]>;

/** Whether two videos can share one run: every graph input but the video is a scalar for the whole batch. */
export const sameGraphKnobs = (a: GraphKnobs, b: GraphKnobs): boolean => GRAPH_KNOBS.every((k) => a[k] === b[k]);

/** The graph's inputs for one run, from a normalised video tensor (the benchmarks feed sessions through this). */
export function modelFeeds(video: Float32Array, dims: readonly number[], knobs: GraphKnobs): Record<string, PlainTensor> {
  return { video: { dtype: 'float32', dims: [...dims], data: video }, ...scalarFeeds(knobs) };
}

/** The graph's scalar inputs: the knobs it takes. */
export function scalarFeeds(knobs: GraphKnobs): Record<string, PlainTensor> {
  const feeds: Record<string, PlainTensor> = {
    keep_ratio: { dtype: 'float32', dims: [], data: Float32Array.of(knobs.keep_ratio) },
    halt_threshold: { dtype: 'float32', dims: [], data: Float32Array.of(knobs.halt_threshold) },
  };
  // Only models exported with token merging have these inputs, and only their knobs carry a mode.
  if (knobs.merge_mode !== undefined) {
    feeds.merge_mode = { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(mergeModeIndex(knobs.merge_mode))) };
    feeds.merge_ratio = { dtype: 'float32', dims: [], data: Float32Array.of(knobs.merge_ratio ?? 0) };
  }
  return feeds;
}

/** One run of `videos` (a batch when several) with the same graph knobs. */
export async function infer(host: SessionHost, videos: readonly VideoFrames[], knobs: Knobs, signal?: AbortSignal): Promise<InferResult> {
  const batch = videos.length;
  // Each traced video's inference span is made in the worker, under the video's span.
  const trace = videos.some((v) => v.trace !== undefined) ? videos.map((v) => v.trace) : undefined;
  const { outputs, queueS, inferS } = await host.run({ feeds: scalarFeeds(knobs), videos }, signal, trace);
  return {
    outputs: {
      logits: expect(outputs, 'logits', 'float32', batch).data as Float32Array,
      activeTokens: toNumbers(expect(outputs, 'active_tokens', 'int64', batch)),
      patchStopLayer: toNumbers(expect(outputs, 'patch_stop_layer', 'int64', batch)),
    },
    queueS,
    inferS,
  };
}

/** The outputs of a batch run, one ModelOutputs per video (views into the batch's arrays). */
export function splitBatch(outputs: ModelOutputs, batch: number): ModelOutputs[] {
  const classes = outputs.logits.length / batch;
  const layers = outputs.activeTokens.length / batch;
  const patches = outputs.patchStopLayer.length / batch;
  return Array.from({ length: batch }, (_, i) => ({
    logits: outputs.logits.subarray(i * classes, (i + 1) * classes),
    activeTokens: outputs.activeTokens.slice(i * layers, (i + 1) * layers),
    patchStopLayer: outputs.patchStopLayer.slice(i * patches, (i + 1) * patches),
  }));
}

function expect(outputs: Record<string, PlainTensor>, name: string, dtype: PlainTensor['dtype'], batch: number): PlainTensor {
  const t = outputs[name];
  if (!t) throw new EngineError('MODEL_INVALID', `the model returned no "${name}" output (got ${Object.keys(outputs).join(', ')})`);
  if (t.dtype !== dtype) throw new EngineError('MODEL_INVALID', `output "${name}" is ${t.dtype}, the contract says ${dtype}`);
  if (t.dims[0] !== batch) throw new EngineError('MODEL_INVALID', `output "${name}" has batch ${t.dims[0]}, expected ${batch}`);
  return t;
}

function toNumbers(t: PlainTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}
