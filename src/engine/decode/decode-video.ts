/**
 * One video, inside a decode worker: open once, check the limits, index, plan, decode the planned
 * frames into rgb24 crops. Everything that can refuse the video does so before the first frame is
 * decoded.
 */
import { EngineError } from '../../errors.js';
import { cropGeometry, filterChain } from '../preprocess.js';
import { planFrames } from '../sample.js';
import { checkLimits, describe, type VideoInfo, type VideoLimits } from './describe.js';
import { frameCountOf, framesDecoded, planDecode } from './frame-plan.js';
import { copyRgb, openVideo, type DecoderOptions } from './libav.js';

export interface DecodeJob {
  file: string;
  /** What the caller calls the video (a client's file name): errors say this, never the path. */
  name: string;
  frames: number;
  size: number;
  resizeShortSide: number;
  scaleFlags: string;
  limits: VideoLimits;
  /** Also encode each slot's frame as a PNG thumbnail (explain). */
  thumbnails?: boolean | undefined;
  /**
   * Where to leave the frames for the inference worker instead of sending them back: the caller's
   * scratch file (a request's temp file), so that the main process never carries the pixels.
   */
  framesFile?: string | undefined;
}

export interface DecodedVideo {
  info: Omit<VideoInfo, 'rotateFilters'>;
  frameCount: number;
  frameCountSource: 'container' | 'counted';
  /** Sampled frame index for each of the `frames` slots. */
  indices: number[];
  /** The distinct sampled frames back to back, (U, S, S, 3) rgb24. */
  rgb: Uint8Array;
  /** For each slot, which frame in `rgb` fills it. */
  slotToFrame: number[];
  /** Slots that repeat a neighbouring frame because theirs never decoded (truncated, lying). */
  padded: number;
  /** Frames the decoder produced, seeks made, and what the plan expected to decode. */
  decodedFrames: number;
  seeks: number;
  plannedFrames: number;
  hardware: boolean;
  /** Base64 PNG per slot, when the job asked for thumbnails. */
  thumbnails?: string[] | undefined;
  /** The job's framesFile, holding the frames (`rgb` is then empty). */
  framesFile?: string | undefined;
}

/**
 * Where a worker's decoded frames go: one buffer for every video, grown to the largest yet, so
 * that a video costs no 1.2 MB allocation. A fresh one per video left that much garbage per video
 * to the collector and to malloc, whose heap crept up with it (docs/decisions.md, "Decode worker
 * memory"). The frames must be consumed (written, sent, thumbnailed) before the next video.
 */
export interface FrameBuffer {
  take(bytes: number): Uint8Array;
}

export function createFrameBuffer(): FrameBuffer {
  let buffer = new Uint8Array(0);
  return {
    take(bytes) {
      if (buffer.length < bytes) buffer = new Uint8Array(bytes);
      return buffer.subarray(0, bytes);
    },
  };
}

const freshBuffer: FrameBuffer = { take: (bytes) => new Uint8Array(bytes) };

/** `into`: where the frames go (default: a new array for this video, which the caller may keep). */
export function decodeVideo(job: DecodeJob, decoder: DecoderOptions, into: FrameBuffer = freshBuffer): DecodedVideo {
  const { file, name } = job;
  const video = openVideo(file, name);
  try {
    const info = describe(video.facts, name);
    checkLimits(info, job.limits, name);
    const index = video.index(info.streamIndex);
    if (index.packets === 0) throw new EngineError('VIDEO_UNDECODABLE', `${name}: the video stream has no packets`, { video: name });
    // A header without a duration (or one that lies low) is checked again against what was read.
    if (index.durationS !== undefined && (info.durationS === undefined || index.durationS > info.durationS)) {
      checkLimits({ ...info, durationS: index.durationS }, job.limits, name);
    }
    const { frameCount, source } = frameCountOf(info.frameCount, index.packets);
    const plan = planFrames(frameCount, job.frames);
    const steps = planDecode(plan.unique, index.keyframes);
    const geometry = cropGeometry(info.width, info.height, job.resizeShortSide, job.size);
    const filters = [...info.rotateFilters, filterChain(geometry, job.scaleFlags)].join(',');
    const bytes = job.size * job.size * 3;
    const rgb = into.take(plan.unique.length * bytes);
    const got = new Array<boolean>(plan.unique.length).fill(false);
    const codec = video.decoder(info.streamIndex, decoder);
    let stats;
    try {
      stats = codec.run(steps, index, filters, (k, frame) => {
        copyRgb(frame, job.size, rgb, k * bytes, { video: name, filters });
        got[k] = true;
      });
    } finally {
      codec.close();
    }
    if (!got.includes(true)) {
      throw new EngineError('VIDEO_UNDECODABLE', `${name}: no frame of the video stream could be decoded`, { video: name, packets: index.packets, errors: stats.errors });
    }
    // A frame that never came out (damaged data, a container promising more than it holds) takes
    // the nearest earlier frame that did, else the nearest later one.
    const fill = got.map((_, k) => nearestDecoded(got, k));
    // The buffer is the worker's (FrameBuffer): a frame that never decoded must not carry the last video's pixels.
    for (let k = 0; k < got.length; k++) if (!got[k]) rgb.fill(0, k * bytes, (k + 1) * bytes);
    const slotToFrame = plan.slotToUnique.map((k) => fill[k] as number);
    const padded = plan.slotToUnique.filter((k) => !got[k]).length;
    const { rotateFilters: _, ...rest } = info;
    return {
      info: rest,
      frameCount,
      frameCountSource: source,
      indices: plan.indices,
      rgb,
      slotToFrame,
      padded,
      decodedFrames: stats.decoded,
      seeks: stats.seeks,
      plannedFrames: framesDecoded(steps),
      hardware: codec.hardware,
    };
  } finally {
    video.close();
  }
}

function nearestDecoded(got: readonly boolean[], k: number): number {
  for (let i = k; i >= 0; i--) if (got[i]) return i;
  return got.indexOf(true);
}
