/**
 * The decode stage's pool of long-lived decode worker processes (worker.ts), on the worker pool
 * (../workers/pool.ts) that the inference worker uses too: each worker decodes one video at a time;
 * a video past DECODE_TIMEOUT_MS kills its worker (DECODE_TIMEOUT), a worker that dies fails only
 * its own video (DECODER_CRASHED), and a caller that goes away kills the worker decoding its video,
 * so no CPU goes on a video nobody waits for (a restart costs ~0.1 s of CPU, a long decode seconds).
 * After DECODE_WORKER_MAX_VIDEOS videos a worker is retired for a fresh one, which bounds its
 * fragmenting malloc heap (docs/decisions.md, "Decode worker memory").
 */
import { EngineError } from '../../errors.js';
import type { EngineConfig } from '../config.js';
import { workerEntry } from '../workers/entry.js';
import { createWorkerPool, type PoolDeps, type StagePool } from '../workers/pool.js';
import type { DecodedVideo, DecodeJob } from './decode-video.js';

export type Hwaccel = EngineConfig['decodeHwaccel'];

/** What a decode worker is told at start. */
export interface DecodeInit {
  /** Decoder threads in the worker. */
  threads: number;
  hwaccel: Hwaccel;
}

/** What a decode worker says when it is ready. */
export interface DecodeWorkerInfo {
  /** Where it decodes: 'cuda' (NVDEC) or 'cpu'. */
  hardware: 'cuda' | 'cpu';
  /** Why not on the GPU when one was asked for. */
  reason: string | undefined;
  libav: string;
}

export interface DecoderInfo extends Omit<DecodeWorkerInfo, 'reason'> {
  workers: number;
  threads: number;
}

export interface DecodePoolOptions extends PoolDeps {
  workers: number;
  init: DecodeInit;
  /** Wall-clock limit for one video, from the moment a worker takes it. */
  timeoutMs: number;
  /** Videos after which a worker is retired and replaced (the pool's maxJobsPerWorker); 0 or absent: never. */
  maxVideosPerWorker?: number | undefined;
}

/** The decode stage's pool: run() decodes one video; ready() rejects if node-av cannot load at all. */
export type DecodePool = StagePool<DecoderInfo, DecodeJob, DecodedVideo>;

export function createDecodePool(options: DecodePoolOptions): DecodePool {
  const { logger, init } = options;
  const unavailable = (failedStarts: number): EngineError => new EngineError('DECODER_UNAVAILABLE', 'no decode worker is running; retry later', { failedStarts });
  const pool = createWorkerPool<DecodeInit, DecodeWorkerInfo, DecodeJob, DecodedVideo>({
    kind: 'decode',
    entry: options.entry ?? workerEntry(import.meta.url, 'worker'),
    size: options.workers,
    init,
    supervision: options.supervision,
    onAbortRunning: 'kill',
    maxJobsPerWorker: options.maxVideosPerWorker,
    jobTimeout: {
      ms: options.timeoutMs,
      error: (job) => new EngineError('DECODE_TIMEOUT', `decoding ${job.name} took longer than ${options.timeoutMs} ms`, { timeoutMs: options.timeoutMs }),
    },
    errors: {
      crashed: (job, f) =>
        new EngineError('DECODER_CRASHED', `the decoder process died while decoding ${job.name} (${f.why}); it has been replaced`, { video: job.name, code: f.code, signal: f.signal, stderr: f.stderr }),
      unavailable,
      gaveUp: (downMs) => new EngineError('DECODER_UNAVAILABLE', `no decode worker could start for ${downMs} ms; giving up`, {}),
    },
    logger,
    now: options.now,
    onFatal: options.onFatal,
  });
  const ready = pool.ready().then((first) => {
    const level = init.hwaccel === 'cuda' && first.hardware === 'cpu' ? 'warn' : 'info';
    const facts = { hwaccel: init.hwaccel, hardware: first.hardware, reason: first.reason, libav: first.libav, workers: options.workers, threads: init.threads };
    logger[level](facts, first.reason ? `decoding on the CPU: ${first.reason}` : 'decode workers ready');
    return { workers: options.workers, threads: init.threads, hardware: first.hardware, libav: first.libav } satisfies DecoderInfo;
  });
  ready.catch(() => undefined); // reported through ready()
  return {
    ready: () => ready,
    run: async (job, signal, trace) => (await pool.run(job, signal, trace)).result,
    accepting: () => pool.accepting(),
    stats: () => pool.stats(),
    close: () => pool.close(),
  };
}
