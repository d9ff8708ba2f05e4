/**
 * A window cut from a live stream and the same seconds as a file give the same answer: the stream
 * (MPEG-TS with B-frames, pushed through the stream worker) against files holding exactly that
 * window's frames (cut with ffmpeg's select, re-encoded losslessly), classified as any upload is.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type LiveWindow } from '../../../src/engine/index.js';
import { fixture } from '../../helpers/media.js';
import { TINY_MODEL } from '../../helpers/paths.js';

let engine: Engine;
let dir: string;
beforeAll(async () => {
  engine = await createEngine({ modelDir: TINY_MODEL, config: { executionProviders: ['cpu'], intraOpNumThreads: 1 } });
  dir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-live-equality-'));
});
afterAll(async () => {
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Frames [first, first + count) of `file` (presentation order), losslessly, as their own file. */
function cut(file: string, first: number, count: number): string {
  const out = path.join(dir, `cut-${first}.mkv`);
  const select = `select='between(n\\,${first}\\,${first + count - 1})',setpts=N/25/TB`;
  execFileSync('ffmpeg', ['-y', '-v', 'error', '-i', file, '-vf', select, '-c:v', 'libx264', '-qp', '0', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', out]);
  return out;
}

describe('a window of a stream and the same seconds as a file', () => {
  it('sample the same frames and get the same answer', async () => {
    const file = fixture('live.mpegts');
    const windows: LiveWindow[] = [];
    const live = engine.openStream({ name: 'the stream', windowMs: 2000, strideMs: 1000, source: { kind: 'pipe', format: 'mpegts' }, paced: false, dir }, { started: () => undefined, window: (w) => windows.push(w) });
    createReadStream(file).pipe(live.input);
    const summary = await live.done;
    expect(summary.windows).toBe(5);
    const knobs = engine.validateKnobs({ top_k: 5 });
    for (const k of [0, 3]) {
      const window = windows[k] as LiveWindow;
      expect(window.frameCount).toBe(50);
      const fromStream = await engine.classifyFrames(window, knobs);
      // Window k holds frames 25k .. 25k + 49 of the stream (25 fps, a stride of one second).
      const fromFile = await engine.classify(cut(file, 25 * k, 50), knobs, { probabilities: true });
      expect(fromFile.video.frame_count).toBe(50);
      expect(window.slotTimesS.map((s) => Math.round(s * 25) - 25 * k)).toEqual(fromFile.video.sampled_indices);
      expect(Array.from(fromStream.probabilities)).toEqual(Array.from(fromFile.probabilities ?? []));
      expect(fromStream.top).toEqual(fromFile.top);
      expect(fromStream.tokens).toEqual(fromFile.tokens);
      expect(fromStream.gflops).toBe(fromFile.gflops);
    }
  }, 60_000);
});
