/**
 * `haltingvt classify FILE --explain out.png` with the real engine and the tiny model: the PNG is
 * the /demo figure (frames with the stop map over them, legend, tokens per layer), one per file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { figurePaths, main } from '../src/cli.js';
import { createEngine, type ClassifyResult } from '../src/engine/index.js';
import { layerColour } from '../src/figure/colours.js';
import { renderFigure, type ExplainedResult } from '../src/figure/render.js';
import { fixture } from './helpers/media.js';
import { ROOT, TINY_MODEL } from './helpers/paths.js';
import { sink } from './helpers/sink.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-figure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]) {
  const out = sink();
  const err = sink();
  const code = await main([...args, '--model', TINY_MODEL, '--providers', 'cpu', '--threads', '1'], { stdout: out.stream, stderr: err.stream, createEngine, cwd: ROOT });
  return { code, stdout: out.text(), stderr: err.text() };
}

const pixel = (png: PNG, x: number, y: number): number[] => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));

describe('haltingvt classify --explain', () => {
  it('writes the figure: frames with the stop map over them, the legend in the stop colours, the label', async () => {
    const out = path.join(dir, 'one.png');
    const { code, stdout } = await cli(['classify', fixture('clip.mp4'), '--explain', out, '--keep-ratio', String(1 / 3)]);
    expect(code).toBe(0);
    const line = JSON.parse(stdout.trim()) as Record<string, unknown>;
    expect(line.figure).toBe(out);
    expect(line).not.toHaveProperty('explain'); // the thumbnails are in the PNG, not on stdout
    const png = PNG.sync.read(readFileSync(out));
    expect(png.width).toBeGreaterThanOrEqual(2 * 12 + 4 * 96 + 3 * 6);
    expect(png.height).toBeGreaterThan(96 + 100);

    // Redraw from the same answer: a figure of what the engine said, not of anything else.
    const engine = await createEngine({ modelDir: TINY_MODEL, config: { executionProviders: ['cpu'], intraOpNumThreads: 1 } });
    let result: ClassifyResult;
    try {
      result = await engine.classify(fixture('clip.mp4'), engine.validateKnobs({ keep_ratio: 1 / 3 }), { explain: true });
    } finally {
      await engine.close();
    }
    expect(Buffer.compare(renderFigure(result as ExplainedResult), readFileSync(out))).toBe(0);

    // keep 1/3 of a 3×3 grid: 6 of 9 patches per frame were dropped and drawn near-black over the frame.
    const e = result.explain!;
    const side = 96; // 48 px thumbnails drawn twice as large
    const framesY = 12 + 23 + 18 + 4;
    const dropped = e.stop_map[0]!.findIndex((l) => l === 0);
    const cx = 12 + (dropped % 3) * 32 + 16;
    const cy = framesY + Math.floor(dropped / 3) * 32 + 16;
    const thumb = PNG.sync.read(Buffer.from(e.thumbnails.data[0]!, 'base64'));
    const under = pixel(thumb, Math.floor((cx - 12) / 2), Math.floor((cy - framesY) / 2));
    const expected = layerColour(0, 4).map((c, i) => Math.round(under[i]! * 0.22 + c * 0.78));
    pixel(png, cx, cy).forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1));
    // The legend's first swatch is the dropped colour itself.
    const legendY = framesY + side + 18 + 6;
    expect(pixel(png, 12 + 7, legendY + 7)).toEqual([...layerColour(0, 4)]);
  });

  it('writes one figure per file with progress lines on stderr when it is not a terminal', async () => {
    const out = path.join(dir, 'many.png');
    const { code, stderr } = await cli(['classify', fixture('clip.mp4'), fixture('three.mp4'), '--explain', out]);
    expect(code).toBe(0);
    expect(stderr).toContain(`haltingvt: 1/2 ${fixture('clip.mp4')}`);
    expect(stderr).toContain(`haltingvt: 2/2 ${fixture('three.mp4')}`);
    for (const name of ['many-clip.png', 'many-three.png']) expect(PNG.sync.read(readFileSync(path.join(dir, name))).width).toBeGreaterThan(400);
  });

  it('names the figures after the files, numbering repeated names', () => {
    expect(figurePaths('out.png', ['a/clip.mp4'])).toEqual(['out.png']);
    expect(figurePaths('fig.png', ['a/clip.mp4', 'b/clip.mp4', 'c/my file.webm'])).toEqual(['fig-clip.png', 'fig-clip-2.png', 'fig-my_file.png']);
  });
});
