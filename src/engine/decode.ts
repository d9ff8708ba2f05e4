/**
 * Stage 3: decode only the sampled frames, already resized and cropped by ffmpeg, as rgb24 bytes
 * read from a pipe into a caller-owned buffer. The whole video is never held in memory.
 *
 * Two strategies (measurements in docs/decisions.md):
 *  - select: one ffmpeg pass with a `select` filter on frame numbers. Exact indices, needs the frame
 *    count (container nb_frames, else `ffprobe -count_packets`). Stops after the last wanted frame.
 *  - seek: one fast input seek (`-ss` before `-i`) per frame at the frame's timestamp. Cost does not
 *    grow with the video's length; it needs a duration and a frame rate. Frames that a seek cannot
 *    produce (lying duration) send the whole request back to `select`.
 */
import { EngineError } from '../errors.js';
import { inputUrl, stderrTail, type FfmpegRunner } from './ffmpeg-runner.js';
import { filterChain, type CropGeometry } from './preprocess.js';
import type { VideoInfo } from './probe.js';
import { planFrames } from './sample.js';

export type DecodeStrategy = 'select' | 'seek';

export interface DecodeConfig {
  /** Wall-clock limit for all ffmpeg/ffprobe runs of one decode. */
  timeoutMs: number;
  /** Videos at least this long (seconds) use `seek`; shorter ones use `select`. */
  seekMinDurationS: number;
  /** Parallel ffmpeg processes in `seek` mode. */
  seekConcurrency: number;
  /** Force one strategy (benchmarks, tests). */
  strategy?: DecodeStrategy | undefined;
}

export interface DecodeRequest {
  file: string;
  info: VideoInfo;
  frames: number;
  geometry: CropGeometry;
  scaleFlags: string;
  /** Receives the distinct decoded frames back to back, (U, S, S, 3); at least frames*S*S*3 bytes. */
  out: Uint8Array;
  signal?: AbortSignal | undefined;
  /** Milliseconds clock, for the decode deadline. */
  now: () => number;
}

export interface DecodedFrames {
  strategy: DecodeStrategy;
  /** Frames in the video as used for sampling. */
  frameCount: number;
  frameCountSource: 'container' | 'counted' | 'estimated';
  /** Sampled frame index for each of the `frames` slots. */
  indices: number[];
  /** For each slot, which decoded frame in `out` fills it. */
  slotToFrame: number[];
  /** Distinct frames decoded into `out`. */
  decoded: number;
  /** Slots filled with the last decodable frame because the video ended early. */
  padded: number;
}

export async function decodeFrames(runner: FfmpegRunner, req: DecodeRequest, config: DecodeConfig): Promise<DecodedFrames> {
  const deadline = req.now() + config.timeoutMs;
  const remaining = (): number => {
    const ms = Math.floor(deadline - req.now());
    if (ms <= 0) throw new EngineError('DECODE_TIMEOUT', `decoding ${req.file} took longer than ${config.timeoutMs} ms`, { timeoutMs: config.timeoutMs });
    return ms;
  };
  const strategy = config.strategy ?? chooseStrategy(req.info, config.seekMinDurationS);
  if (strategy === 'seek' && canSeek(req.info)) {
    const result = await decodeBySeeking(runner, req, config.seekConcurrency, remaining);
    if (result.padded === 0) return result;
    // A seek landed past the real end: the duration lied. Fall back to the exact path.
  }
  return decodeBySelect(runner, req, remaining);
}

export function chooseStrategy(info: VideoInfo, seekMinDurationS: number): DecodeStrategy {
  return canSeek(info) && (info.durationS as number) >= seekMinDurationS ? 'seek' : 'select';
}

function canSeek(info: VideoInfo): boolean {
  return info.durationS !== undefined && (info.frameCount !== undefined || info.fps !== undefined);
}

async function decodeBySelect(runner: FfmpegRunner, req: DecodeRequest, remaining: () => number, recount = false): Promise<DecodedFrames> {
  const { info, frames } = req;
  let frameCount = recount ? undefined : info.frameCount;
  let frameCountSource: DecodedFrames['frameCountSource'] = 'container';
  if (frameCount === undefined) {
    frameCount = await countFrames(runner, req, remaining());
    frameCountSource = 'counted';
  }
  const plan = planFrames(frameCount, frames);
  const expr = plan.unique.map((i) => `eq(n\\,${i})`).join('+');
  const vf = `select='${expr}',${filterChain(req.geometry, req.scaleFlags)}`;
  const sink = new FrameSink(req.out, frameBytes(req.geometry), plan.unique.length);
  const args = [...inputArgs(req), '-vf', vf, ...outputArgs(plan.unique.length)];
  const result = await runner.run('ffmpeg', args, { timeoutMs: remaining(), signal: req.signal, onStdout: sink.write });
  if (sink.frames < plan.unique.length && frameCountSource === 'container') {
    // The container's frame count was wrong (a truncated file whose index survived): count the
    // packets that are really there and sample again.
    return decodeBySelect(runner, req, remaining, true);
  }
  if (sink.frames === 0) {
    throw new EngineError('VIDEO_UNDECODABLE', `ffmpeg decoded no frame of ${req.file}: ${stderrTail(result.stderr) || `exit ${result.exitCode}`}`, {
      file: req.file,
      stderr: stderrTail(result.stderr, 10),
    });
  }
  // Fewer frames than the container promised (truncated or lying nb_frames): the missing slots take
  // the last frame that did decode.
  const last = sink.frames - 1;
  const slotToFrame = plan.slotToUnique.map((k) => Math.min(k, last));
  const padded = plan.slotToUnique.filter((k) => k > last).length;
  return { strategy: 'select', frameCount, frameCountSource, indices: plan.indices, slotToFrame, decoded: sink.frames, padded };
}

async function decodeBySeeking(
  runner: FfmpegRunner,
  req: DecodeRequest,
  concurrency: number,
  remaining: () => number,
): Promise<DecodedFrames> {
  const { info, frames } = req;
  const duration = info.durationS as number;
  const frameCount = info.frameCount ?? Math.max(1, Math.round(duration * (info.fps as number)));
  const frameCountSource = info.frameCount !== undefined ? 'container' : 'estimated';
  const plan = planFrames(frameCount, frames);
  const bytes = frameBytes(req.geometry);
  const got = new Array<boolean>(plan.unique.length).fill(false);
  const chain = filterChain(req.geometry, req.scaleFlags);
  const seekOne = async (k: number): Promise<void> => {
    // Aim half a frame before the wanted frame's start: accurate seeking then returns the first
    // frame at or after that time, which is the wanted one in a constant-rate video.
    const index = plan.unique[k] as number;
    const at = info.startS + (Math.max(0, index - 0.5) * duration) / frameCount;
    const sink = new FrameSink(req.out.subarray(k * bytes, (k + 1) * bytes), bytes, 1);
    const args = ['-ss', at.toFixed(6), ...inputArgs(req), '-vf', chain, ...outputArgs(1)];
    await runner.run('ffmpeg', args, { timeoutMs: remaining(), signal: req.signal, onStdout: sink.write });
    got[k] = sink.frames === 1;
  };
  await inPool(plan.unique.length, Math.max(1, concurrency), seekOne);
  const padded = got.filter((ok) => !ok).length;
  return {
    strategy: 'seek',
    frameCount,
    frameCountSource,
    indices: plan.indices,
    slotToFrame: plan.slotToUnique,
    decoded: plan.unique.length - padded,
    padded,
  };
}

/** Frame count by demuxing only (no decoding): packets of the video stream. */
async function countFrames(runner: FfmpegRunner, req: DecodeRequest, timeoutMs: number): Promise<number> {
  const args = ['-v', 'error', '-select_streams', String(req.info.streamIndex), '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', inputUrl(req.file)];
  const result = await runner.run('ffprobe', args, { timeoutMs, signal: req.signal });
  const count = Number.parseInt(result.stdout.toString('utf8').trim(), 10);
  if (result.exitCode !== 0 || !(count > 0)) {
    throw new EngineError('VIDEO_UNDECODABLE', `cannot count the frames of ${req.file}: ${stderrTail(result.stderr) || 'no packets'}`, {
      file: req.file,
      stderr: stderrTail(result.stderr, 10),
    });
  }
  return count;
}

function inputArgs(req: DecodeRequest): string[] {
  // `file:` keeps a name like "a:b.mp4" from being read as a protocol; the whitelist keeps a
  // container from opening anything but local files.
  return ['-v', 'error', '-nostdin', '-protocol_whitelist', 'file', '-i', inputUrl(req.file), '-map', `0:${req.info.streamIndex}`, '-an', '-sn', '-dn'];
}

function outputArgs(frames: number): string[] {
  // passthrough: rawvideo would otherwise default to constant frame rate and duplicate/drop frames.
  return ['-vsync', 'passthrough', '-frames:v', String(frames), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
}

function frameBytes(g: CropGeometry): number {
  return g.size * g.size * 3;
}

/** Copies streamed bytes into a fixed buffer; bytes past `maxFrames` frames are dropped. */
class FrameSink {
  private offset = 0;
  private readonly capacity: number;

  constructor(
    private readonly out: Uint8Array,
    private readonly bytesPerFrame: number,
    maxFrames: number,
  ) {
    this.capacity = bytesPerFrame * maxFrames;
    if (out.length < this.capacity) throw new RangeError(`frame buffer holds ${out.length} bytes, needs ${this.capacity}`);
  }

  get frames(): number {
    return Math.floor(this.offset / this.bytesPerFrame);
  }

  readonly write = (chunk: Buffer): void => {
    const n = Math.min(chunk.length, this.capacity - this.offset);
    if (n <= 0) return;
    this.out.set(n === chunk.length ? chunk : chunk.subarray(0, n), this.offset);
    this.offset += n;
  };
}

async function inPool(count: number, concurrency: number, work: (k: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (next < count && !failed) {
      try {
        await work(next++);
      } catch (err) {
        failed = true; // start no new process once one has failed
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}
