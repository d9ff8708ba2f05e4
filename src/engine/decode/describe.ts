/**
 * What the one open of a file says, turned into the facts the pipeline needs (VideoInfo) or a typed
 * error, before anything is decoded. Pure: the worker gathers the facts with libav, tests pass them.
 */
import { EngineError } from '../../errors.js';

export interface StreamFacts {
  index: number;
  type: 'video' | 'audio' | 'other';
  codec: string | undefined;
  width: number;
  height: number;
  /** Cover art in an audio file: a video stream that is not a video. */
  attachedPic: boolean;
  durationS: number | undefined;
  startS: number | undefined;
  fps: number | undefined;
  /** nb_frames; undefined when the container does not say. */
  frameCount: number | undefined;
  /** The stream's display matrix (9 int32, 16.16 and 2.30 fixed point), when it has one. */
  displayMatrix: readonly number[] | undefined;
}

export interface ContainerFacts {
  /** Demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  format: string;
  durationS: number | undefined;
  streams: StreamFacts[];
}

export interface VideoInfo {
  format: string;
  codec: string;
  /** Index of the chosen video stream among all streams. */
  streamIndex: number;
  /** Coded size, before rotation. */
  codedWidth: number;
  codedHeight: number;
  /** Display rotation in degrees (0, 90, 180, 270), counter-clockwise, as ffprobe reports it. */
  rotation: 0 | 90 | 180 | 270;
  /** Size of the frames after autorotation: what the resize arithmetic works on. */
  width: number;
  height: number;
  /** Seconds, from the stream or else the container; undefined when neither says. */
  durationS: number | undefined;
  /** Start time of the video stream in seconds (0 when unknown). */
  startS: number;
  fps: number | undefined;
  /** Frame count from the container (nb_frames); undefined when the container does not say. */
  frameCount: number | undefined;
  audioStreams: number;
  /** Filters that turn decoded frames upright, as ffmpeg's autorotate inserts them. */
  rotateFilters: string[];
}

/** Demuxers that read single images (png_pipe, jpeg_pipe, webp_pipe, image2...). */
const IMAGE_DEMUXER = /(^|,)(image2|[a-z0-9]+_pipe)(,|$)/;

/** `name` is what the caller calls the video (a client's file name), used in every error. */
export function describe(container: ContainerFacts, name: string): VideoInfo {
  const { streams, format } = container;
  const audioStreams = streams.filter((s) => s.type === 'audio').length;
  const video = streams.find((s) => s.type === 'video' && !s.attachedPic);
  if (!video) {
    const what = audioStreams > 0 ? 'audio only' : streams.length > 0 ? 'no video stream' : 'no streams at all';
    throw new EngineError('VIDEO_NO_STREAM', `${name} has no video stream (${what})`, { video: name, format, audioStreams });
  }
  if (IMAGE_DEMUXER.test(format)) {
    throw new EngineError('VIDEO_STILL_IMAGE', `${name} is a still image (${format}), not a video`, { video: name, format });
  }
  if (!video.codec || video.width <= 0 || video.height <= 0) {
    throw new EngineError('VIDEO_UNDECODABLE', `${name}: the video stream has no known codec or size`, {
      video: name,
      codec: video.codec,
      width: video.width,
      height: video.height,
    });
  }
  const rotation = quarterTurns(video.displayMatrix);
  const swap = rotation === 90 || rotation === 270;
  return {
    format,
    codec: video.codec,
    streamIndex: video.index,
    codedWidth: video.width,
    codedHeight: video.height,
    rotation,
    width: swap ? video.height : video.width,
    height: swap ? video.width : video.height,
    durationS: video.durationS ?? container.durationS,
    startS: video.startS ?? 0,
    fps: video.fps,
    frameCount: video.frameCount,
    audioStreams,
    rotateFilters: rotateFilters(video.displayMatrix),
  };
}

/** av_display_rotation_get(): the counter-clockwise rotation in degrees that ffprobe prints. */
export function displayRotation(m: readonly number[]): number {
  const fp = (i: number): number => (m[i] as number) / 65536;
  const scaleX = Math.hypot(fp(0), fp(3));
  const scaleY = Math.hypot(fp(1), fp(4));
  if (scaleX === 0 || scaleY === 0) return Number.NaN;
  return -(Math.atan2(fp(1) / scaleY, fp(0) / scaleX) * 180) / Math.PI;
}

function quarterTurns(m: readonly number[] | undefined): VideoInfo['rotation'] {
  const degrees = m ? displayRotation(m) : 0;
  if (!Number.isFinite(degrees)) return 0;
  const quarter = ((Math.round(degrees / 90) % 4) + 4) % 4;
  return (quarter * 90) as VideoInfo['rotation'];
}

/**
 * The filters ffmpeg 5.1's autorotate puts before our chain (fftools/ffmpeg_filter.c,
 * configure_input_video_filter, with cmdutils.c get_rotation), so that training (ffmpeg CLI) and
 * the service see the same upright pixels, flips included.
 */
export function rotateFilters(m: readonly number[] | undefined): string[] {
  if (!m) return [];
  const degrees = displayRotation(m);
  if (!Number.isFinite(degrees)) return [];
  let theta = -Math.round(degrees);
  theta -= 360 * Math.floor(theta / 360 + 0.9 / 360);
  const m0 = m[0] as number;
  const m3 = m[3] as number;
  const m4 = m[4] as number;
  if (Math.abs(theta - 90) < 1) return [`transpose=${m3 > 0 ? 'cclock_flip' : 'clock'}`];
  if (Math.abs(theta - 180) < 1) return [...(m0 < 0 ? ['hflip'] : []), ...(m4 < 0 ? ['vflip'] : [])];
  if (Math.abs(theta - 270) < 1) return [`transpose=${m3 < 0 ? 'clock_flip' : 'cclock'}`];
  if (Math.abs(theta) > 1) return [`rotate=${theta.toFixed(6)}*PI/180`];
  return m4 < 0 ? ['vflip'] : [];
}

/** Pixel and duration limits, checked from the one open before any frame is decoded. */
export interface VideoLimits {
  maxDurationS: number;
  maxPixels: number;
}

export function checkLimits(info: Pick<VideoInfo, 'width' | 'height' | 'durationS'>, limits: VideoLimits, name: string): void {
  if (info.durationS !== undefined && info.durationS > limits.maxDurationS) {
    throw new EngineError('VIDEO_TOO_LONG', `${name} lasts ${info.durationS.toFixed(1)} s; the limit is ${limits.maxDurationS} s`, {
      video: name,
      durationS: info.durationS,
      maxDurationS: limits.maxDurationS,
    });
  }
  if (info.width * info.height > limits.maxPixels) {
    throw new EngineError('VIDEO_TOO_LARGE', `${name} is ${info.width}x${info.height}; the limit is ${limits.maxPixels} pixels per frame`, {
      video: name,
      width: info.width,
      height: info.height,
      maxPixels: limits.maxPixels,
    });
  }
}
