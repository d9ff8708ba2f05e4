/**
 * The stages wired in one place: knobs → probe → sample+decode (ffmpeg scales and crops) →
 * preprocess → infer (worker process) → postprocess. Each stage is its own module; this file only
 * passes values along, times the stages and lends out the reusable buffers.
 */
import { access, constants } from 'node:fs/promises';
import type { Logger } from 'pino';
import { EngineError } from '../errors.js';
import type { EngineConfig } from './config.js';
import { decodeFrames, type DecodeStrategy } from './decode.js';
import type { FfmpegRunner } from './ffmpeg-runner.js';
import { createBatcher } from './batcher.js';
import type { KnobValidator, Knobs } from './knobs.js';
import type { LoadedModel } from './model.js';
import { postprocess, type Prediction, type TokenReport } from './postprocess.js';
import { cropGeometry, Preprocessor } from './preprocess.js';
import { probe } from './probe.js';
import type { SessionHost } from './session-host.js';

/** One classified video. Every field is in the CLI's JSON line and the HTTP response. */
export interface ClassifyResult {
  file: string;
  model: { name: string; version: string };
  top: Prediction[];
  tokens: TokenReport;
  /** GFLOPs this video cost, and what the same model costs dense (keep 1, no halting). */
  gflops: number;
  dense_gflops: number;
  knobs: Knobs;
  video: {
    width: number;
    height: number;
    rotation: number;
    duration_s: number | null;
    frame_count: number;
    frame_count_source: 'container' | 'counted' | 'estimated';
    sampled_indices: number[];
    decode_strategy: DecodeStrategy;
    /** Slots that repeat the last frame because the video ended before its declared length. */
    padded_frames: number;
  };
  /** Seconds per stage: decode covers probe, ffmpeg and preprocessing. */
  timings_s: { decode: number; queue: number; infer: number; post: number; total: number };
  /** Softmax over every class, only when asked for (ClassifyOptions.probabilities). */
  probabilities?: Float64Array;
}

export interface ClassifyOptions {
  signal?: AbortSignal | undefined;
  /** Also return the probability of every class (the OIP PROBABILITIES output). */
  probabilities?: boolean | undefined;
}

export interface PipelineDeps {
  model: LoadedModel;
  config: EngineConfig;
  runner: FfmpegRunner;
  host: SessionHost;
  validateKnobs: KnobValidator;
  /** Milliseconds, monotonic. */
  now: () => number;
  logger: Logger;
}

export type Classify = (file: string, knobs?: unknown, options?: ClassifyOptions) => Promise<ClassifyResult>;

interface Buffers {
  rgb: Uint8Array;
  tensor: Float32Array;
}

export function createPipeline(deps: PipelineDeps): Classify {
  const { model, config, runner, host, now } = deps;
  const { manifest } = model;
  const { frames, size, resize_short_side: shortSide, scale_flags: scaleFlags } = manifest.input;
  const preprocessor = new Preprocessor(manifest.input);
  const dims: [number, number, number, number, number] = [1, 3, frames, size, size];
  const infer = createBatcher(host, dims, { maxSize: config.batchMaxSize, maxDelayMs: config.batchMaxDelayMs }, now);
  // Buffers are allocated once per concurrent request and reused; the pool grows to the peak
  // concurrency and no further.
  const pool: Buffers[] = [];
  const acquire = (): Buffers =>
    pool.pop() ?? { rgb: new Uint8Array(frames * preprocessor.frameBytes), tensor: new Float32Array(preprocessor.tensorLength) };

  return async (file, knobInput, options = {}) => {
    const { signal } = options;
    const started = now();
    const knobs = deps.validateKnobs(knobInput);
    await readable(file);

    const info = await probe(runner, file, { timeoutMs: config.probeTimeoutMs, signal });
    if (info.durationS !== undefined && info.durationS > config.maxDurationS) {
      throw new EngineError('VIDEO_TOO_LONG', `${file} lasts ${info.durationS.toFixed(1)} s; the limit is ${config.maxDurationS} s`, {
        file,
        durationS: info.durationS,
        maxDurationS: config.maxDurationS,
      });
    }
    if (info.width * info.height > config.maxPixels) {
      throw new EngineError('VIDEO_TOO_LARGE', `${file} is ${info.width}x${info.height}; the limit is ${config.maxPixels} pixels per frame`, {
        file,
        width: info.width,
        height: info.height,
        maxPixels: config.maxPixels,
      });
    }
    const geometry = cropGeometry(info.width, info.height, shortSide, size);
    const buffers = acquire();
    try {
      const decoded = await decodeFrames(
        runner,
        { file, info, frames, geometry, scaleFlags, out: buffers.rgb, signal, now },
        { timeoutMs: config.decodeTimeoutMs, seekMinDurationS: config.seekMinDurationS, seekConcurrency: config.seekConcurrency, strategy: config.decodeStrategy },
      );
      if (decoded.padded > 0) deps.logger.warn({ file, padded: decoded.padded, frameCount: decoded.frameCount }, 'video ended early; repeating its last frame');
      preprocessor.toTensor_(buffers.rgb, decoded.slotToFrame, buffers.tensor);
      const decodeS = (now() - started) / 1000;

      const { outputs, queueS, inferS } = await infer(buffers.tensor, knobs, signal);
      const postStarted = now();
      const { probabilities, ...post } = postprocess(manifest, outputs, knobs);
      const finished = now();
      return {
        file,
        model: { name: manifest.name, version: manifest.version },
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
          decode_strategy: decoded.strategy,
          padded_frames: decoded.padded,
        },
        timings_s: {
          decode: seconds(decodeS),
          queue: seconds(queueS),
          infer: seconds(inferS),
          post: seconds((finished - postStarted) / 1000),
          total: seconds((finished - started) / 1000),
        },
        ...(options.probabilities ? { probabilities } : {}),
      };
    } finally {
      pool.push(buffers);
    }
  };
}

async function readable(file: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
  } catch (err) {
    throw new EngineError('FILE_NOT_FOUND', `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot be read'}`, { file }, { cause: err });
  }
}

function seconds(s: number): number {
  return Math.round(s * 1e6) / 1e6;
}
