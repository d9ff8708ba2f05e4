/**
 * The decode stage on real files, in this process (the same code a decode worker runs; the pool and
 * its processes are tested in pool.test.ts). Pixels are held to the ffmpeg command line, which is
 * what the Python sampler and so training use, and to the committed golden frames.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeVideo, type DecodeJob } from '../../../src/engine/decode/decode-video.js';
import { cropGeometry } from '../../../src/engine/preprocess.js';
import { isEngineError, type ErrorCode } from '../../../src/errors.js';
import { ffmpegSelect } from '../../helpers/ffmpeg-cli.js';
import { fixture } from '../../helpers/media.js';
import { GOLDEN, golden } from '../../helpers/paths.js';

const limits = { maxDurationS: 3600, maxPixels: 4096 * 4096 };
const decode = (file: string, job: Partial<DecodeJob> = {}) =>
  decodeVideo({ file, name: file, frames: 8, size: 112, resizeShortSide: 128, scaleFlags: 'bilinear', limits, ...job }, { threads: 2, hardware: null });

/** The frames in slot order, as Python's sample_video returns them. */
function slots(rgb: Uint8Array, slotToFrame: number[], size = 112): Buffer {
  const bytes = size * size * 3;
  return Buffer.concat(slotToFrame.map((k) => Buffer.from(rgb.subarray(k * bytes, (k + 1) * bytes))));
}

function codeOf(run: () => unknown): ErrorCode | undefined {
  try {
    run();
  } catch (err) {
    if (isEngineError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('decodeVideo on real files', () => {
  it('samples the segment-centre frames of a clip, decoding forward from the only keyframe', () => {
    const r = decode(fixture('clip.mp4'));
    expect(r).toMatchObject({ frameCount: 50, frameCountSource: 'container', padded: 0, seeks: 0 });
    expect(r.info).toMatchObject({ codec: 'h264', width: 320, height: 240, rotation: 0, durationS: 2, fps: 25, audioStreams: 0 });
    expect(r.indices).toEqual([3, 9, 15, 21, 28, 34, 40, 46]);
    expect(r.decodedFrames).toBe(47); // frames 0..46, none twice
    expect(r.rgb.length).toBe(8 * 112 * 112 * 3);
  });

  it.each(['gop.mp4', 'gop.webm'])('seeks past whole GOPs in %s and still gets the frames the command line selects', (name) => {
    const file = fixture(name);
    const r = decode(file);
    expect(r.seeks).toBeGreaterThan(0);
    expect(r.decodedFrames).toBeLessThanOrEqual(r.plannedFrames);
    expect(r.plannedFrames).toBeLessThan((r.indices.at(-1) as number) + 1); // less than one select pass
    const unique = [...new Set(r.indices)];
    expect(Buffer.from(r.rgb).equals(ffmpegSelect(file, unique, cropGeometry(r.info.width, r.info.height, 128, 112)))).toBe(true);
  });

  it('leaves the non-reference H.264 frames it passes undecoded, and decodes every VP9 frame it passes', () => {
    // gop.mp4 has B-frames (x264 defaults); the bytes are held to the command line above.
    const h264 = decode(fixture('gop.mp4'));
    expect(h264.decodedFrames).toBeGreaterThanOrEqual(new Set(h264.indices).size);
    expect(h264.decodedFrames).toBeLessThan(h264.plannedFrames);
    const vp9 = decode(fixture('gop.webm'));
    expect(vp9.decodedFrames).toBe(vp9.plannedFrames);
  });

  it.each(['rotated.mp4', 'odd.mp4', 'vfr.mkv', 'clip-audio.mp4', 'faststart.mp4'])('gives the same bytes as the command line for %s', (name) => {
    const file = fixture(name);
    const r = decode(file);
    expect(r.padded).toBe(0);
    const expected = ffmpegSelect(file, [...new Set(r.indices)], cropGeometry(r.info.width, r.info.height, 128, 112));
    expect(Buffer.from(r.rgb).equals(expected)).toBe(true);
  });

  it('turns a rotated video upright and reports its rotation', () => {
    expect(decode(fixture('rotated.mp4')).info).toMatchObject({ codedWidth: 320, codedHeight: 240, width: 240, height: 320, rotation: 90 });
  });

  it('counts packets when the container has no frame count (VFR mkv)', () => {
    expect(decode(fixture('vfr.mkv'))).toMatchObject({ frameCountSource: 'counted', frameCount: 26, padded: 0 });
  });

  it('repeats frames of clips shorter than the model needs', () => {
    const three = decode(fixture('three.mp4'));
    expect(three.indices).toEqual([0, 0, 0, 1, 1, 2, 2, 2]);
    expect(three.slotToFrame).toEqual([0, 0, 0, 1, 1, 2, 2, 2]);
    expect(decode(fixture('one.mp4')).slotToFrame).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('samples what survives of a truncated file whose index is intact, and does not believe the index', () => {
    const r = decode(fixture('truncated-faststart.mp4'));
    expect(r.info.frameCount).toBe(50);
    expect(r).toMatchObject({ frameCountSource: 'counted' });
    expect(r.frameCount).toBeLessThan(50);
    expect(r.frameCount).toBeGreaterThan(0);
    expect(Math.max(...r.slotToFrame)).toBeLessThan(r.indices.length);
  });

  it.each([
    ['audio.m4a', 'VIDEO_NO_STREAM'],
    ['image.png', 'VIDEO_STILL_IMAGE'],
    ['garbage.mp4', 'VIDEO_UNDECODABLE'],
    ['truncated.mp4', 'VIDEO_UNDECODABLE'],
  ] as const)('refuses %s with %s', (name, code) => {
    expect(codeOf(() => decode(fixture(name)))).toBe(code);
  });

  it('checks duration and pixels from the open, before decoding', () => {
    expect(codeOf(() => decode(fixture('clip.mp4'), { limits: { ...limits, maxDurationS: 1.5 } }))).toBe('VIDEO_TOO_LONG');
    expect(codeOf(() => decode(fixture('clip.mp4'), { limits: { ...limits, maxPixels: 320 * 240 - 1 } }))).toBe('VIDEO_TOO_LARGE');
    // The limit is on the upright frame; a quarter turn does not change the pixel count.
    expect(codeOf(() => decode(fixture('rotated.mp4'), { limits: { ...limits, maxPixels: 320 * 240 } }))).toBeUndefined();
  });
});

describe('parity with the Python decoder (models/golden/frames)', () => {
  const { cases } = golden<{ cases: Array<{ video: string; frames_file: string; decoded_frames: number; frames: number; size: number; resize_short_side: number }> }>(
    'frames/expected.json',
  );

  it.each(cases.map((c) => [c.video, c] as const))('%s decodes to the same bytes', (_name, c) => {
    const r = decode(path.join(GOLDEN, 'frames', c.video), { frames: c.frames, size: c.size, resizeShortSide: c.resize_short_side });
    expect(r.frameCount).toBe(c.decoded_frames);
    const expected = readFileSync(path.join(GOLDEN, 'frames', c.frames_file));
    const actual = slots(r.rgb, r.slotToFrame, c.size);
    expect(actual.length).toBe(expected.length);
    expect(actual.equals(expected)).toBe(true);
  });
});
