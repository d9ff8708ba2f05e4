import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { chooseStrategy, decodeFrames, type DecodeConfig } from '../../src/engine/decode.js';
import type { FfmpegRunner } from '../../src/engine/ffmpeg-runner.js';
import { cropGeometry } from '../../src/engine/preprocess.js';
import { probe, type VideoInfo } from '../../src/engine/probe.js';
import { realRunner, recordingRunner } from '../helpers/ffmpeg.js';
import { fixture } from '../helpers/media.js';
import { GOLDEN, golden } from '../helpers/paths.js';

const runner = realRunner();
const config: DecodeConfig = { timeoutMs: 20_000, seekMinDurationS: 30, seekConcurrency: 2 };

async function decode(file: string, options: Partial<DecodeConfig> & { frames?: number; size?: number; short?: number; run?: FfmpegRunner; info?: Partial<VideoInfo> } = {}) {
  const { frames = 8, size = 112, short = 128, run = runner } = options;
  const info = { ...(await probe(runner, file, { timeoutMs: 10_000 })), ...options.info };
  const geometry = cropGeometry(info.width, info.height, short, size);
  const out = new Uint8Array(frames * size * size * 3);
  const result = await decodeFrames(run, { file, info, frames, geometry, scaleFlags: 'bilinear', out, now: () => performance.now() }, { ...config, ...options });
  return { result, out, info };
}

/** The frames in slot order, as Python's sample_video returns them. */
function slots(out: Uint8Array, slotToFrame: number[], size = 112): Buffer {
  const bytes = size * size * 3;
  return Buffer.concat(slotToFrame.map((k) => Buffer.from(out.subarray(k * bytes, (k + 1) * bytes))));
}

describe('decodeFrames', () => {
  it('decodes the segment-centre frames of a clip in one select pass', async () => {
    const run = recordingRunner(runner);
    const { result } = await decode(fixture('clip.mp4'), { run });
    expect(result).toMatchObject({ strategy: 'select', frameCount: 50, frameCountSource: 'container', decoded: 8, padded: 0 });
    expect(result.indices).toEqual([3, 9, 15, 21, 28, 34, 40, 46]);
    expect(run.calls).toHaveLength(1);
    expect(run.calls[0]?.args).toContain('-frames:v');
  });

  it('gets the same pixels by seeking as by selecting on a constant-rate clip', async () => {
    const select = await decode(fixture('clip.mp4'), { strategy: 'select' });
    const seek = await decode(fixture('clip.mp4'), { strategy: 'seek' });
    expect(seek.result.strategy).toBe('seek');
    expect(seek.result.indices).toEqual(select.result.indices);
    expect(Buffer.from(seek.out).equals(Buffer.from(select.out))).toBe(true);
  });

  it('repeats frames of a clip shorter than the model needs', async () => {
    const { result } = await decode(fixture('three.mp4'));
    expect(result.indices).toEqual([0, 0, 0, 1, 1, 2, 2, 2]);
    expect(result.decoded).toBe(3);
    expect(result.slotToFrame).toEqual([0, 0, 0, 1, 1, 2, 2, 2]);
  });

  it('works with a single-frame clip', async () => {
    const { result } = await decode(fixture('one.mp4'));
    expect(result.slotToFrame).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('counts packets when the container has no frame count (VFR mkv)', async () => {
    const run = recordingRunner(runner);
    const { result } = await decode(fixture('vfr.mkv'), { run });
    expect(result).toMatchObject({ strategy: 'select', frameCountSource: 'counted', padded: 0 });
    expect(result.frameCount).toBe(26);
    expect(run.calls.map((c) => c.tool)).toEqual(['ffprobe', 'ffmpeg']);
  });

  it('copes with a container that states neither duration nor frame count', async () => {
    const { result } = await decode(fixture('clip.mp4'), { info: { durationS: undefined, frameCount: undefined } });
    expect(result).toMatchObject({ strategy: 'select', frameCountSource: 'counted', frameCount: 50, decoded: 8 });
  });

  it('decodes rotated and odd-sized videos to full crops', async () => {
    for (const name of ['rotated.mp4', 'odd.mp4']) {
      const { result } = await decode(fixture(name));
      expect(result.decoded).toBe(8);
    }
  });

  it('recounts when the container promises frames that are not there, then pads what is still missing', async () => {
    const run = recordingRunner(runner);
    const { result } = await decode(fixture('three.mp4'), { run, info: { frameCount: 80 } });
    expect(result).toMatchObject({ frameCountSource: 'counted', frameCount: 3, padded: 0 });
    expect(run.calls.map((c) => c.tool)).toEqual(['ffmpeg', 'ffprobe', 'ffmpeg']);
  });

  it('decodes what survives of a truncated file whose index is intact', async () => {
    const { result, info } = await decode(fixture('truncated-faststart.mp4'));
    expect(info.frameCount).toBe(50);
    expect(result.frameCount).toBeLessThan(50);
    expect(result.decoded).toBeGreaterThan(0);
    expect(Math.max(...result.slotToFrame)).toBe(result.decoded - 1);
  });

  it('falls back from seeking to select when the duration lies', async () => {
    const run = recordingRunner(runner);
    const { result } = await decode(fixture('three.mp4'), { run, strategy: 'seek', info: { durationS: 60, frameCount: undefined, fps: 25 } });
    expect(result.strategy).toBe('select');
    expect(result.frameCount).toBe(3);
    expect(run.calls.filter((c) => c.args.includes('-ss')).length).toBeGreaterThan(0);
  });

  it('fails with DECODE_TIMEOUT when ffmpeg is too slow, and kills it', async () => {
    let pid: number | undefined;
    const slow: FfmpegRunner = {
      run: (tool, args, options) => runner.run(tool, tool === 'ffmpeg' ? ['-re', ...args] : args, options).then((r) => ((pid = r.pid), r)),
    };
    const error = await decode(fixture('clip.mp4'), { run: slow, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(isEngineError(error, 'DECODE_TIMEOUT')).toBe(true);
    expect(pid).toBeUndefined(); // the run never resolved: it was killed
  });

  it('chooses seek only for long videos it can seek in', () => {
    const base = { durationS: 120, fps: 25, frameCount: undefined } as unknown as VideoInfo;
    expect(chooseStrategy(base, 30)).toBe('seek');
    expect(chooseStrategy({ ...base, durationS: 10 }, 30)).toBe('select');
    expect(chooseStrategy({ ...base, durationS: undefined }, 30)).toBe('select');
    expect(chooseStrategy({ ...base, fps: undefined }, 30)).toBe('select');
  });
});

describe('parity with the Python decoder (models/golden/frames)', () => {
  const { cases } = golden<{ cases: Array<{ video: string; frames_file: string; decoded_frames: number; frames: number; size: number; resize_short_side: number }> }>(
    'frames/expected.json',
  );

  it.each(cases.map((c) => [c.video, c] as const))('%s decodes to the same bytes', async (_name, c) => {
    const file = path.join(GOLDEN, 'frames', c.video);
    const { result, out } = await decode(file, { frames: c.frames, size: c.size, short: c.resize_short_side });
    expect(result.frameCount).toBe(c.decoded_frames);
    const expected = readFileSync(path.join(GOLDEN, 'frames', c.frames_file));
    const actual = slots(out, result.slotToFrame, c.size);
    expect(actual.length).toBe(expected.length);
    expect(actual.equals(expected)).toBe(true);
  });
});
