/**
 * The stages wired in one place: knobs → decode (a decode worker process opens the video once,
 * checks the limits, samples, decodes the planned frames, scales and crops; decode/) → infer (the
 * inference worker process normalises the frames, preprocess.ts, and runs the model) → postprocess.
 * Each stage is its own module; this file only passes values along and times the stages.
 */
import { accessSync, constants } from 'node:fs';
import type { Logger } from 'pino';
import { EngineError } from '../errors.js';
import { explain } from './explain.js';
import type { EngineConfig } from './config.js';
import { createBatcher } from './batcher.js';
import type { DecodePool } from './decode/pool.js';
import type { Knobs } from './knobs.js';
import type { LoadedModel } from './model.js';
import { postprocess, round6, type Postprocessed } from './postprocess.js';
import type { ClassifyResult } from './result.js';
import type { SessionHost } from './inference/host.js';
import { startSpan, traceparentOf, type Span, type Tracer } from '../telemetry/spans.js';

export type { ClassifyResult } from './result.js';

export interface ClassifyOptions {
  signal?: AbortSignal | undefined;
  /** Also return the probability of every class (the OIP PROBABILITIES output). */
  probabilities?: boolean | undefined;
  /** Also return where the compute went (explain.ts): stop map, frame times, thumbnails. */
  explain?: boolean | undefined;
  /** What errors and logs call the video: the client's name for an upload (`"clip.mp4"`); default the path. */
  name?: string | undefined;
  /**
   * When the video started waiting for the engine (monotonic ms, the engine's clock), if a caller
   * queued it first: its queue and total timings then count from there. Default: now.
   */
  enqueuedAt?: number | undefined;
  /**
   * A scratch file the caller owns and removes (a request's temp file): the decode worker leaves the
   * frames there for the inference worker, so the pixels never cross the main process. Without one
   * they travel through it over IPC.
   */
  framesFile?: string | undefined;
  /**
   * Called once the video is decoded, before its frames wait for the inference worker: a caller
   * that limits how many videos decode at once (the service's queue) lets the next one start.
   */
  onDecoded?: (() => void) | undefined;
  /**
   * The video's span when the request is traced (the service's): decode and inference spans are
   * made under it in their workers, and postprocess here.
   */
  span?: Span | undefined;
}

export interface PipelineDeps {
  model: LoadedModel;
  config: EngineConfig;
  decoder: DecodePool;
  host: SessionHost;
  /** Milliseconds, monotonic. */
  now: () => number;
  logger: Logger;
  /** Only when tracing is on. */
  tracer?: Tracer | undefined;
  /** Live windows per batch, as config.ts streamBatchSize decided it for this model. */
  streamBatchSize: number;
}

export type Classify = (file: string, knobs: Knobs, options?: ClassifyOptions) => Promise<ClassifyResult>;

/** Frames already decoded (a live stream's window): their file and which frame fills each slot. */
export interface DecodedFrames {
  file: string;
  slotToFrame: number[];
}

/** What the model said of decoded frames: the result without the video's facts, with every class's probability. */
export type FramesAnswer = Postprocessed & { timings_s: { queue: number; infer: number; post: number } };

export type ClassifyFrames = (frames: DecodedFrames, knobs: Knobs, options?: { signal?: AbortSignal | undefined; span?: Span | undefined }) => Promise<FramesAnswer>;

export function createPipeline(deps: PipelineDeps): { classify: Classify; classifyFrames: ClassifyFrames } {
  const { model, config, decoder, host, now } = deps;
  const { manifest } = model;
  const { frames, size, resize_short_side: shortSide, scale_flags: scaleFlags } = manifest.input;
  const limits = { maxDurationS: config.maxDurationS, maxPixels: config.maxPixels };
  const infer = createBatcher(host, { maxSize: config.batchMaxSize, maxDelayMs: config.batchMaxDelayMs }, now);
  // Windows have a batcher of their own: with many streams, windows that wait together run together.
  const inferWindows = createBatcher(host, { maxSize: deps.streamBatchSize, maxDelayMs: 0 }, now);

  const classifyFrames: ClassifyFrames = async (frames, knobs, options = {}) => {
    // The inference worker is the files': windows of many streams share it in arrival order.
    const trace = options.span && traceparentOf(options.span);
    const { outputs, queueS, inferS } = await inferWindows({ rgb: new Uint8Array(0), file: frames.file, slotToFrame: frames.slotToFrame, trace }, knobs, options.signal);
    const postStarted = now();
    const postSpan = deps.tracer && options.span && startSpan(deps.tracer, 'postprocess', options.span);
    const post = postprocess(manifest, outputs, knobs);
    postSpan?.end();
    return { ...post, timings_s: { queue: round6(queueS), infer: round6(inferS), post: round6((now() - postStarted) / 1000) } };
  };

  const classify: Classify = async (file, knobs, options = {}) => {
    const { signal } = options;
    const started = now();
    const enqueuedAt = Math.min(options.enqueuedAt ?? started, started);
    const name = options.name ?? file;
    readable(file, name);

    const job = { file, name, frames, size, resizeShortSide: shortSide, scaleFlags, limits, thumbnails: options.explain === true, framesFile: options.framesFile };
    const trace = options.span && traceparentOf(options.span);
    const decoded = await decoder.run(job, signal, trace === undefined ? undefined : [trace]);
    const decodeS = (now() - started) / 1000;
    options.onDecoded?.();
    const { info } = decoded;
    if (decoded.padded > 0) deps.logger.warn({ video: name, padded: decoded.padded, frameCount: decoded.frameCount }, 'frames missing from the video; repeating their neighbours');

    // The frames go to the inference worker as they came, bytes (or the file holding them); it normalises them there.
    const { outputs, queueS, inferS } = await infer({ rgb: decoded.rgb, file: decoded.framesFile, slotToFrame: decoded.slotToFrame, trace }, knobs, signal);
    const postStarted = now();
    const postSpan = deps.tracer && options.span && startSpan(deps.tracer, 'postprocess', options.span);
    const { probabilities, ...post } = postprocess(manifest, outputs, knobs);
    const explanation = options.explain
      ? explain({
          manifest,
          patchStopLayer: outputs.patchStopLayer,
          mergedPerLayer: post.tokens.merged_per_layer,
          indices: decoded.indices,
          fps: info.fps,
          thumbnails: decoded.thumbnails ?? [],
        })
      : undefined;
    const finished = now();
    postSpan?.end();
    return {
      ...post,
      knobs,
      video: {
        width: info.width,
        height: info.height,
        rotation: info.rotation,
        duration_s: info.durationS ?? null,
        frame_count: decoded.frameCount,
        frame_count_source: decoded.frameCountSource,
        sampled_indices: decoded.indices,
        decoded_frames: decoded.decodedFrames,
        seeks: decoded.seeks,
        padded_frames: decoded.padded,
      },
      timings_s: {
        decode: round6(decodeS),
        queue: round6((started - enqueuedAt) / 1000 + queueS),
        infer: round6(inferS),
        post: round6((finished - postStarted) / 1000),
        total: round6((finished - enqueuedAt) / 1000),
      },
      ...(options.probabilities ? { probabilities } : {}),
      ...(explanation ? { explain: explanation } : {}),
    };
  };
  return { classify, classifyFrames };
}

/**
 * A clear FILE_NOT_FOUND before a worker is asked. Synchronous: fs.promises.access goes through
 * libuv's thread pool, and the round trip cost the process ~50 µs of CPU more per call than the
 * call itself (3,000 calls each, alternated, 2-core AMD EPYC, 2026-12-07).
 */
function readable(file: string, name: string): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw new EngineError('FILE_NOT_FOUND', `${name}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot be read'}`, { video: name }, { cause: err });
  }
}
