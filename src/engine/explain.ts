/**
 * Optional stage 7: where the compute went, for one video. The per-patch stop map the graph already
 * returns (`patch_stop_layer`), the sampled frames' indices and times, and small PNG thumbnails of
 * the frames exactly as the model saw them (after resize and crop), so a client can draw the
 * paper's Figure 4. Only built when a request asks for it (`explain`): the PNGs cost a few ms.
 */
import { PNG } from 'pngjs';
import type { Manifest } from './model.js';
import type { Explanation } from './result.js';

/** Thumbnails are at most this many pixels on a side: 8 frames stay under ~300 KB of base64 PNG. */
export const THUMBNAIL_MAX_SIDE = 112;

export type { Explanation } from './result.js';

export interface ExplainInput {
  manifest: Manifest;
  patchStopLayer: readonly number[];
  mergedPerLayer: number[];
  indices: number[];
  fps: number | undefined;
  /** Distinct decoded frames back to back, (U, S, S, 3) rgb24, and which one fills each slot. */
  rgb: Uint8Array;
  slotToFrame: readonly number[];
}

export function explain(input: ExplainInput): Explanation {
  const { manifest } = input;
  const { frames: mapFrames, patches, joint_blocks: layers } = manifest.flops;
  const { frames: slots, size } = manifest.input;
  const cols = Math.round(Math.sqrt(patches));
  const rows = Math.ceil(patches / cols);
  const stopMap = Array.from({ length: mapFrames }, (_, t) => input.patchStopLayer.slice(t * patches, (t + 1) * patches));
  const factor = Math.max(1, Math.ceil(size / THUMBNAIL_MAX_SIDE));
  const side = Math.floor(size / factor);
  return {
    grid: { frames: mapFrames, rows, cols, joint_layers: layers },
    stop_map: stopMap,
    slot_to_map_frame: Array.from({ length: slots }, (_, t) => Math.min(mapFrames - 1, Math.floor((t * mapFrames) / slots))),
    sampled_indices: input.indices,
    timestamps_s: input.indices.map((i) => (input.fps && input.fps > 0 ? Math.round((i / input.fps) * 1e4) / 1e4 : null)),
    thumbnails: {
      format: 'png',
      size: side,
      data: input.slotToFrame.map((frame) => thumbnail(input.rgb, frame, size, factor).toString('base64')),
    },
    merged_per_layer: input.mergedPerLayer,
  };
}

/** One decoded frame as a PNG, box-averaged down by `factor` when the model input is large. */
function thumbnail(rgb: Uint8Array, frame: number, size: number, factor: number): Buffer {
  const side = Math.floor(size / factor);
  const png = new PNG({ width: side, height: side, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  const out = Buffer.alloc(side * side * 3);
  const base = frame * size * size * 3;
  const area = factor * factor;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      for (let c = 0; c < 3; c++) {
        let total = 0;
        for (let dy = 0; dy < factor; dy++) for (let dx = 0; dx < factor; dx++) total += rgb[base + ((y * factor + dy) * size + x * factor + dx) * 3 + c] as number;
        out[(y * side + x) * 3 + c] = Math.round(total / area);
      }
    }
  }
  png.data = out;
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}
