/**
 * Small media fixtures, generated with the system ffmpeg on first use into test/.cache/media
 * (gitignored). Each is written under a temporary name and renamed, so parallel test files can ask
 * for the same fixture.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CACHE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.cache', 'media');

const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
const src = (size: string, seconds: number, rate = 25): string[] => ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${seconds}`];

/** name → ffmpeg arguments writing to the path given last (or a function that writes the file). */
const RECIPES: Record<string, (out: string) => void> = {
  'clip.mp4': (out) => ffmpeg([...src('320x240', 2), ...X264, out]),
  'clip-audio.mp4': (out) => ffmpeg([...src('320x240', 2), '-f', 'lavfi', '-i', 'sine=duration=2', ...X264, '-c:a', 'aac', '-shortest', out]),
  'faststart.mp4': (out) => ffmpeg([...src('320x240', 2), ...X264, '-movflags', '+faststart', out]),
  'audio.m4a': (out) => ffmpeg(['-f', 'lavfi', '-i', 'sine=duration=1', '-c:a', 'aac', out]),
  'image.png': (out) => ffmpeg([...src('64x48', 1), '-frames:v', '1', out]),
  'three.mp4': (out) => ffmpeg([...src('160x120', 1), ...X264, '-frames:v', '3', out]),
  'one.mp4': (out) => ffmpeg([...src('160x120', 1), ...X264, '-frames:v', '1', out]),
  // Rotation metadata only sticks when the stream is copied (ffmpeg 5).
  'rotated.mp4': (out) => ffmpeg(['-i', fixture('clip.mp4'), '-c', 'copy', '-metadata:s:v:0', 'rotate=90', out]),
  'vfr.mkv': (out) => ffmpeg([...src('320x240', 2), '-vf', "select='lt(mod(n,5),2)+gt(n,40)'", '-vsync', 'vfr', ...X264, out]),
  'odd.mp4': (out) => ffmpeg([...src('320x240', 1), '-vf', 'scale=333:187', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p', out]),
  // Keyframe every 10 frames, with B-frames (reordering), so the frame plan seeks.
  'gop.mp4': (out) => ffmpeg([...src('320x240', 4), '-c:v', 'libx264', '-preset', 'veryfast', '-g', '10', '-bf', '2', '-pix_fmt', 'yuv420p', out]),
  'gop.webm': (out) => ffmpeg([...src('240x320', 3), '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-g', '12', out]),
  // Live streams: 25 fps with B-frames (reordering) and a keyframe each second, in each container a
  // client may push.
  'live.mpegts': (out) => ffmpeg([...src('640x360', 6), '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-bf', '2', '-pix_fmt', 'yuv420p', out]),
  'live-small.mpegts': (out) => ffmpeg([...src('320x240', 3), '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-bf', '2', '-pix_fmt', 'yuv420p', out]),
  'live.webm': (out) => ffmpeg([...src('320x240', 4), '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-g', '25', out]),
  'live-fragmented.mp4': (out) => ffmpeg([...src('320x240', 4), ...X264, '-g', '25', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', out]),
  'garbage.mp4': (out) => writeFileSync(out, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251))),
  // The index (moov) is at the start and intact, but half of the frames' data is gone.
  'truncated-faststart.mp4': (out) => {
    const whole = readFileSync(fixture('faststart.mp4'));
    writeFileSync(out, whole.subarray(0, Math.floor(whole.length / 2)));
  },
  'truncated.mp4': (out) => {
    const whole = readFileSync(fixture('clip.mp4'));
    writeFileSync(out, whole.subarray(0, Math.floor(whole.length / 2)));
  },
};

export type FixtureName = keyof typeof RECIPES;

export function fixture(name: string): string {
  const recipe = RECIPES[name];
  if (!recipe) throw new Error(`unknown fixture ${name}`);
  const file = path.join(CACHE, name);
  if (existsSync(file)) return file;
  mkdirSync(CACHE, { recursive: true });
  const tmp = path.join(CACHE, `.${process.pid}.${name}`);
  recipe(tmp);
  renameSync(tmp, file);
  return file;
}

export function ffmpeg(args: string[]): void {
  const out = args[args.length - 1] as string;
  // The temporary name hides the extension from ffmpeg, so name the container explicitly.
  const ext = path.extname(out.replace(/^\.\d+\./, '')).slice(1);
  const format = { mp4: 'mp4', m4a: 'ipod', png: 'image2', mkv: 'matroska', webm: 'webm', mpegts: 'mpegts' }[ext];
  const head = args.slice(0, -1);
  execFileSync('ffmpeg', ['-y', '-v', 'error', ...head, ...(format ? ['-f', format] : []), out], { stdio: ['ignore', 'ignore', 'pipe'] });
}
