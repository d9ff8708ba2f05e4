/**
 * The CLI's `--explain out.png`: the figure /demo draws, as a PNG. The top label and GFLOPs against
 * dense, the sampled frames as the model saw them with the stop map over them and a legend, then
 * tokens per joint layer against a dense run. Drawn into an RGBA buffer and encoded with pngjs.
 */
import { PNG } from 'pngjs';
import type { ClassifyResult } from '../engine/index.js';
import { layerColour, STOP_COLOURS, type Rgb } from './colours.js';
import { glyph, GLYPH_HEIGHT, GLYPH_WIDTH, textWidth } from './font.js';

const MARGIN = 12;
const GAP = 6;
const TEXT = 2; // font scale: 6×10 px glyphs
const INK: Rgb = [29, 35, 48];
const MUTED: Rgb = [90, 100, 120];
const TRACK: Rgb = [222, 226, 234];
const BAR: Rgb = [36, 86, 166];
const MERGED: Rgb = [192, 122, 27];

/** A result with its explanation (classify with `explain: true`). */
export type ExplainedResult = ClassifyResult & { explain: NonNullable<ClassifyResult['explain']> };

class Raster {
  readonly data: Buffer;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = Buffer.alloc(width * height * 4, 255);
  }

  fill(x: number, y: number, w: number, h: number, [r, g, b]: Rgb, alpha = 1): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const i = (yy * this.width + xx) * 4;
        const d = this.data;
        d[i] = Math.round((d[i] as number) * (1 - alpha) + r * alpha);
        d[i + 1] = Math.round((d[i + 1] as number) * (1 - alpha) + g * alpha);
        d[i + 2] = Math.round((d[i + 2] as number) * (1 - alpha) + b * alpha);
      }
    }
  }

  /** Copies an image, each pixel a `scale`×`scale` block. */
  blit(image: PNG, x: number, y: number, scale: number): void {
    for (let sy = 0; sy < image.height; sy++) {
      for (let sx = 0; sx < image.width; sx++) {
        const s = (sy * image.width + sx) * 4;
        this.fill(x + sx * scale, y + sy * scale, scale, scale, [image.data[s] as number, image.data[s + 1] as number, image.data[s + 2] as number]);
      }
    }
  }

  text(text: string, x: number, y: number, colour: Rgb = INK, scale = TEXT): void {
    Array.from(text).forEach((ch, k) => {
      const rows = glyph(ch);
      const left = x + k * (GLYPH_WIDTH + 1) * scale;
      rows.forEach((row, ry) => row.forEach((on, rx) => on && this.fill(left + rx * scale, y + ry * scale, scale, scale, colour)));
    });
  }

  png(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    this.data.copy(png.data);
    return PNG.sync.write(png);
  }
}

export function renderFigure(result: ExplainedResult): Buffer {
  const e = result.explain;
  const frames = e.thumbnails.data.map((b64) => PNG.sync.read(Buffer.from(b64, 'base64')));
  const scale = Math.max(1, Math.round(112 / e.thumbnails.size));
  const side = e.thumbnails.size * scale;
  const lineHeight = GLYPH_HEIGHT * TEXT + 8;
  const layers = result.tokens.per_layer.length;
  const width = Math.max(2 * MARGIN + frames.length * side + (frames.length - 1) * GAP, 520);

  const titleHeight = GLYPH_HEIGHT * 3 + 8;
  const framesY = MARGIN + titleHeight + lineHeight + 4;
  const legendY = framesY + side + lineHeight + 6;
  const chartY = legendY + lineHeight + 8;
  const rowHeight = 16;
  const height = chartY + lineHeight + layers * rowHeight + MARGIN;
  const canvas = new Raster(width, height);

  const [top] = result.top;
  canvas.text(top ? `${top.label} ${(100 * top.probability).toFixed(1)}%` : 'no label', MARGIN, MARGIN, INK, 3);
  const share = (100 * result.gflops) / result.dense_gflops;
  canvas.text(
    `${result.gflops.toFixed(3)} of ${result.dense_gflops.toFixed(3)} gflops dense (${share.toFixed(1)}%), ${result.tokens.total} of ${result.tokens.dense} tokens`,
    MARGIN,
    MARGIN + titleHeight,
    MUTED,
  );

  const { rows, cols, joint_layers: jointLayers } = e.grid;
  frames.forEach((image, slot) => {
    const x = MARGIN + slot * (side + GAP);
    canvas.blit(image, x, framesY, scale);
    const map = e.stop_map[e.slot_to_map_frame[slot] as number] ?? [];
    const w = side / cols;
    const h = side / rows;
    map.forEach((layer, p) => {
      canvas.fill(x + (p % cols) * w, framesY + Math.floor(p / cols) * h, w, h, layerColour(layer, jointLayers), layer === 0 ? STOP_COLOURS.droppedAlpha : STOP_COLOURS.haltedAlpha);
    });
    const ts = e.timestamps_s[slot];
    canvas.text(`#${e.sampled_indices[slot]}${ts === null || ts === undefined ? '' : ` ${ts.toFixed(2)}s`}`, x, framesY + side + 4, MUTED);
  });

  let x = MARGIN;
  for (let layer = 0; layer <= jointLayers; layer++) {
    const label = layer === 0 ? 'dropped' : `L${layer}`;
    canvas.fill(x, legendY, 14, 14, layerColour(layer, jointLayers));
    canvas.text(label, x + 18, legendY + 2);
    x += 18 + textWidth(label, TEXT) + 14;
  }

  canvas.text('tokens per joint layer (grey: dense)', MARGIN, chartY, MUTED);
  const dense = result.tokens.dense / layers;
  const trackX = MARGIN + textWidth('L00', TEXT) + 8;
  const trackW = width - trackX - MARGIN - textWidth('0000/0000', TEXT) - 8;
  result.tokens.per_layer.forEach((n, l) => {
    const y = chartY + lineHeight + l * rowHeight;
    canvas.text(`L${l + 1}`, MARGIN, y + 1);
    canvas.fill(trackX, y, trackW, rowHeight - 4, TRACK);
    canvas.fill(trackX, y, (trackW * Math.min(n, dense)) / dense, rowHeight - 4, BAR);
    const merged = result.tokens.merged_per_layer[l] ?? 0;
    if (merged > 0) canvas.fill(trackX, y + rowHeight - 7, (trackW * Math.min(merged, dense)) / dense, 3, MERGED);
    canvas.text(`${n}/${Math.round(dense)}`, trackX + trackW + 8, y + 1);
  });
  return canvas.png();
}
