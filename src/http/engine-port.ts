/**
 * What the HTTP layer needs from the engine, as a type: the app is written against this port, so
 * tests can hand it a real engine, a wrapped one, or a promise of one that is still warming up.
 * `openEngine` is the one place that turns the service config into a real engine.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import { createEngine, type Engine, type EngineError } from '../engine/index.js';

export type EnginePort = Pick<Engine, 'manifest' | 'info' | 'classify' | 'validateKnobs' | 'stats'>;

/**
 * The real engine with the service's limits. The caller owns it and closes it; `onFatal` hears of
 * an engine that stopped for good after it had started (no worker within WORKER_MAX_DOWN_MS).
 */
export function openEngine(config: AppConfig, logger: Logger, onFatal?: (error: EngineError) => void): Promise<Engine> {
  return createEngine({
    modelDir: config.modelDir,
    logger,
    onFatal,
    config: {
      workerRestartBackoffMs: config.workers.restartBackoffMs,
      workerRestartBackoffMaxMs: config.workers.restartBackoffMaxMs,
      workerMaxDownMs: config.workers.maxDownMs,
      precision: config.modelPrecision,
      executionProviders: config.executionProviders,
      intraOpNumThreads: config.intraOpThreads,
      maxDurationS: config.limits.maxDurationS,
      maxPixels: config.limits.maxPixels,
      decodeTimeoutMs: config.limits.decodeTimeoutMs,
      // One decode worker per queue slot: at most CONCURRENCY videos decode at once.
      decodeWorkers: config.queue.concurrency,
      decodeThreads: config.decode.threads,
      decodeHwaccel: config.decode.hwaccel,
      batchMaxSize: config.batch.maxSize,
      batchMaxDelayMs: config.batch.maxDelayMs,
    },
  });
}
