/**
 * Optional stage 7: where the compute went, for one video. The per-patch stop map the graph already
 * returns (`patch_stop_layer`), the sampled frames' indices and times, and small PNG thumbnails of
 * the frames exactly as the model saw them (after resize and crop), so a client can draw the
 * paper's Figure 4. Only built when a request asks for it (`explain`); the PNGs are encoded in the
 * decode worker (thumbnails.ts), which has the frames, so the main thread does no image work.
 */
import type { Manifest } from './model.js';
import type { Explanation } from './result.js';
import { thumbnailSide } from './thumbnails.js';

export type { Explanation } from './result.js';

export interface ExplainInput {
  manifest: Manifest;
  patchStopLayer: readonly number[];
  mergedPerLayer: number[];
  indices: number[];
  fps: number | undefined;
  /** Base64 PNG of each slot's frame, from the decode worker. */
  thumbnails: string[];
}

export function explain(input: ExplainInput): Explanation {
  const { manifest } = input;
  const { frames: mapFrames, patches, joint_blocks: layers } = manifest.flops;
  const { frames: slots, size } = manifest.input;
  const cols = Math.round(Math.sqrt(patches));
  const rows = Math.ceil(patches / cols);
  const stopMap = Array.from({ length: mapFrames }, (_, t) => input.patchStopLayer.slice(t * patches, (t + 1) * patches));
  return {
    grid: { frames: mapFrames, rows, cols, joint_layers: layers },
    stop_map: stopMap,
    slot_to_map_frame: Array.from({ length: slots }, (_, t) => Math.min(mapFrames - 1, Math.floor((t * mapFrames) / slots))),
    sampled_indices: input.indices,
    timestamps_s: input.indices.map((i) => (input.fps && input.fps > 0 ? Math.round((i / input.fps) * 1e4) / 1e4 : null)),
    thumbnails: { format: 'png', size: thumbnailSide(size), data: input.thumbnails },
    merged_per_layer: input.mergedPerLayer,
  };
}
