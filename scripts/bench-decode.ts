/**
 * Decode strategies compared: one `select` pass vs one fast input seek per frame, on synthetic
 * 1080p H.264 clips (testsrc2, 25 fps) of several lengths and keyframe intervals (x264's default
 * is 250 frames = 10 s, the worst case for seeking; phones and streaming use 1-2 s).
 * Clips are generated once into bench/out/clips (gitignored). Prints a Markdown table.
 *
 *   npm run bench:decode -- [--seconds 10,30,120] [--gop 250] [--repeat 3]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeFrames, type DecodeStrategy } from '../src/engine/decode.js';
import { resolveFfmpegBinaries } from '../src/engine/ffmpeg-binaries.js';
import { createFfmpegRunner } from '../src/engine/ffmpeg-runner.js';
import { cropGeometry } from '../src/engine/preprocess.js';
import { probe } from '../src/engine/probe.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10,30,120' }, repeat: { type: 'string', default: '3' }, gop: { type: 'string', default: '250' }, frames: { type: 'string', default: '8' } } });
const lengths = values.seconds.split(',').map(Number);
const repeat = Number(values.repeat);
const frames = Number(values.frames);
const dir = path.join(process.cwd(), 'bench', 'out', 'clips');
const binaries = resolveFfmpegBinaries();
const runner = createFfmpegRunner(binaries);

function clip(seconds: number): string {
  const file = path.join(dir, `testsrc2-1080p-${seconds}s-g${values.gop}.mp4`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.part`;
  process.stderr.write(`generating ${file}\n`);
  execFileSync(binaries.ffmpeg, ['-y', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=25:duration=${seconds}`, '-c:v', 'libx264', '-preset', 'veryfast', '-g', values.gop, '-pix_fmt', 'yuv420p', '-f', 'mp4', tmp]);
  renameSync(tmp, file);
  return file;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

console.log(`ffmpeg: ${binaries.ffmpeg}; frames: ${frames}; median of ${repeat}; milliseconds for the decode stage (probe excluded)\n`);
console.log('| clip | select | seek (1 process at a time) | seek (2 in parallel) |');
console.log('|---|---|---|---|');
for (const seconds of lengths) {
  const file = clip(seconds);
  const info = await probe(runner, file, { timeoutMs: 30_000 });
  const geometry = cropGeometry(info.width, info.height, 128, 112);
  const out = new Uint8Array(frames * 112 * 112 * 3);
  const time = async (strategy: DecodeStrategy, concurrency: number): Promise<number> => {
    const runs: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const started = performance.now();
      const r = await decodeFrames(
        runner,
        { file, info, frames, geometry, scaleFlags: 'bilinear', out, now: () => performance.now() },
        { timeoutMs: 600_000, seekMinDurationS: 0, seekConcurrency: concurrency, strategy },
      );
      if (r.strategy !== strategy || r.decoded === 0) throw new Error(`${strategy} fell back`);
      runs.push(performance.now() - started);
    }
    return median(runs);
  };
  const select = await time('select', 1);
  const seek1 = await time('seek', 1);
  const seek2 = await time('seek', 2);
  console.log(`| ${seconds} s 1080p, keyframe every ${Number(values.gop) / 25} s | ${select.toFixed(0)} | ${seek1.toFixed(0)} | ${seek2.toFixed(0)} |`);
}
