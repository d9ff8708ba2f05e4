/**
 * The only module that imports node-av (libav* 8 in process). It runs inside a decode worker
 * process (worker.ts): its calls are synchronous and block the thread, and a decoder stuck or
 * crashing in native code can only be stopped by killing that process.
 *
 * One open per video gives everything: the container and stream facts, then one demux-only pass
 * (no decoding) for the packet count, the presentation order and the keyframes. Decoding then walks
 * the frame plan, and each wanted frame goes through the same libavfilter chain that ffmpeg's
 * command line builds (autorotate filters, scale with the manifest's flags, rgb24, crop), so the
 * pixels are those the Python sampler gets.
 */
import { createRequire } from 'node:module';
import { Codec, CodecContext, Dictionary, FFmpegError, Filter, FilterGraph, FilterInOut, FormatContext, Frame, InputFormat, Log, Packet, avGetCodecName, getFFmpegInfo, type FilterContext, type Stream } from 'node-av/lib';
import type { HardwareContext } from 'node-av/api';
import {
  AVDISCARD_ALL,
  AVDISCARD_DEFAULT,
  AVDISCARD_NONREF,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  AVMEDIA_TYPE_AUDIO,
  AVMEDIA_TYPE_VIDEO,
  AVSEEK_FLAG_BACKWARD,
  AVSEEK_FLAG_BYTE,
  AV_DISPOSITION_ATTACHED_PIC,
  AV_HWDEVICE_TYPE_CUDA,
  AV_LOG_ERROR,
  AV_NOPTS_VALUE,
  AV_OPT_TYPE_INT,
  AV_PIX_FMT_CUDA,
  AV_PKT_DATA_DISPLAYMATRIX,
} from 'node-av/constants';
import { EngineError } from '../../errors.js';
import type { ContainerFacts, StreamFacts } from './describe.js';
import type { DecodeStep } from './frame-plan.js';

const NOPTS = AV_NOPTS_VALUE;

/** libav's own error lines (e.g. "moov atom not found"), kept for error messages. */
const logTail: string[] = [];
Log.setCallback(
  (_level, message) => {
    logTail.push(message.trim());
    if (logTail.length > 8) logTail.shift();
  },
  { maxLevel: AV_LOG_ERROR },
);

/** Before exit: a log line delivered while Node tears down its environment aborts the process. */
export function stopLibavLog(): void {
  Log.resetCallback();
}

/** libav delivers log lines on the event loop, after the synchronous call that logged them. */
export async function recentLibavErrors(): Promise<string> {
  await new Promise((resolve) => setImmediate(resolve));
  const text = logTail.filter(Boolean).join(' | ');
  logTail.length = 0;
  return text;
}

/** "FFmpeg n8.1" or so, for the start-up log and engine.info. */
export function libavVersion(): string {
  return `FFmpeg ${getFFmpegInfo().version}`;
}

export interface OpenVideo {
  facts: ContainerFacts;
  close(): void;
  /** Demux-only pass over the chosen stream. */
  index(streamIndex: number): PacketIndex;
  decoder(streamIndex: number, options: DecoderOptions): VideoDecoder;
}

export interface PacketIndex {
  packets: number;
  /** Presentation indices of the keyframes; empty when timestamps cannot order the frames. */
  keyframes: number[];
  /** Seconds from the first to the end of the last packet, measured (not what the header says). */
  durationS: number | undefined;
  /** Frame index of a timestamp (presentation order), or -1; undefined when frames must be counted. */
  rankOf: ((pts: bigint) => number) | undefined;
  /** The timestamp of frame `frame` (presentation order); undefined with `rankOf`. */
  ptsOf: ((frame: number) => bigint | undefined) | undefined;
  /** Where to seek (stream time base) to land on keyframe `keyframes[i]`. */
  seekPoint: (keyframe: number) => bigint;
}

export interface DecoderOptions {
  threads: number;
  /** Hardware device for NVDEC; null decodes on the CPU. */
  hardware: HardwareContext | null;
}

/** Opens `file`; `name` (default: the path) is what errors call it (a client's file name). */
export function openVideo(file: string, name = file): OpenVideo {
  const fmt = new FormatContext();
  // `file:` keeps a name like "a:b.mp4" from being read as a protocol; the whitelist keeps a
  // container (HLS, concat) from opening anything but local files.
  const options = Dictionary.fromObject({ protocol_whitelist: 'file' });
  const opened = fmt.openInputSync(`file:${file}`, null, options);
  if (opened < 0) throw libavError('VIDEO_UNDECODABLE', `cannot open ${name}`, opened, name);
  try {
    const info = fmt.findStreamInfoSync(null);
    if (info < 0) throw libavError('VIDEO_UNDECODABLE', `cannot read the streams of ${name}`, info, name);
    const facts: ContainerFacts = { format: fmt.iformat?.name ?? 'unknown', durationS: seconds(fmt.duration, 1, 1_000_000), streams: fmt.streams.map(streamFacts) };
    return {
      facts,
      close: () => fmt.closeInputSync(),
      index: (streamIndex) => indexPackets(fmt, streamIndex),
      decoder: (streamIndex, decoderOptions) => openDecoder(fmt, fmt.streams[streamIndex] as Stream, decoderOptions, name),
    };
  } catch (err) {
    fmt.closeInputSync();
    throw err;
  }
}

function streamFacts(stream: Stream): StreamFacts {
  const par = stream.codecpar;
  const type = par.codecType === AVMEDIA_TYPE_VIDEO ? 'video' : par.codecType === AVMEDIA_TYPE_AUDIO ? 'audio' : 'other';
  const tb = stream.timeBase;
  const matrix = par.getCodedSideData(AV_PKT_DATA_DISPLAYMATRIX);
  const rate = stream.avgFrameRate.num > 0 && stream.avgFrameRate.den > 0 ? stream.avgFrameRate : stream.rFrameRate;
  const frames = Number(stream.nbFrames);
  return {
    index: stream.index,
    type,
    codec: avGetCodecName(par.codecId) ?? undefined,
    width: par.width,
    height: par.height,
    attachedPic: (stream.disposition & AV_DISPOSITION_ATTACHED_PIC) !== 0,
    durationS: seconds(stream.duration, tb.num, tb.den),
    startS: stream.startTime === NOPTS ? undefined : (Number(stream.startTime) * tb.num) / tb.den,
    fps: rate.num > 0 && rate.den > 0 ? rate.num / rate.den : undefined,
    frameCount: frames > 0 ? frames : undefined,
    displayMatrix: matrix && matrix.length >= 36 ? Array.from(new Int32Array(matrix.buffer, matrix.byteOffset, 9)) : undefined,
  };
}

function seconds(ts: bigint, num: number, den: number): number | undefined {
  if (ts === NOPTS || ts <= 0n) return undefined;
  return (Number(ts) * num) / den;
}

function indexPackets(fmt: FormatContext, streamIndex: number): PacketIndex {
  for (const s of fmt.streams) if (s.index !== streamIndex) s.discard = AVDISCARD_ALL;
  const stream = fmt.streams[streamIndex] as Stream;
  const pts: bigint[] = [];
  const key: boolean[] = [];
  let firstDts = NOPTS;
  let end = NOPTS;
  const packet = new Packet();
  packet.alloc();
  try {
    for (;;) {
      const ret = fmt.readFrameSync(packet);
      if (ret === AVERROR_EOF) break;
      // A read error mid-file (truncated data) ends the index: what was read is what there is.
      if (ret < 0) break;
      if (packet.streamIndex === streamIndex) {
        if (pts.length === 0) firstDts = packet.dts;
        pts.push(packet.pts);
        key.push(packet.isKeyframe);
        const at = packet.pts !== NOPTS ? packet.pts : packet.dts;
        if (at !== NOPTS && (end === NOPTS || at + packet.duration > end)) end = at + packet.duration;
      }
      packet.unref();
    }
  } finally {
    packet.free();
  }
  rewind(fmt, streamIndex, firstDts !== NOPTS ? firstDts : pts[0]);
  const tb = stream.timeBase;
  const first = pts.reduce<bigint>((min, p) => (p !== NOPTS && (min === NOPTS || p < min) ? p : min), NOPTS);
  const durationS = first !== NOPTS && end !== NOPTS && end > first ? (Number(end - first) * tb.num) / tb.den : undefined;
  // Seeking needs every frame's timestamp, distinct, to know where the decoder landed; streams
  // without them (raw H.264, broken muxers) are decoded forward from the start and counted.
  const sorted = BigInt64Array.from(pts).sort();
  const ordered = pts.length > 0 && !pts.includes(NOPTS) && sorted.every((p, i) => i === 0 || p !== sorted[i - 1]);
  const rankOf = ordered ? (p: bigint): number => exactIndex(sorted, p) : undefined;
  const keyAt = new Map<number, bigint>();
  if (rankOf) {
    for (let i = 0; i < pts.length; i++) {
      if (!key[i]) continue;
      // The keyframe's own pts: demuxers index by it (mov shifts its dts index by the edit list,
      // so seeking to the dts lands one GOP early; measured), and BACKWARD never passes it.
      keyAt.set(rankOf(pts[i] as bigint), pts[i] as bigint);
    }
  }
  const keyframes = [...keyAt.keys()].sort((a, b) => a - b);
  const ptsOf = ordered ? (frame: number): bigint | undefined => sorted[frame] : undefined;
  return { packets: pts.length, keyframes, durationS, rankOf, ptsOf, seekPoint: (k) => keyAt.get(k) as bigint };
}

/** Back to the first packet for decoding, so the one open serves both passes. */
function rewind(fmt: FormatContext, streamIndex: number, first: bigint | undefined): void {
  if (first !== undefined && first !== NOPTS && fmt.seekFrameSync(streamIndex, first, AVSEEK_FLAG_BACKWARD) >= 0) return;
  fmt.seekFrameSync(streamIndex, 0n, AVSEEK_FLAG_BYTE);
}

function exactIndex(sorted: BigInt64Array, value: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as bigint) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo] === value ? lo : -1;
}

export interface VideoDecoder {
  /**
   * Walks `steps`; `emit(step, frame)` receives each target's frame, already through the filter
   * chain (`filters`). Returns the frames decoded and the seeks made.
   */
  run(steps: readonly DecodeStep[], index: PacketIndex, filters: string, emit: (step: number, rgb: Frame) => void): { decoded: number; seeks: number; errors: number };
  close(): void;
  readonly hardware: boolean;
}

/**
 * Decoders whose non-reference frames (`skip_frame=noref`) can be left undecoded without changing a
 * single pixel of any other frame: nothing predicts from them, and the state later frames need
 * (H.264 POC type 0, HEVC prevTid0Pic) comes from reference frames only. Measured on the 2-minute
 * 720p GOP-60 x264 clip: 45% of the frames are non-reference, and a full decode cost 40% less CPU.
 * VP9 is left out: a frame that refreshes no reference may still update the probability context
 * that later frames decode with.
 */
const SKIP_NONREF_CODECS = new Set(['h264', 'hevc']);

/** The stream's decoder, found; VIDEO_UNDECODABLE when libav has none. */
function findCodec(stream: Stream, name: string): Codec {
  const codec = Codec.findDecoder(stream.codecpar.codecId);
  if (!codec) throw new EngineError('VIDEO_UNDECODABLE', `${name}: no decoder for ${avGetCodecName(stream.codecpar.codecId) ?? 'this codec'}`, { video: name });
  return codec;
}

/** A decoder context for `stream`, opened (on the GPU when `hardware` is given). */
function openCodec(codec: Codec, stream: Stream, threads: number, hardware: HardwareContext | null, name: string): CodecContext {
  const ctx = new CodecContext();
  ctx.allocContext3(codec);
  ctx.parametersToContext(stream.codecpar);
  ctx.pktTimebase = stream.timeBase;
  ctx.threadCount = threads;
  if (hardware) {
    ctx.hwDeviceCtx = hardware.deviceContext;
    ctx.setHardwarePixelFormat(AV_PIX_FMT_CUDA);
  }
  const ret = ctx.open2Sync(codec, null);
  if (ret < 0) {
    ctx.freeContext();
    throw libavError('VIDEO_UNDECODABLE', `cannot open the ${codec.name ?? ''} decoder for ${name}`, ret, name);
  }
  return ctx;
}

/**
 * A filtered `size`×`size` rgb24 frame into `into` at `offset`, row by row (libav pads its rows to
 * `linesize`); DECODE_FAILED when the filter chain gave another size.
 */
export function copyRgb(frame: Frame, size: number, into: Uint8Array, offset: number, details: Record<string, unknown>): void {
  const data = frame.data?.[0];
  const stride = frame.linesize[0] ?? 0;
  if (!data || frame.width !== size || frame.height !== size) {
    throw new EngineError('DECODE_FAILED', `the filter chain gave a ${frame.width}x${frame.height} frame, not ${size}x${size}`, details);
  }
  const row = size * 3;
  for (let y = 0; y < size; y++) into.set(data.subarray(y * stride, y * stride + row), offset + y * row);
}

function openDecoder(fmt: FormatContext, stream: Stream, options: DecoderOptions, name: string): VideoDecoder {
  const codec = findCodec(stream, name);
  const open = (hardware: HardwareContext | null): CodecContext => openCodec(codec, stream, options.threads, hardware, name);
  let hardware = options.hardware !== null;
  let ctx: CodecContext;
  try {
    ctx = open(options.hardware);
  } catch (err) {
    if (!hardware) throw err;
    hardware = false; // this codec or profile has no NVDEC path: the CPU decoder takes it
    ctx = open(null);
  }
  const skipsNonRef = SKIP_NONREF_CODECS.has(codec.name ?? '');
  const packet = new Packet();
  packet.alloc();
  const frame = new Frame();
  frame.alloc();
  const download = new Frame();
  download.alloc();
  return {
    hardware,
    run(steps, index, filters, emit) {
      let decoded = 0;
      let seeks = 0;
      let errors = 0;
      let counted = -1; // frames output since the start, for streams that cannot be ordered by pts
      let atEnd = false;
      let errorsAtEnd = 0;
      let drained = false;
      let pending: number | undefined; // a frame already decoded past the step it was read for
      let filter: FilterChain | undefined;
      // The packets of wanted frames, by pts: every other non-reference frame is skipped (see
      // SKIP_NONREF_CODECS). Streams counted from the start (no ordered pts) decode every frame.
      const wanted = skipsNonRef && index.ptsOf ? new Set(steps.map((step) => index.ptsOf?.(step.target))) : undefined;
      let skipping = false;
      const skipUnlessWanted = (pts: bigint): void => {
        const skip = wanted !== undefined && !wanted.has(pts);
        if (skip === skipping) return;
        // Read per packet by the decoder (and copied into each frame thread's context with it), so
        // switching between packets is exact.
        if (ctx.setOption('skip_frame', skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT, AV_OPT_TYPE_INT) >= 0) skipping = skip;
      };

      const toRgb = (decodedFrame: Frame): Frame => {
        let source = decodedFrame;
        if (decodedFrame.format === AV_PIX_FMT_CUDA) {
          download.unref();
          const ret = decodedFrame.hwframeTransferDataSync(download, 0);
          if (ret < 0) throw libavError('DECODE_FAILED', 'cannot copy a frame from the GPU', ret, name);
          source = download;
        }
        source.timeBase = stream.timeBase; // the buffer source needs one; raw decoder frames carry none
        // Built on the first frame, from its real format and colour properties, as ffmpeg does.
        filter ??= createFilterChain(filters, options.threads, name);
        return filter.run(source);
      };

      /** The next decoded frame's index, or undefined at the end of the stream. */
      const nextFrame = (): number | undefined => {
        for (;;) {
          const got = ctx.receiveFrameSync(frame);
          if (got >= 0) {
            decoded++;
            counted++;
            if (!index.rankOf) return counted;
            const ts = frame.pts !== NOPTS ? frame.pts : frame.bestEffortTimestamp;
            const at = index.rankOf(ts);
            if (at >= 0) return at;
            frame.unref(); // a frame the index does not know (a decoder quirk): not one we want
            continue;
          }
          if (got === AVERROR_EOF) {
            drained = true;
            return undefined;
          }
          if (got !== AVERROR_EAGAIN) errors++;
          if (atEnd) {
            // The flush was sent: a decoder that asks for input has nothing more to give; one that
            // reports a damaged frame may still hold good ones (bounded: a broken decoder could
            // report errors for ever).
            if (got !== AVERROR_EAGAIN && errorsAtEnd++ < 64) continue;
            drained = true;
            return undefined;
          }
          const read = fmt.readFrameSync(packet);
          if (read < 0) {
            atEnd = true;
            ctx.sendPacketSync(null); // flush: the frames still inside the decoder come out
            continue;
          }
          if (packet.streamIndex === stream.index) {
            skipUnlessWanted(packet.pts);
            // Damaged packets (a truncated file) fail here; like ffmpeg, skip them and go on.
            if (ctx.sendPacketSync(packet) < 0) errors++;
          }
          packet.unref();
        }
      };

      steps.forEach((step, i) => {
        if (step.seekTo !== undefined) {
          const ret = fmt.seekFrameSync(stream.index, index.seekPoint(step.seekTo), AVSEEK_FLAG_BACKWARD);
          if (ret >= 0) {
            ctx.flushBuffers();
            seeks++;
            atEnd = false;
            errorsAtEnd = 0;
            drained = false;
            pending = undefined;
          }
        }
        let at = pending;
        pending = undefined;
        while (!drained && (at === undefined || at < step.target)) {
          frame.unref();
          at = nextFrame();
          if (at === undefined) return;
        }
        if (at === undefined) return;
        if (at > step.target) {
          pending = at; // the target never came out (damaged); this frame may be a later target
          return;
        }
        const rgb = toRgb(frame);
        try {
          emit(i, rgb);
        } finally {
          rgb.free();
        }
      });
      frame.unref();
      filter?.close();
      return { decoded, seeks, errors };
    },
    close() {
      packet.free();
      frame.free();
      download.free();
      ctx.freeContext();
    },
  };
}


/**
 * A live input (pushed bytes on the worker's stdin): read as it comes, never seeked. The container is
 * named by the client or probed from the first bytes; the probe looks at one second at most, so the
 * first window is not held back by the five seconds libav would wait for stream facts.
 */
export interface LiveInput {
  facts: ContainerFacts;
  timeBase: { num: number; den: number };
  /** The next packet of `streamIndex`; undefined at the end of the input (or a read error: `endCode`). */
  read(): LivePacket | undefined;
  /** Whether read() ended on a clean end of input (false: a read error, which ends it too). */
  readonly endedCleanly: boolean;
  decoder(options: { threads: number; filters: string; size: number }): LiveDecoder;
  close(): void;
}

/** A packet taken out of the demuxer, held until its frame's fate is known. */
export interface LivePacket {
  pts: bigint | undefined;
  dts: bigint | undefined;
  /** Offset in the input just past the packet's last byte; undefined when the demuxer does not say. */
  endByte: number | undefined;
  free(): void;
}

export interface LiveDecoder {
  /** Whether non-reference frames can be skipped without changing any other frame (SKIP_NONREF_CODECS). */
  readonly skipsNonRef: boolean;
  /** Decodes `packet` (a non-reference frame in it is skipped when `wanted` is false) and frees it. */
  send(packet: LivePacket, wanted: boolean): void;
  /** End of input: the frames still inside the decoder come out on the next receive(). */
  flush(): void;
  /**
   * Every frame the decoder has ready, in presentation order: `convert(pts)` gives the buffer to
   * fill with the frame through the filter chain, `size`×`size` rgb24, or undefined to leave it.
   */
  receive(convert: (pts: bigint) => Uint8Array | undefined): void;
  /** Frames decoded, packets the decoder refused. */
  readonly stats: { decoded: number; errors: number };
  close(): void;
}

/**
 * A live input: `pipe:0` (pushed bytes) or a source's URL. `options` are libav's (protocol
 * whitelist, timeouts, proxy, transport), given by the caller, which decides what a source may open.
 */
export function openLiveInput(url: string, name: string, format: string | undefined, options: Record<string, string> = { protocol_whitelist: 'pipe' }): LiveInput {
  const fmt = new FormatContext();
  const inputFormat = format ? InputFormat.findInputFormat(format) : null;
  const opened = fmt.openInputSync(url, inputFormat, Dictionary.fromObject({ probesize: '1000000', analyzeduration: '1000000', ...options }));
  // Bytes that cannot be opened are the sender's fault; a URL that cannot be, the source's (or the network's).
  if (opened < 0) throw libavError(url.startsWith('pipe:') ? 'VIDEO_UNDECODABLE' : 'SOURCE_UNREACHABLE', `cannot open ${name}`, opened, name);
  let streamIndex = -1;
  try {
    const info = fmt.findStreamInfoSync(null);
    if (info < 0) throw libavError('VIDEO_UNDECODABLE', `cannot read the streams of ${name}`, info, name);
    // A duration only when the container states one (a file, a finished playlist): a live source has none.
    const facts: ContainerFacts = { format: fmt.iformat?.name ?? 'unknown', durationS: fmt.duration > 0n ? seconds(fmt.duration, 1, 1_000_000) : undefined, streams: fmt.streams.map(streamFacts) };
    const video = facts.streams.find((s) => s.type === 'video' && !s.attachedPic);
    streamIndex = video?.index ?? -1;
    for (const s of fmt.streams) if (s.index !== streamIndex) s.discard = AVDISCARD_ALL;
    const stream = fmt.streams[streamIndex];
    const tb = stream?.timeBase ?? { num: 1, den: 1 };
    let endCode = 0;
    return {
      facts,
      timeBase: { num: tb.num, den: tb.den },
      get endedCleanly() {
        return endCode === AVERROR_EOF;
      },
      read() {
        const packet = new Packet();
        packet.alloc();
        for (;;) {
          const ret = fmt.readFrameSync(packet);
          if (ret < 0) {
            endCode = ret;
            packet.free();
            return undefined;
          }
          if (packet.streamIndex === streamIndex) {
            const pts = packet.pts !== NOPTS ? packet.pts : undefined;
            const dts = packet.dts !== NOPTS ? packet.dts : undefined;
            const endByte = packet.pos >= 0n ? Number(packet.pos) + packet.size : undefined;
            return { pts, dts, endByte, free: () => packet.free(), native: packet } as LivePacket;
          }
          packet.unref();
        }
      },
      decoder: (decoderOptions) => openLiveDecoder(stream as Stream, decoderOptions, name),
      close: () => fmt.closeInputSync(),
    };
  } catch (err) {
    fmt.closeInputSync();
    throw err;
  }
}

function openLiveDecoder(stream: Stream, options: { threads: number; filters: string; size: number }, name: string): LiveDecoder {
  const codec = findCodec(stream, name);
  const ctx = openCodec(codec, stream, options.threads, null, name);
  const skipsNonRef = SKIP_NONREF_CODECS.has(codec.name ?? '');
  const frame = new Frame();
  frame.alloc();
  const { size } = options;
  const stats = { decoded: 0, errors: 0 };
  let filter: FilterChain | undefined;
  let skipping = false;
  let geometry: string | undefined;
  return {
    skipsNonRef,
    stats,
    send(live, wanted) {
      const packet = (live as LivePacket & { native: Packet }).native;
      const skip = skipsNonRef && !wanted;
      if (skip !== skipping && ctx.setOption('skip_frame', skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT, AV_OPT_TYPE_INT) >= 0) skipping = skip;
      if (ctx.sendPacketSync(packet) < 0) stats.errors++;
      live.free();
    },
    flush() {
      ctx.sendPacketSync(null);
    },
    receive(convert) {
      for (;;) {
        const got = ctx.receiveFrameSync(frame);
        if (got < 0) {
          if (got !== AVERROR_EAGAIN && got !== AVERROR_EOF) {
            stats.errors++;
            continue;
          }
          return;
        }
        stats.decoded++;
        const pts = frame.pts !== NOPTS ? frame.pts : frame.bestEffortTimestamp;
        // The filter chain was built for the first frame's size: a stream that changes it mid-way
        // is refused rather than silently rescaled differently from a file.
        const shape = `${frame.width}x${frame.height}`;
        geometry ??= shape;
        if (shape !== geometry) {
          frame.unref();
          throw new EngineError('STREAM_CHANGED', `${name} changed its frame size from ${geometry} to ${shape}`, { video: name, from: geometry, to: shape });
        }
        const rgb = pts === NOPTS ? undefined : convert(pts);
        if (!rgb) {
          frame.unref();
          continue;
        }
        frame.timeBase = stream.timeBase;
        filter ??= createFilterChain(options.filters, options.threads, name);
        const out = filter.run(frame);
        frame.unref();
        try {
          copyRgb(out, size, rgb, 0, { video: name, filters: options.filters });
        } finally {
          out.free();
        }
      }
    },
    close() {
      frame.free();
      filter?.close();
      ctx.freeContext();
    },
  };
}


function libavError(code: 'VIDEO_UNDECODABLE' | 'DECODE_FAILED' | 'SOURCE_UNREACHABLE', what: string, ret: number, name: string): EngineError {
  return new EngineError(code, `${what}: ${FFmpegError.strerror(ret)}`, { video: name, libav: ret });
}

/**
 * The filter chain (`description`, e.g. `scale=…,format=rgb24,crop=…`) over libavfilter's graph API,
 * built on the first frame from its real size, format, aspect and colour properties, as ffmpeg's
 * command line (and node-av's FilterAPI) build it. Not FilterAPI itself: its module, node-av/api, costs
 * each process that loads it 0.10 s of CPU (0.15 s against 0.05 s for node-av/lib alone, measured with
 * `time node -e "import(...)"`), which every live stream's decoder process would pay at its start.
 */
interface FilterChain {
  /** The filtered frame (the caller frees it). */
  run(frame: Frame): Frame;
  close(): void;
}

function createFilterChain(description: string, threads: number, name: string): FilterChain {
  const graph = new FilterGraph();
  graph.alloc();
  // As many threads as the decoder has, set before the graph's first filter is made (libavfilter
  // starts the graph's threads then). At its default (0) libavfilter sizes them from the cores, for
  // every graph, so for every video, and the scale filter spreads each frame's slices over them: on
  // 2 cores 4 threads made and ended per video and ~120 futex calls (strace), none at the decoder's
  // one thread (2 cores, CONCURRENCY 2). Decode-alone CPU per video, alternated 5 rounds: 33.4
  // against 36.8 ms (4 s 360p clip), 34.4 against 36.0 (held-out clips, 3 rounds); 1080p unchanged
  // within noise (2-core AMD EPYC, 2026-12-07). Where DECODE_THREADS is above 1, the graph gets as many.
  graph.nbThreads = threads;
  let source: FilterContext | undefined;
  let sink: FilterContext | undefined;
  const fail = (what: string, ret: number): EngineError => libavError('DECODE_FAILED', `${what} for ${name} (${description})`, ret, name);
  const build = (frame: Frame): void => {
    const buffer = Filter.getByName('buffer');
    const buffersink = Filter.getByName('buffersink');
    if (!buffer || !buffersink) throw new EngineError('DECODE_FAILED', 'libavfilter has no buffer or buffersink filter', { video: name });
    source = graph.allocFilter(buffer, 'in') ?? undefined;
    if (!source) throw new EngineError('DECODE_FAILED', `cannot allocate the buffer source for ${name}`, { video: name });
    let ret = source.buffersrcParametersSet({
      width: frame.width,
      height: frame.height,
      format: frame.format,
      timeBase: frame.timeBase,
      sampleAspectRatio: frame.sampleAspectRatio,
      colorRange: frame.colorRange,
      colorSpace: frame.colorSpace,
    });
    if (ret < 0) throw fail('cannot set the buffer source', ret);
    ret = source.init(null);
    if (ret < 0) throw fail('cannot initialise the buffer source', ret);
    sink = graph.createFilter(buffersink, 'out', null) ?? undefined;
    if (!sink) throw new EngineError('DECODE_FAILED', `cannot create the buffer sink for ${name}`, { video: name });
    // The description's open input is fed by the source, its open output feeds the sink.
    const outputs = FilterInOut.createList([{ name: 'in', filterCtx: source, padIdx: 0 }]);
    const inputs = FilterInOut.createList([{ name: 'out', filterCtx: sink, padIdx: 0 }]);
    ret = graph.parsePtr(description, inputs, outputs);
    if (ret < 0) throw fail('cannot parse the filter chain', ret);
    ret = graph.configSync();
    if (ret < 0) throw fail('cannot configure the filter chain', ret);
  };
  return {
    run(frame) {
      if (!source) build(frame);
      const ret = (source as FilterContext).buffersrcAddFrameSync(frame);
      if (ret < 0) throw fail('the filter chain refused a frame', ret);
      const out = new Frame();
      out.alloc();
      const got = (sink as FilterContext).buffersinkGetFrameSync(out);
      if (got < 0) {
        out.free();
        throw fail('the filter chain gave no frame', got);
      }
      return out;
    },
    close: () => graph.free(),
  };
}

/** node-av/api loaded when a CUDA device is asked for, not by every process that decodes (see createFilterChain). */
const requireApi = (): typeof import('node-av/api') => createRequire(import.meta.url)('node-av/api') as typeof import('node-av/api');

export function createCudaDevice(): { device: HardwareContext | null; reason: string | undefined } {
  try {
    const device = requireApi().HardwareContext.create(AV_HWDEVICE_TYPE_CUDA);
    return device ? { device, reason: undefined } : { device: null, reason: 'no CUDA device could be opened (no GPU, driver or libcuda)' };
  } catch (err) {
    return { device: null, reason: err instanceof Error ? err.message : String(err) };
  }
}
