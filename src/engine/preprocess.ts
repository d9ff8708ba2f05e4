/**
 * Stage 4 (half of it runs in the decode worker's libavfilter chain): resize so the short side is
 * `resize_short_side`, keep the aspect ratio, centre-crop `size` x `size`, then turn rgb24 bytes into
 * the normalised float32 NCTHW tensor. The arithmetic follows docs/contracts.md so the Python decoder gets the same pixels.
 */
import type { Manifest } from './model.js';

export interface CropGeometry {
  /** Size after the scale filter. */
  scaleWidth: number;
  scaleHeight: number;
  /** Top-left corner of the square crop. */
  cropX: number;
  cropY: number;
  size: number;
}

/**
 * `width`/`height` are the displayed size (after autorotation). Long side =
 * floor(long * short_target / short + 0.5); crop offset = floor((dim - size) / 2).
 */
export function cropGeometry(width: number, height: number, resizeShortSide: number, size: number): CropGeometry {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const scaledLong = Math.floor((long * resizeShortSide) / short + 0.5);
  const scaleWidth = width <= height ? resizeShortSide : scaledLong;
  const scaleHeight = width <= height ? scaledLong : resizeShortSide;
  return {
    scaleWidth,
    scaleHeight,
    cropX: Math.floor((scaleWidth - size) / 2),
    cropY: Math.floor((scaleHeight - size) / 2),
    size,
  };
}

/**
 * The filter chain for one geometry, the same string for libavfilter in the decode worker and for
 * the ffmpeg command line in the Python sampler. `format=rgb24` sits between scale and crop so that
 * swscale converts straight to RGB at the target size and the crop works on full-resolution RGB: a
 * crop on yuv420p would round odd offsets down to the chroma grid.
 */
export function filterChain(g: CropGeometry, scaleFlags: string): string {
  return `scale=${g.scaleWidth}:${g.scaleHeight}:flags=${scaleFlags},format=rgb24,crop=${g.size}:${g.size}:${g.cropX}:${g.cropY}`;
}

/** What the normalisation needs of the model's input: the inference worker is told this at start. */
export type VideoInputSpec = Pick<Manifest['input'], 'frames' | 'size' | 'mean' | 'std'>;

/**
 * Converts decoded frames to the model input, reusing `out`. `rgb` holds the decoded frames back to
 * back, (U, S, S, 3) uint8; `slotToFrame[t]` says which decoded frame fills time slot t. `out` is
 * (1, 3, T, S, S) float32.
 */
export class Preprocessor {
  readonly frames: number;
  readonly size: number;
  /** One lookup table per channel: (pixel - mean) / std as float32, so the hot loop is a load. */
  private readonly lut: Float32Array[];
  private readonly buffers = new Map<number, Float32Array>();

  constructor(input: VideoInputSpec) {
    this.frames = input.frames;
    this.size = input.size;
    this.lut = [0, 1, 2].map((c) => {
      const table = new Float32Array(256);
      const mean = input.mean[c] as number;
      const std = input.std[c] as number;
      for (let p = 0; p < 256; p++) table[p] = (p - mean) / std;
      return table;
    });
  }

  get frameBytes(): number {
    return this.size * this.size * 3;
  }

  get tensorLength(): number {
    return 3 * this.frames * this.size * this.size;
  }

  /** Writes one video into `out` at video `index` of a batch tensor (N, 3, T, S, S). */
  toTensor_(rgb: Uint8Array, slotToFrame: readonly number[], out: Float32Array, index = 0): Float32Array {
    const { frames: T, size: S } = this;
    const plane = S * S;
    const at = index * 3 * T * plane;
    if (out.length < at + 3 * T * plane) throw new RangeError(`tensor buffer has ${out.length} floats, needs ${at + 3 * T * plane}`);
    if (slotToFrame.length !== T) throw new RangeError(`expected ${T} slots, got ${slotToFrame.length}`);
    const [lr, lg, lb] = this.lut as [Float32Array, Float32Array, Float32Array];
    for (let t = 0; t < T; t++) {
      const src = (slotToFrame[t] as number) * plane * 3;
      if (src + plane * 3 > rgb.length) throw new RangeError(`frame ${slotToFrame[t]} is outside the decoded buffer`);
      const r = at + t * plane; // (c=0, t) plane offset in NCTHW
      const g = at + (T + t) * plane;
      const b = at + (2 * T + t) * plane;
      for (let i = 0, s = src; i < plane; i++, s += 3) {
        out[r + i] = lr[rgb[s] as number] as number;
        out[g + i] = lg[rgb[s + 1] as number] as number;
        out[b + i] = lb[rgb[s + 2] as number] as number;
      }
    }
    return out;
  }

  /**
   * The `video` feed of one run: every video normalised into a tensor (N, 3, T, S, S) that is
   * allocated once per batch size and reused, since the caller awaits each run before the next.
   */
  batch(videos: readonly { rgb: Uint8Array; slotToFrame: readonly number[] }[]): { data: Float32Array; dims: number[] } {
    const n = videos.length;
    let data = this.buffers.get(n);
    if (!data) {
      data = new Float32Array(n * this.tensorLength);
      this.buffers.set(n, data);
    }
    videos.forEach((v, i) => this.toTensor_(v.rgb, v.slotToFrame, data, i));
    return { data, dims: [n, 3, this.frames, this.size, this.size] };
  }
}
