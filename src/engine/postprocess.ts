/**
 * Stage 6: turn raw outputs into a result that explains itself: top-k labels with probabilities,
 * tokens per joint layer and in total, the kept ratio against a dense run, and the GFLOPs spent.
 */
import { denseActiveTokens, gflops, glimpserKeeps, mergedPerLayer, videoFlops, type MergeSetting } from './flops.js';
import type { ModelOutputs } from './infer.js';
import type { Knobs } from './knobs.js';
import type { Manifest } from './model.js';
import type { Prediction, TokenReport } from './result.js';

export type { Prediction, TokenReport } from './result.js';

export interface Postprocessed {
  /** Softmax over every class, unrounded (the OIP PROBABILITIES output); not part of the CLI/HTTP result. */
  probabilities: Float64Array;
  top: Prediction[];
  tokens: TokenReport;
  gflops: number;
  dense_gflops: number;
}

export function postprocess(manifest: Manifest, outputs: ModelOutputs, knobs: Knobs): Postprocessed {
  const probabilities = softmax(outputs.logits);
  const c = manifest.flops;
  const total = sum(outputs.activeTokens);
  const dense = sum(denseActiveTokens(c, 1));
  const configured = Array.isArray(manifest.config.glimpser_keep) ? (manifest.config.glimpser_keep as number[]) : undefined;
  const keeps = glimpserKeeps(c.glimpser_blocks, knobs.keep_ratio, configured);
  const merge: MergeSetting | undefined = knobs.merge_mode === undefined ? undefined : { mode: knobs.merge_mode, ratio: knobs.merge_ratio ?? 0 };
  const histogram = new Array<number>(c.joint_blocks + 1).fill(0);
  for (const layer of outputs.patchStopLayer) if (layer >= 0 && layer < histogram.length) histogram[layer] = (histogram[layer] as number) + 1;
  return {
    probabilities,
    top: topK(probabilities, knobs.top_k, manifest.labels),
    tokens: {
      per_layer: outputs.activeTokens,
      merged_per_layer: mergedPerLayer(outputs.activeTokens, merge),
      total,
      dense,
      kept_ratio: round6(total / dense),
      layers_run: outputs.activeTokens.filter((n) => n > 0).length,
      patch_stop_histogram: histogram,
    },
    gflops: round6(gflops(videoFlops(c, keeps, outputs.activeTokens, merge))),
    dense_gflops: manifest.dense_gflops,
  };
}

/** Numerically stable softmax in float64. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const out = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += out[i] = Math.exp((logits[i] as number) - max);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / total;
  return out;
}

/** The k most probable classes, most probable first; ties keep the lower class index first. */
export function topK(probabilities: ArrayLike<number>, k: number, labels: readonly string[]): Prediction[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i);
  order.sort((a, b) => (probabilities[b] as number) - (probabilities[a] as number) || a - b);
  return order.slice(0, Math.min(k, order.length)).map((index) => ({
    label: labels[index] ?? String(index),
    index,
    probability: round6(probabilities[index] as number),
  }));
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Six decimals: every ratio, probability, GFLOP count and duration in a result is rounded so. */
export function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
