import { describe, expect, it } from 'vitest';
import { denseActiveTokens, flopsByStage, gflops, glimpserKeeps, keptPatches, mergedPerLayer, videoFlops, type FlopsConstants } from '../../src/engine/flops.js';
import { mergeCount, mergeMacs, type MergeMode } from '../../src/engine/merging.js';
import { golden } from '../helpers/paths.js';

interface FlopsCase {
  preset: string;
  constants: FlopsConstants;
  keep: number;
  kept_per_frame: number;
  active_tokens: number[];
  macs: number;
  gflops: number;
}

const flops = golden<{ cases: FlopsCase[] }>('flops.json').cases;
const kept = golden<{ cases: Array<{ keep: number; patches: number; kept: number }> }>('kept_patches.json').cases;

describe('videoFlops', () => {
  it.each(flops.map((c) => [c.preset, c.keep, c] as const))('%s keep=%f matches the golden MACs', (_preset, keep, c) => {
    const total = videoFlops(c.constants, glimpserKeeps(c.constants.glimpser_blocks, keep), c.active_tokens);
    expect(total).toBe(c.macs);
    expect(gflops(total)).toBeCloseTo(c.gflops, 5);
  });

  it('splits into stages that sum to the golden MACs, where only the Glimpser MLP follows keep and only the joint layers follow halting', () => {
    for (const c of flops) {
      const keeps = glimpserKeeps(c.constants.glimpser_blocks, c.keep);
      const s = flopsByStage(c.constants, keeps, c.active_tokens);
      expect(s.embedding + s.glimpser.reduce((a, b) => a + b, 0) + s.joint + s.heads).toBe(c.macs);
      const { frames: T, patches: P, dim: D, mlp_hidden: H } = c.constants;
      const dense = flopsByStage(c.constants, glimpserKeeps(c.constants.glimpser_blocks, 1), c.active_tokens.map(() => 0));
      expect(dense.glimpser.at(-1)! - s.glimpser.at(-1)!).toBe(T * (P - c.kept_per_frame) * 2 * D * H);
      expect(dense.embedding).toBe(s.embedding);
      expect(dense.joint).toBe(0);
    }
  });

  it('reproduces the paper numbers quoted in the contract', () => {
    const paper = flops.filter((c) => c.preset === 'paper-minik-g05-b20');
    const byKeep = Object.fromEntries(paper.map((c) => [c.keep, Math.round(gflops(c.macs) * 100) / 100]));
    expect(byKeep).toMatchObject({ 1: 55.5, 0.3: 17.63, 0.5: 26.53, 0.7: 37.21 });
  });

  it('counts the conv3d stem of motion-tiny and reads manifests written before embed_macs as the patch projection', () => {
    const tiny = flops.find((c) => c.preset === 'motion-tiny' && c.keep === 1);
    const paper = flops.find((c) => c.preset === 'paper-minik-g05-b20' && c.keep === 1);
    if (!tiny || !paper) throw new Error('golden cases missing');
    const { frames: T, patches: P, patch_dim: patchDim, dim: D } = tiny.constants;
    expect(tiny.constants.embed_macs).not.toBe(T * P * patchDim * D);
    const { embed_macs: _dropped, ...older } = paper.constants;
    const keeps = glimpserKeeps(paper.constants.glimpser_blocks, 1);
    expect(videoFlops(older, keeps, paper.active_tokens)).toBe(paper.macs);
  });

  it('gives dense token counts that match the no-halting golden cases', () => {
    for (const c of flops.filter((f) => f.active_tokens.every((n) => n === f.active_tokens[0]) && f.active_tokens[0] !== 0)) {
      expect(denseActiveTokens(c.constants, c.keep)).toEqual(c.active_tokens);
    }
  });
});

describe('keptPatches', () => {
  it.each(kept.map((c) => [c.keep, c.patches, c.kept] as const))('keep=%f of %i patches keeps %i (float32 like the graph)', (keep, patches, k) => {
    expect(keptPatches(keep, patches)).toBe(k);
  });
});

describe('glimpserKeeps', () => {
  it('keeps everything in block 0 and applies the knob to the last block', () => {
    expect(glimpserKeeps(2, 0.3)).toEqual([1, 0.3]);
    expect(glimpserKeeps(3, 0.3, [1, 0.8, 0.5])).toEqual([1, 0.8, 0.3]);
    expect(glimpserKeeps(1, 0.4)).toEqual([0.4]);
  });
});

interface MergingGolden {
  counts: Array<{ live: number; ratio: number; merged: number }>;
  costs: Array<{ live: number; mode: MergeMode; ratio: number; dim: number; heads: number; macs: number }>;
  videos: Array<FlopsCase & { merge_mode: MergeMode; merge_ratio: number; joint_macs: number[] }>;
}
const merging = golden<MergingGolden>('merging.json');

describe('token merging (models/haltingvt/merging.py)', () => {
  it('merges floor(ratio * patches) in float32, at most half the patches, like Python', () => {
    for (const c of merging.counts) expect(mergeCount(c.live, c.ratio)).toBe(c.merged);
    expect(mergeCount(11, 0.3)).toBe(3);
  });

  it('costs what Python counts for the similarity (and vid-TLDR\'s sharpness)', () => {
    for (const c of merging.costs) expect(mergeMacs(c.live, c.mode, c.ratio, c.dim, c.heads)).toBe(c.macs);
  });

  it('gives the golden video MACs: the MLP on the merged tokens plus the merge, as its own stage', () => {
    for (const c of merging.videos) {
      const merge = { mode: c.merge_mode, ratio: c.merge_ratio };
      const keeps = glimpserKeeps(c.constants.glimpser_blocks, c.keep);
      expect(videoFlops(c.constants, keeps, c.active_tokens, merge)).toBe(c.macs);
      const stages = flopsByStage(c.constants, keeps, c.active_tokens, merge);
      const plain = flopsByStage(c.constants, keeps, c.active_tokens);
      const merged = mergedPerLayer(c.active_tokens, merge);
      const { dim: D, mlp_hidden: H } = c.constants;
      expect(plain.joint - stages.joint).toBe(merged.reduce((a, b) => a + b, 0) * 2 * D * H);
      expect(stages.merging).toBe(c.active_tokens.reduce((a, n) => a + mergeMacs(n, c.merge_mode, c.merge_ratio, D, c.constants.heads ?? 0), 0));
      expect(stages.merging > 0).toBe(c.merge_mode !== 'none');
    }
  });

  it('changes nothing without a merge mode', () => {
    const c = merging.videos[0]!;
    const keeps = glimpserKeeps(c.constants.glimpser_blocks, c.keep);
    expect(videoFlops(c.constants, keeps, c.active_tokens, { mode: 'none', ratio: 0.5 })).toBe(videoFlops(c.constants, keeps, c.active_tokens));
    expect(mergedPerLayer(c.active_tokens)).toEqual(c.active_tokens.map(() => 0));
  });
});
