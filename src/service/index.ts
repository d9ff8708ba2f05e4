/**
 * The service layer: everything between a transport and the engine, written once. Every way in
 * (the /v1 routes, the Open Inference Protocol over HTTP and over gRPC, the CLI) is a thin adapter
 * that turns its wire form into calls here and the answers back into its wire form; none of them
 * imports another.
 *
 * One request: admit (a place in the bounded queue and a lifecycle slot, taken before anything is
 * read, so a refused client hears 429 or 503 before it sends its video) → spool (each video to a
 * temp file: libav needs a seekable file) → queue (at most CONCURRENCY videos decoding, and as many
 * more decoded and waiting for inference) →
 * engine → metrics. `classify()` does all of it for videos already in hand; a transport that
 * receives an upload as a stream takes the steps itself: `admit()`, spool into `admission.temps`,
 * `admission.classify()`, `admission.release()`.
 *
 * ```ts
 * const service = createService({ config, engine, logger, registry });
 * const [outcome] = await service.classify([{ bytes, filename: 'clip.mp4' }], { knobs: service.engine().validateKnobs({ top_k: 3 }), signal });
 * ```
 */
import { lookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config.js';
import type { ClassifyResult, Knobs } from '../engine/index.js';
import { EngineError, isEngineError } from '../errors.js';
import { createAuthorizationCheck } from './auth.js';
import { asServiceError, logFailure, type FailureLog } from './errors.js';
import { inLanes } from './lanes.js';
import { createLifecycle, type EnginePort, type Lifecycle } from './lifecycle.js';
import { createMetrics, type Metrics, type MetricsRegistry } from './metrics.js';
import { createWorkQueue, type WorkQueue } from './queue.js';
import { createSourcePolicy, type Resolve } from './sources/policy.js';
import { createStreams, type Streams } from './streams.js';
import { createUploadArea, type TempFiles, type UploadArea } from './uploads.js';
import { videoSpanAttributes } from './tracing.js';
import { endFailed, startSpan, traceIds, type Span, type Tracer } from '../telemetry/spans.js';

export type { EnginePort, Lifecycle } from './lifecycle.js';
export type { Metrics, Protocol } from './metrics.js';
export type { TempFiles, UploadArea } from './uploads.js';
export type { EmitEvent, OpenStream, StreamRequest, Streams } from './streams.js';

export interface ServiceDeps {
  config: ServiceConfig;
  /** The engine, or the promise of one still loading: readiness turns true when it resolves. */
  engine: EnginePort | Promise<EnginePort>;
  logger: Logger;
  registry: MetricsRegistry;
  /** Milliseconds, monotonic: the engine's clock (performance.now), since queue waits are handed to it. */
  now?: (() => number) | undefined;
  /** Where uploads are spooled; defaults to a fresh folder in config.uploadDir (tests inject a full disk). */
  uploads?: UploadArea | undefined;
  /** Wall clock, epoch ms (stream events' times and lag); defaults to performance's. */
  wallClock?: (() => number) | undefined;
  /** Name resolution for pulled sources' hosts (the policy's and the egress proxy's); defaults to the system's. */
  resolve?: Resolve | undefined;
  /**
   * Only when tracing is on (telemetry/tracing.ts): a span per video under the transport's active
   * span, with its queue wait and the engine's stages under it, and one trace per live stream.
   */
  tracer?: Tracer | undefined;
}

const resolveAll: Resolve = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** One video of a request: on disk already, in memory, or refused while it was received. */
export type VideoInput = { filename: string | null } & ({ path: string } | { bytes: Uint8Array } | { error: EngineError });

export type VideoOutcome = { ok: true; filename: string | null; result: ClassifyResult } | { ok: false; filename: string | null; error: EngineError };

export interface ClassifyRequest {
  knobs: Knobs;
  /** Aborts when the caller goes away: queued videos leave the queue, running ones are cancelled. */
  signal: AbortSignal;
  explain?: boolean | undefined;
  /** Also the softmax over every class (the OIP PROBABILITIES output). */
  probabilities?: boolean | undefined;
  /** The request is a batch request (counted in batches_total), whatever its size. */
  batch?: boolean | undefined;
  /** The request's logger (with its id): failed videos of a multi-video request are logged on it. */
  log?: FailureLog | undefined;
}

/** A request's place in the service, from before its upload is read to its answer. */
export interface Admission {
  readonly engine: EnginePort;
  /** The request's temp files; all removed by release(). */
  readonly temps: TempFiles;
  /**
   * Every video through the queue to the engine, up to CONCURRENCY side by side (lanes.ts says why
   * single requests still get their turn during a batch); one outcome per video, in order.
   */
  classify(videos: readonly VideoInput[], request: ClassifyRequest): Promise<VideoOutcome[]>;
  /** Removes the temp files and gives the place back; safe to call twice. */
  release(): Promise<void>;
}

export interface Service {
  readonly lifecycle: Lifecycle;
  readonly metrics: Metrics;
  readonly limits: Pick<ServiceConfig, 'maxUploadBytes' | 'maxBatchItems'>;
  /** The engine for new work: NOT_READY, DRAINING or WORKER_UNAVAILABLE when no work should start now. */
  engine(): EnginePort;
  /** The loaded engine for metadata, also while draining; NOT_READY while it loads. */
  loaded(): EnginePort;
  /** Throws UNAUTHORIZED unless the value of an Authorization header (or metadata) carries the token; a no-op without AUTH_TOKEN. */
  authorize(header: unknown): void;
  /** Takes a place for one request (QUEUE_FULL when none is left) before anything is read. */
  admit(): Admission;
  /** admit → spool → queue → engine → metrics → release, for videos already in hand. */
  classify(videos: readonly VideoInput[], request: ClassifyRequest): Promise<VideoOutcome[]>;
  /** Live streams: open (admitted before any byte is read), then run; all ended at shutdown. */
  readonly streams: Streams;
  /** Removes the upload folder (at shutdown). */
  close(): void;
}

/**
 * What errors and logs call a video: the client's file name, quoted; else its place in the request.
 * Never the temp path, which means nothing to the client (and is the server's business).
 */
export function videoName(filename: string | null, index: number, count: number): string {
  if (filename) return JSON.stringify(filename);
  return count === 1 ? 'the video' : `video ${index + 1} of ${count}`;
}

export function createService(deps: ServiceDeps): Service {
  const { config, logger, tracer } = deps;
  const now = deps.now ?? (() => performance.now());
  const metrics = createMetrics(deps.registry);
  const lifecycle = createLifecycle(deps.engine, {
    onReady: (engine) => {
      const { model, session } = engine.info;
      metrics.modelReady({ ...model, executionProvider: session.executionProvider });
      logger.info({ model: { name: model.name, version: model.version }, executionProvider: session.executionProvider }, 'model ready');
    },
    onFailed: (err) => logger.error({ err }, 'the model failed to load'),
    onInflight: (delta) => metrics.inflight(delta),
  });
  const queue: WorkQueue = createWorkQueue({
    concurrency: config.concurrency,
    size: config.queueSize,
    now,
    onChange: (stats) => metrics.queue(stats),
  });
  const uploads = deps.uploads ?? createUploadArea(config.uploadDir);
  metrics.watch({ ready: () => lifecycle.ready(), workers: () => lifecycle.loaded()?.stats().pools, uploads: () => uploads.usage() });

  const loaded = (): EnginePort => {
    const engine = lifecycle.loaded();
    if (!engine) throw new EngineError('NOT_READY', 'the model is still loading');
    return engine;
  };

  /** One video: to a temp file if it is not in one, through the queue, to the engine. */
  const classifyOne = async (engine: EnginePort, temps: TempFiles, video: VideoInput, name: string, request: ClassifyRequest): Promise<ClassifyResult> => {
    if ('error' in video) throw video.error;
    let file: string;
    if ('path' in video) file = video.path;
    else {
      if (video.bytes.length === 0) throw new EngineError('BAD_REQUEST', `${name} is empty`);
      if (video.bytes.length > config.maxUploadBytes) throw new EngineError('UPLOAD_TOO_LARGE', `${name} is larger than ${config.maxUploadBytes} bytes`, { maxBytes: config.maxUploadBytes });
      file = temps.path(video.filename ?? undefined);
      await temps.write(video.bytes, file);
    }
    const { knobs, signal, explain, probabilities } = request;
    const enqueuedAt = now();
    // The frames' scratch file is the request's, removed with its other temp files.
    const framesFile = temps.path();
    // Under the transport's active span; the queue span ends when a slot is free.
    const span = tracer && startSpan(tracer, 'classify video', undefined);
    let queueSpan: Span | undefined = span && startSpan(tracer, 'queue', span);
    // The slot is the decoding's: once the frames are out, the next video decodes while this one
    // waits for the inference worker (queue.ts).
    const run = (decoded: () => void): Promise<ClassifyResult> => {
      queueSpan?.end();
      queueSpan = undefined;
      return engine.classify(file, knobs, { signal, explain, probabilities, name, enqueuedAt, framesFile, span, onDecoded: decoded });
    };
    try {
      const { value } = await queue.run(run, signal);
      metrics.observeVideo(value, traceIds(span));
      span?.setAttributes(videoSpanAttributes(engine.info.model, value));
      span?.end();
      return value;
    } catch (err) {
      if (!isEngineError(err, 'QUEUE_FULL')) metrics.videoFailed();
      if (queueSpan) endFailed(queueSpan, asServiceError(err));
      if (span) endFailed(span, asServiceError(err));
      throw err;
    }
  };

  const admit = (): Admission => {
    const engine = lifecycle.engine();
    const giveBack = queue.admit();
    const leave = lifecycle.enter();
    const temps = uploads.session();
    let released = false;
    return {
      engine,
      temps,
      async classify(videos, request) {
        if (request.batch) metrics.batch(videos.length);
        const settled = await inLanes(videos, queue.concurrency, (video, index) => classifyOne(engine, temps, video, videoName(video.filename, index, videos.length), request));
        return settled.map((s, index): VideoOutcome => {
          const { filename } = videos[index] as VideoInput;
          if (s.status === 'fulfilled') return { ok: true, filename, result: s.value };
          const error = asServiceError(s.reason);
          // A caller that left is one ABORTED, counted when its transport answers the request.
          if (!request.signal.aborted) metrics.error(error);
          if (videos.length > 1 && request.log) logFailure(request.log, error, { index, video: filename }, 'video');
          return { ok: false, filename, error };
        });
      },
      async release() {
        if (released) return;
        released = true;
        try {
          await temps.removeAll();
        } finally {
          giveBack();
          leave();
        }
      },
    };
  };

  const authorize = createAuthorizationCheck(config.authToken);
  const wallClock = deps.wallClock ?? (() => performance.timeOrigin + performance.now());
  const sourcePolicy = createSourcePolicy(config.sources, deps.resolve ?? resolveAll);
  const streams = createStreams({ config: config.streams, lifecycle, uploads, metrics, wallClock, sourcePolicy, connectGuard: config.sources.guard, tracer });

  return {
    lifecycle,
    metrics,
    limits: { maxUploadBytes: config.maxUploadBytes, maxBatchItems: config.maxBatchItems },
    engine: () => lifecycle.engine(),
    loaded,
    authorize,
    admit,
    async classify(videos, request) {
      const admission = admit();
      try {
        return await admission.classify(videos, request);
      } finally {
        await admission.release();
      }
    },
    streams,
    close: () => uploads.dispose(),
  };
}
