/**
 * TypeScript mirror of the token-merging decisions the engine needs (models/haltingvt/merging.py):
 * how many tokens a joint layer merges away and what the merge itself costs, so that tokens and
 * GFLOPs are reported from the graph's active-token counts alone. Golden cases: models/golden/merging.json.
 */

/** The graph input `merge_mode` is the index of the mode in this list. */
export const MERGE_MODES = ['none', 'tome', 'tldr'] as const;
export type MergeMode = (typeof MERGE_MODES)[number];

export function mergeModeIndex(mode: MergeMode): number {
  return MERGE_MODES.indexOf(mode);
}

/**
 * Tokens one joint layer merges away when `liveTokens` (class token included) enter it:
 * floor(ratio * patches) in float32 like the graph, at most half the patches, 0 for an empty layer.
 */
export function mergeCount(liveTokens: number, ratio: number): number {
  const patches = Math.max(liveTokens - 1, 0);
  const r = Math.floor(Math.fround(Math.fround(ratio) * Math.fround(patches)));
  return Math.max(Math.min(r, Math.floor(patches / 2)), 0);
}

/**
 * Multiply-adds of one merge step (paper convention), 0 when the layer merges nothing: the cosine
 * similarity of every source candidate with every destination candidate (metric: head-mean keys,
 * dim / heads wide, for ToMe; the hidden state, dim wide, for vid-TLDR), plus for vid-TLDR the
 * sharpness sum a*log a over each attention row (N * (N + 1), the null key included).
 */
export function mergeMacs(liveTokens: number, mode: MergeMode, ratio: number, dim: number, heads: number): number {
  if (mode === 'none' || mergeCount(liveTokens, ratio) === 0) return 0;
  const patches = liveTokens - 1;
  const sources = Math.floor((patches + 1) / 2);
  const dests = Math.floor(patches / 2);
  if (mode === 'tome') return sources * dests * Math.floor(dim / Math.max(heads, 1));
  return sources * dests * dim + liveTokens * (liveTokens + 1);
}
