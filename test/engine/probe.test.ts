import { describe, expect, it } from 'vitest';
import { isEngineError, type ErrorCode } from '../../src/errors.js';
import { describe as describeProbe, probe } from '../../src/engine/probe.js';
import { realRunner } from '../helpers/ffmpeg.js';
import { fixture } from '../helpers/media.js';

const runner = realRunner();
const probeFile = (name: string) => probe(runner, fixture(name), { timeoutMs: 10_000 });

async function errorCode(name: string): Promise<ErrorCode | undefined> {
  try {
    await probeFile(name);
  } catch (err) {
    if (isEngineError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('probe on real files', () => {
  it('describes an H.264 mp4 with moov at the end', async () => {
    const info = await probeFile('clip.mp4');
    expect(info).toMatchObject({ codec: 'h264', width: 320, height: 240, rotation: 0, frameCount: 50, fps: 25, durationS: 2, audioStreams: 0 });
  });

  it('describes the same clip with moov at the start identically', async () => {
    const [end, start] = await Promise.all([probeFile('clip.mp4'), probeFile('faststart.mp4')]);
    expect(start).toEqual(end);
  });

  it('picks the video stream next to an audio stream', async () => {
    expect(await probeFile('clip-audio.mp4')).toMatchObject({ streamIndex: 0, audioStreams: 1, width: 320 });
  });

  it('swaps width and height for a quarter-turn rotation', async () => {
    expect(await probeFile('rotated.mp4')).toMatchObject({ codedWidth: 320, codedHeight: 240, width: 240, height: 320, rotation: 90 });
  });

  it('keeps odd sizes', async () => {
    expect(await probeFile('odd.mp4')).toMatchObject({ width: 333, height: 187 });
  });

  it('leaves the frame count unknown when the container (mkv, VFR) does not say', async () => {
    const info = await probeFile('vfr.mkv');
    expect(info.frameCount).toBeUndefined();
    expect(info.durationS).toBeGreaterThan(1.5);
  });

  it.each([
    ['audio.m4a', 'VIDEO_NO_STREAM'],
    ['image.png', 'VIDEO_STILL_IMAGE'],
    ['garbage.mp4', 'VIDEO_UNDECODABLE'],
    ['truncated.mp4', 'VIDEO_UNDECODABLE'],
  ] as const)('refuses %s with %s', async (name, code) => {
    expect(await errorCode(name)).toBe(code);
  });

  it('puts ffprobe\'s reason in the message', async () => {
    const err = await probeFile('truncated.mp4').catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/moov atom not found/);
  });
});

describe('describe (ffprobe JSON → VideoInfo)', () => {
  const video = { index: 0, codec_type: 'video', codec_name: 'h264', width: 640, height: 480 };

  it('treats cover art in an audio file as no video', () => {
    const parsed = { streams: [{ index: 0, codec_type: 'audio' }, { ...video, index: 1, disposition: { attached_pic: 1 } }], format: { format_name: 'mp3' } };
    expect(() => describeProbe(parsed, 'song.mp3')).toThrow(/no video stream \(audio only\)/);
  });

  it('reads the legacy clockwise rotate tag (ffprobe 4)', () => {
    const info = describeProbe({ streams: [{ ...video, tags: { rotate: '90' } }], format: { format_name: 'mov' } }, 'x');
    expect(info).toMatchObject({ rotation: 270, width: 480, height: 640 });
  });

  it('normalises a display matrix of -90 degrees', () => {
    const info = describeProbe({ streams: [{ ...video, side_data_list: [{ side_data_type: 'Display Matrix', rotation: -90 }] }], format: {} }, 'x');
    expect(info).toMatchObject({ rotation: 270, width: 480, height: 640 });
  });

  it('survives a missing or lying duration and frame rate', () => {
    const info = describeProbe({ streams: [{ ...video, duration: 'N/A', nb_frames: '0', avg_frame_rate: '0/0', r_frame_rate: '30000/1001' }], format: { duration: 'N/A' } }, 'x');
    expect(info.durationS).toBeUndefined();
    expect(info.frameCount).toBeUndefined();
    expect(info.fps).toBeCloseTo(29.97, 2);
  });

  it('refuses a video stream without a size', () => {
    expect(() => describeProbe({ streams: [{ ...video, width: 0 }], format: {} }, 'x')).toThrow(/no known codec or size/);
  });
});
