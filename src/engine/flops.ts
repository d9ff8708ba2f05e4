/**
 * TypeScript mirror of the FLOPs formula in docs/contracts.md (paper convention: one multiply-add is
 * one FLOP). Golden cases: models/golden/flops.json.
 */
import { mergeCount, mergeMacs, type MergeMode } from './merging.js';
import type { Manifest } from './model.js';

export type FlopsConstants = Manifest['flops'];

/** Token merging a request ran with (models/haltingvt/merging.py); absent or mode "none": no merging. */
export interface MergeSetting {
  mode: MergeMode;
  ratio: number;
}

/**
 * Patches per frame a Glimpser block keeps: ceil(keep * P) computed in float32 like the ONNX graph
 * (and models/haltingvt/config.py kept_patches), clamped to [1, P].
 */
export function keptPatches(keep: number, patches: number): number {
  const product = Math.fround(Math.fround(keep) * Math.fround(patches));
  return Math.min(Math.max(Math.ceil(product), 1), patches);
}

/**
 * Keep ratio of each Glimpser block: the model's configured ratios (config.glimpser_keep) with the
 * last one replaced by the request's keep_ratio knob; block 0 always keeps everything.
 */
export function glimpserKeeps(blocks: number, keepRatio: number, configured?: readonly number[]): number[] {
  return Array.from({ length: blocks }, (_, b) => (b === blocks - 1 ? keepRatio : b === 0 ? 1 : (configured?.[b] ?? 1)));
}

/** The patch embedding of one video; manifests written before `embed_macs` mean the per-frame projection. */
export function embedMacs(c: FlopsConstants): number {
  return c.embed_macs ?? c.frames * c.patches * c.patch_dim * c.dim;
}

/** FLOPs of one video by stage: the embedding, each Glimpser block, the joint layers, the merges' own cost, the heads. */
export interface StageFlops {
  embedding: number;
  glimpser: number[];
  joint: number;
  merging: number;
  heads: number;
}

/**
 * FLOPs of one video by stage given the joint layers' active token counts (class token included).
 * A layer that merges r tokens runs attention on the n tokens that enter and the MLP on n - r.
 */
export function flopsByStage(
  c: FlopsConstants,
  glimpserKeepRatios: readonly number[],
  activeTokens: ArrayLike<number>,
  merge?: MergeSetting,
): StageFlops {
  const { frames: T, patches: P, dim: D, mlp_hidden: H } = c;
  const glimpser = glimpserKeepRatios.map((keep) => {
    const k = keep >= 1 ? P : keptPatches(keep, P);
    const temporal = T * P * (3 * D * D + D * D + D * D) + P * 2 * T * T * D; // qkv, proj, temporal_fc, QK^T+AV
    const spatial = T * (P + 1) * (3 * D * D + D * D) + T * 2 * (P + 1) ** 2 * D; // qkv, proj, QK^T+AV
    return temporal + spatial + (1 + T * k) * 2 * D * H; // MLP on the tokens it keeps
  });
  const merging = merge !== undefined && merge.mode !== 'none';
  let joint = 0;
  let mergeCost = 0;
  for (let l = 0; l < activeTokens.length; l++) {
    const n = activeTokens[l] as number;
    const mlpTokens = merging ? n - mergeCount(n, merge.ratio) : n;
    joint += n * 4 * D * D + 2 * n * n * D + mlpTokens * 2 * D * H;
    if (merging) mergeCost += mergeMacs(n, merge.mode, merge.ratio, D, c.heads ?? 0);
  }
  return { embedding: embedMacs(c), glimpser, joint, merging: mergeCost, heads: D * c.classes + D * c.motion_classes };
}

/** Total FLOPs for one video given the joint layers' active token counts (class token included). */
export function videoFlops(c: FlopsConstants, glimpserKeepRatios: readonly number[], activeTokens: ArrayLike<number>, merge?: MergeSetting): number {
  const s = flopsByStage(c, glimpserKeepRatios, activeTokens, merge);
  return s.embedding + s.glimpser.reduce((a, b) => a + b, 0) + s.joint + s.merging + s.heads;
}

/** Tokens each joint layer merged away (0 everywhere without merging). */
export function mergedPerLayer(activeTokens: readonly number[], merge?: MergeSetting): number[] {
  return activeTokens.map((n) => (merge === undefined || merge.mode === 'none' ? 0 : mergeCount(n, merge.ratio)));
}

/**
 * Joint-layer token counts with no halting at `keepRatio`: what a dense run processes. Each joint
 * layer sees the class token plus the patches the last Glimpser block kept.
 */
export function denseActiveTokens(c: FlopsConstants, lastKeep: number): number[] {
  const k = c.glimpser_blocks > 0 ? (lastKeep >= 1 ? c.patches : keptPatches(lastKeep, c.patches)) : c.patches;
  return new Array<number>(c.joint_blocks).fill(1 + c.frames * k);
}

export const gflops = (flops: number): number => flops / 1e9;
