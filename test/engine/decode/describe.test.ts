import { describe as suite, expect, it } from 'vitest';
import { checkLimits, describe, displayRotation, rotateFilters, type ContainerFacts, type StreamFacts } from '../../../src/engine/decode/describe.js';
import { isEngineError } from '../../../src/errors.js';

const video: StreamFacts = {
  index: 0,
  type: 'video',
  codec: 'h264',
  width: 640,
  height: 480,
  attachedPic: false,
  durationS: 2,
  startS: 0,
  fps: 25,
  frameCount: 50,
  displayMatrix: undefined,
};
const container = (streams: StreamFacts[], format = 'mov,mp4,m4a,3gp,3g2,mj2'): ContainerFacts => ({ format, durationS: 2.1, streams });
/** A display matrix for `degrees` counter-clockwise, as muxers write it (16.16 fixed point). */
const matrix = (degrees: number): number[] => {
  const r = (degrees * Math.PI) / 180;
  const f = (x: number) => Math.round(x * 65536);
  return [f(Math.cos(r)), f(-Math.sin(r)), 0, f(Math.sin(r)), f(Math.cos(r)), 0, 0, 0, 1 << 30];
};

suite('describe (the one open → VideoInfo)', () => {
  it('describes a plain video', () => {
    expect(describe(container([video]), 'x')).toMatchObject({ codec: 'h264', width: 640, height: 480, rotation: 0, durationS: 2, frameCount: 50, rotateFilters: [] });
  });

  it('treats cover art in an audio file as no video', () => {
    const streams: StreamFacts[] = [{ ...video, type: 'audio' }, { ...video, index: 1, attachedPic: true }];
    expect(() => describe(container(streams, 'mp3'), 'song.mp3')).toThrow(/no video stream \(audio only\)/);
  });

  it.each([
    [[], 'VIDEO_NO_STREAM'],
    [[{ ...video, type: 'other' as const }], 'VIDEO_NO_STREAM'],
    [[{ ...video, width: 0 }], 'VIDEO_UNDECODABLE'],
    [[{ ...video, codec: undefined }], 'VIDEO_UNDECODABLE'],
  ])('refuses streams %j with %s', (streams, code) => {
    const error = (() => {
      try {
        describe(container(streams as StreamFacts[]), 'x');
      } catch (err) {
        return err;
      }
    })();
    expect(isEngineError(error, code as 'VIDEO_NO_STREAM')).toBe(true);
  });

  it('refuses still images by their demuxer', () => {
    expect(() => describe(container([video], 'png_pipe'), 'a.png')).toThrow(/still image/);
  });

  it('swaps width and height for a quarter turn, and falls back to the container duration', () => {
    const info = describe(container([{ ...video, displayMatrix: matrix(90), durationS: undefined }]), 'x');
    expect(info).toMatchObject({ rotation: 90, width: 480, height: 640, durationS: 2.1 });
  });
});

suite('rotation (display matrix)', () => {
  it('reads the angle as ffprobe prints it', () => {
    expect(displayRotation(matrix(90))).toBeCloseTo(90, 6);
    expect(displayRotation(matrix(-90))).toBeCloseTo(-90, 6);
    expect(displayRotation(matrix(180))).toBeCloseTo(180, 6);
  });

  it('inserts the filters of ffmpeg 5.1 autorotate', () => {
    expect(rotateFilters(undefined)).toEqual([]);
    expect(rotateFilters(matrix(0))).toEqual([]);
    expect(rotateFilters(matrix(90))).toEqual(['transpose=cclock']);
    expect(rotateFilters(matrix(-90))).toEqual(['transpose=clock']);
    expect(rotateFilters(matrix(180))).toEqual(['hflip', 'vflip']);
    // A mirrored matrix (negative determinant) keeps its flip.
    expect(rotateFilters([65536, 0, 0, 0, -65536, 0, 0, 0, 1 << 30])).toEqual(['vflip']);
    expect(rotateFilters(matrix(30))).toEqual(['rotate=330.000000*PI/180']);
  });
});

suite('checkLimits', () => {
  const limits = { maxDurationS: 60, maxPixels: 1920 * 1080 };
  it('passes what is inside the limits, and an unknown duration', () => {
    expect(() => checkLimits({ width: 1920, height: 1080, durationS: 60 }, limits, 'x')).not.toThrow();
    expect(() => checkLimits({ width: 1920, height: 1080, durationS: undefined }, limits, 'x')).not.toThrow();
  });

  it('refuses long and large videos with their codes', () => {
    expect(() => checkLimits({ width: 64, height: 64, durationS: 61 }, limits, 'x')).toThrow(expect.objectContaining({ code: 'VIDEO_TOO_LONG' }));
    expect(() => checkLimits({ width: 3840, height: 2160, durationS: 1 }, limits, 'x')).toThrow(expect.objectContaining({ code: 'VIDEO_TOO_LARGE' }));
  });
});
