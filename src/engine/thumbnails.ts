/**
 * The sampled frames as small PNGs, exactly as the model saw them (after resize and crop), for
 * `explain`. Encoded in the decode worker, which holds the frames, when a request asks for them:
 * PNG encoding costs a few ms per video, which the main thread would otherwise spend.
 */
import { PNG } from 'pngjs';

/** Thumbnails are at most this many pixels on a side: 8 frames stay under ~300 KB of base64 PNG. */
export const THUMBNAIL_MAX_SIDE = 112;

/** The side of the thumbnails of a `size` x `size` model input (box-averaged down by a whole factor). */
export function thumbnailSide(size: number): number {
  return Math.floor(size / Math.max(1, Math.ceil(size / THUMBNAIL_MAX_SIDE)));
}

/** Base64 PNG of the frame that fills each slot; `rgb` holds the distinct frames back to back, (U, S, S, 3). */
export function thumbnails(rgb: Uint8Array, slotToFrame: readonly number[], size: number): string[] {
  const factor = Math.max(1, Math.ceil(size / THUMBNAIL_MAX_SIDE));
  return slotToFrame.map((frame) => thumbnail(rgb, frame, size, factor).toString('base64'));
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
