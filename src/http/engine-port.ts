/**
 * What the HTTP layer needs from the engine, as a type: the app is written against this port, so
 * tests can hand it a real engine, a wrapped one, or a promise of one that is still warming up.
 * `openEngine` is the one place that turns the service config into a real engine.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import { createFfmpegRunner, type FfmpegRunner } from '../engine/ffmpeg-runner.js';
import { resolveFfmpegBinaries } from '../engine/ffmpeg-binaries.js';
import { createEngine, EngineError, type Engine } from '../engine/index.js';

export type EnginePort = Pick<Engine, 'manifest' | 'info' | 'classify' | 'validateKnobs' | 'stats'>;

/** The real engine with the service's limits. The caller owns it and closes it. */
export async function openEngine(config: AppConfig, logger: Logger): Promise<Engine> {
  const binaries = resolveFfmpegBinaries();
  logger.info({ ffmpeg: binaries.ffmpeg, ffprobe: binaries.ffprobe }, 'ffmpeg resolved');
  return createEngine({
    modelDir: config.modelDir,
    logger,
    runner: limitPixels(createFfmpegRunner(binaries), config.limits.maxPixels),
    config: {
      executionProviders: config.executionProviders,
      intraOpNumThreads: config.intraOpThreads,
      maxDurationS: config.limits.maxDurationS,
      decodeTimeoutMs: config.limits.decodeTimeoutMs,
    },
  });
}

/**
 * Refuses a video whose frames exceed `maxPixels` right after ffprobe has described it, before
 * any decoding. The engine has no pixel limit of its own yet, so this wraps its ffmpeg runner and
 * reads the same ffprobe JSON the probe stage reads.
 */
export function limitPixels(inner: FfmpegRunner, maxPixels: number): FfmpegRunner {
  return {
    async run(tool, args, options) {
      const result = await inner.run(tool, args, options);
      if (tool !== 'ffprobe' || result.exitCode !== 0 || !args.includes('-show_streams')) return result;
      let streams: Array<{ codec_type?: string; width?: number; height?: number; disposition?: { attached_pic?: number } }> = [];
      try {
        streams = (JSON.parse(result.stdout.toString('utf8')) as { streams?: typeof streams }).streams ?? [];
      } catch {
        return result; // the probe stage reports unreadable output itself
      }
      const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
      const pixels = (video?.width ?? 0) * (video?.height ?? 0);
      if (pixels > maxPixels) {
        throw new EngineError('VIDEO_TOO_LARGE', `the video is ${video?.width}x${video?.height} (${pixels} pixels); the limit is ${maxPixels} pixels per frame`, {
          width: video?.width,
          height: video?.height,
          maxPixels,
        });
      }
      return result;
    },
  };
}
