/**
 * What the HTTP layer needs from the engine, as a type: the app is written against this port, so
 * tests can hand it a real engine, a wrapped one, or a promise of one that is still warming up.
 * `openEngine` is the one place that turns the service config into a real engine.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import { createEngine, type Engine } from '../engine/index.js';

export type EnginePort = Pick<Engine, 'manifest' | 'info' | 'classify' | 'validateKnobs' | 'stats'>;

/** The real engine with the service's limits. The caller owns it and closes it. */
export function openEngine(config: AppConfig, logger: Logger): Promise<Engine> {
  return createEngine({
    modelDir: config.modelDir,
    logger,
    config: {
      executionProviders: config.executionProviders,
      intraOpNumThreads: config.intraOpThreads,
      maxDurationS: config.limits.maxDurationS,
      maxPixels: config.limits.maxPixels,
      decodeTimeoutMs: config.limits.decodeTimeoutMs,
      batchMaxSize: config.batch.maxSize,
      batchMaxDelayMs: config.batch.maxDelayMs,
    },
  });
}
