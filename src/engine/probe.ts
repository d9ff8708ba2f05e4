/**
 * Stage 1: ask ffprobe what the file is. Anything that is not a decodable video with at least one
 * video stream becomes a typed error here, before any decoding.
 */
import { EngineError } from '../errors.js';
import { inputUrl, stderrTail, type FfmpegRunner } from './ffmpeg-runner.js';

export interface VideoInfo {
  /** Demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  format: string;
  codec: string;
  /** Index of the chosen video stream among all streams. */
  streamIndex: number;
  /** Coded size, before rotation. */
  codedWidth: number;
  codedHeight: number;
  /** Display rotation in degrees (0, 90, 180, 270), counter-clockwise as in ffprobe's display matrix. ffmpeg autorotates when decoding. */
  rotation: 0 | 90 | 180 | 270;
  /** Size of the decoded frames after autorotation: what the resize arithmetic works on. */
  width: number;
  height: number;
  /** Seconds, from the stream or else the container; undefined when neither says. */
  durationS: number | undefined;
  /** Start time of the video stream in seconds (0 when unknown). */
  startS: number;
  /** Frames per second from avg_frame_rate, else r_frame_rate; undefined when unknown. */
  fps: number | undefined;
  /** Frame count from the container (nb_frames); undefined when the container does not say. */
  frameCount: number | undefined;
  audioStreams: number;
}

export interface ProbeOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

interface FfprobeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  duration?: string;
  start_time?: string;
  nb_frames?: string;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  tags?: Record<string, string>;
  disposition?: Record<string, number>;
  side_data_list?: Array<{ side_data_type?: string; rotation?: number }>;
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string };
}

/** Demuxers that read single images (png_pipe, jpeg_pipe, webp_pipe, image2...). */
const IMAGE_DEMUXER = /(^|,)(image2|[a-z0-9]+_pipe)(,|$)/;

export async function probe(runner: FfmpegRunner, file: string, options: ProbeOptions): Promise<VideoInfo> {
  const args = ['-v', 'error', '-of', 'json', '-show_format', '-show_streams', inputUrl(file)];
  const result = await runner.run('ffprobe', args, { timeoutMs: options.timeoutMs, signal: options.signal, maxStdoutBytes: 4 << 20 });
  if (result.exitCode !== 0) {
    throw new EngineError('VIDEO_UNDECODABLE', `ffprobe cannot read ${file}: ${stderrTail(result.stderr) || `exit ${result.exitCode}`}`, {
      file,
      stderr: stderrTail(result.stderr, 10),
    });
  }
  let parsed: FfprobeOutput;
  try {
    parsed = JSON.parse(result.stdout.toString('utf8')) as FfprobeOutput;
  } catch (err) {
    throw new EngineError('VIDEO_UNDECODABLE', `ffprobe output for ${file} is not JSON`, { file }, { cause: err });
  }
  return describe(parsed, file);
}

/** Pure part of probe(): ffprobe JSON → VideoInfo or a typed error. */
export function describe(parsed: FfprobeOutput, file: string): VideoInfo {
  const streams = parsed.streams ?? [];
  const format = parsed.format?.format_name ?? 'unknown';
  const audioStreams = streams.filter((s) => s.codec_type === 'audio').length;
  // Cover art in audio files is a video stream flagged attached_pic: not a video.
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!video) {
    const what = audioStreams > 0 ? 'audio only' : streams.length > 0 ? 'no video stream' : 'no streams at all';
    throw new EngineError('VIDEO_NO_STREAM', `${file} has no video stream (${what})`, { file, format, audioStreams });
  }
  if (IMAGE_DEMUXER.test(format)) {
    throw new EngineError('VIDEO_STILL_IMAGE', `${file} is a still image (${format}), not a video`, { file, format });
  }
  const codedWidth = video.width ?? 0;
  const codedHeight = video.height ?? 0;
  if (!video.codec_name || codedWidth <= 0 || codedHeight <= 0) {
    throw new EngineError('VIDEO_UNDECODABLE', `${file}: the video stream has no known codec or size`, {
      file,
      codec: video.codec_name,
      width: codedWidth,
      height: codedHeight,
    });
  }
  const rotation = rotationOf(video);
  const swap = rotation === 90 || rotation === 270;
  const durationS = positive(video.duration) ?? positive(parsed.format?.duration);
  const frameCount = positive(video.nb_frames);
  return {
    format,
    codec: video.codec_name,
    streamIndex: video.index,
    codedWidth,
    codedHeight,
    rotation,
    width: swap ? codedHeight : codedWidth,
    height: swap ? codedWidth : codedHeight,
    durationS,
    startS: finite(video.start_time) ?? 0,
    fps: rate(video.avg_frame_rate) ?? rate(video.r_frame_rate),
    frameCount: frameCount === undefined ? undefined : Math.round(frameCount),
    audioStreams,
  };
}

/**
 * Rotation from the display matrix (ffprobe >= 5), else from the legacy clockwise `rotate` tag
 * (ffprobe 4). Only whether it is a quarter turn matters to the engine: that swaps width and height.
 */
function rotationOf(stream: FfprobeStream): VideoInfo['rotation'] {
  const matrix = stream.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
  const tag = stream.tags?.rotate === undefined ? undefined : Number(stream.tags.rotate);
  const degrees = matrix !== undefined ? matrix : tag !== undefined && Number.isFinite(tag) ? -tag : 0;
  const quarter = ((Math.round(degrees / 90) % 4) + 4) % 4;
  return (quarter * 90) as VideoInfo['rotation'];
}

function finite(text: string | undefined): number | undefined {
  if (text === undefined || text === 'N/A') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

function positive(text: string | undefined): number | undefined {
  const value = finite(text);
  return value !== undefined && value > 0 ? value : undefined;
}

function rate(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const [num, den] = text.split('/').map(Number);
  if (num === undefined || den === undefined || !(num > 0) || !(den > 0)) return undefined;
  return num / den;
}
