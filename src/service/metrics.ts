/**
 * Prometheus metrics, created once per app on an injected Registry (no prom-client global).
 * Naming follows prometheus.io/docs/practices/naming: one prefix, base units (seconds, FLOPs,
 * ratios 0..1), `_total` on counters, and never an id or a file name in a label. The buckets are
 * sized for video: a request takes from tens of milliseconds (tiny model) to a minute (long 4K
 * file on CPU), where prom-client's default 5 ms..10 s buckets would lose the tail.
 *
 * The registry is an OpenMetrics one so that the request and stage duration histograms can carry
 * exemplars: the trace and span ids of a traced request that fell in a bucket (only when tracing
 * is on). /metrics answers OpenMetrics to a scraper that asks for it (Prometheus does) and the
 * classic text format to everyone else (exposition.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type OpenMetricsContentType } from 'prom-client';
import type { WorkerPoolStats } from '../engine/index.js';
import type { VideoAnswer } from '../engine/result.js';
import type { EngineError } from '../errors.js';
import type { QueueStats } from './queue.js';

export const PREFIX = 'haltingvt_';

/** The service's registries write OpenMetrics (exposition.ts serves either format). */
export type MetricsRegistry = Registry<OpenMetricsContentType>;

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
// 10^6 .. 10^12 FLOPs in half decades: the tiny fixture (~2.5 MFLOPs) to the paper's largest model (~55 GFLOPs) and beyond.
const FLOPS = Array.from({ length: 13 }, (_, i) => Number((10 ** (6 + i / 2)).toPrecision(3)));
const TOKENS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const RATIO = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
const BATCH = [1, 2, 4, 8, 16, 32, 64, 128];
// A window's lag: tens of milliseconds when inference keeps up, a stride (2 s by default) when it does not.
const LAG = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16];
const STREAM_SECONDS = [1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

export type Stage = 'queue' | 'decode' | 'infer' | 'post';
export type Protocol = 'http' | 'grpc';
/** The ids of the traced request or video an observation came from (telemetry/spans.ts traceIds). */
export type Exemplar = { trace_id: string; span_id: string } | undefined;
const NO_EXEMPLAR = {};

/** Values read at each scrape rather than pushed, so they are never stale. */
export interface ScrapeSources {
  /** The one readiness answer (lifecycle.ready()). */
  ready: () => boolean;
  /** The loaded engine's worker pools by name (e.g. `inference`); undefined before it loads. */
  workers: () => Record<string, WorkerPoolStats> | undefined;
  /** Upload files on disk and their bytes. */
  uploads: () => { files: number; bytes: number };
}

export interface Metrics {
  registry: MetricsRegistry;
  /**
   * One answered request or call: `route` is the HTTP route pattern (never the raw URL) or the
   * gRPC method's path; `status` the HTTP status, for gRPC the catalogue status of its error (200: OK).
   */
  observeRequest(protocol: Protocol, route: string, method: string, status: number, seconds: number, exemplar?: Exemplar): void;
  /** One classified video, the engine's answer as it is. */
  observeVideo(result: VideoAnswer, exemplar?: Exemplar): void;
  videoFailed(): void;
  batch(items: number): void;
  /** One error answered (a batch counts each failed item); the same error object is counted once however many layers report it. */
  error(error: EngineError): void;
  /** The work queue's counts (queue.ts QueueStats), whenever they change. */
  queue(stats: QueueStats): void;
  inflight(delta: 1 | -1): void;
  /** Reads these at every scrape. */
  watch(sources: ScrapeSources): void;
  modelReady(info: { name: string; version: string; executionProvider: string } | undefined): void;
  /** Live streams: one admitted; one ended (`how`: its end reason, or client_gone) after `seconds`. */
  streamOpened(): void;
  streamEnded(how: string, seconds: number): void;
  /** One window answered: its FLOPs and its lag (from its last frame's arrival to its event). */
  observeWindow(flops: number, lagS: number): void;
  windowsDropped(count: number): void;
  windowFailed(): void;
  /** A pulled stream: a reconnection attempt (`reason`: lost, stalled, unreachable, failed), and the stream time a loss cost. */
  sourceReconnect(reason: string): void;
  sourceGap(seconds: number): void;
  /** A source refused by the operator's policy: when asked for (`admission`) or by the decoder's proxy (`egress`: a playlist segment, a redirect). */
  sourceRefused(stage: 'admission' | 'egress'): void;
  /** A request for a pulled stream held by another replica, sent there (`answered`) or not (`unreachable`). */
  streamForwarded(outcome: 'answered' | 'unreachable'): void;
}

/**
 * How often the event-loop delay histogram (nodejs_eventloop_lag_p99_seconds and its kin) samples the
 * loop. prom-client's default, 10 ms, is a timer that wakes an idle process 100 times a second: the
 * main process of a service with no traffic burnt 13 ms of CPU per second that way, against 1-4.5 with
 * 100 ms (2 cores, 2026-12-07, 40 s windows). A stall of 100 ms or more is still seen every time it
 * happens, and a shorter one when it covers a tick (in proportion to its length). The gauges report
 * each tick's whole interval, so they now idle at ~0.1 s instead of ~0.01 (README, "Metrics").
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/** A registry with the process and Node.js default metrics, as the server uses. */
export function createRegistry(options: { defaultMetrics?: boolean } = {}): MetricsRegistry {
  const registry = new Registry<OpenMetricsContentType>();
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // Gauges named like counters fail `promtool check metrics`; each is the sum of the per-type
    // gauge of the same name without `_total` (e.g. sum(nodejs_active_handles)), which stays.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  }
  return registry;
}

export function createMetrics(registry: MetricsRegistry): Metrics {
  const registers = [registry];
  const requests = new Counter({
    name: `${PREFIX}requests_total`,
    help: 'Requests answered (HTTP requests and gRPC calls), by protocol, route, method and status code (for gRPC the HTTP status of its error, 200 when OK)',
    labelNames: ['protocol', 'route', 'method', 'status'] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: `${PREFIX}request_duration_seconds`,
    help: 'Time from receiving a request or call to the end of its answer, upload included',
    labelNames: ['protocol', 'route', 'method'] as const,
    buckets: SECONDS,
    registers,
    enableExemplars: true,
  });
  const stageDuration = new Histogram({
    name: `${PREFIX}stage_duration_seconds`,
    help: 'Time one video spent in each stage: queue (service queue and inference worker), decode (decode worker and preprocessing), infer, post',
    labelNames: ['stage'] as const,
    buckets: SECONDS,
    registers,
    enableExemplars: true,
  });
  const queueDepth = new Gauge({ name: `${PREFIX}queue_depth`, help: 'Videos waiting for a slot in the service queue', registers });
  const running = new Gauge({ name: `${PREFIX}queue_running`, help: 'Videos holding a queue slot: being decoded (or, past the cap on inferring videos, inferred)', registers });
  const inferring = new Gauge({ name: `${PREFIX}queue_inferring`, help: 'Decoded videos that gave their queue slot back and wait for or are in inference (at most CONCURRENCY)', registers });
  const inflight = new Gauge({
    name: `${PREFIX}inflight_requests`,
    help: 'Inference requests in progress, from the first byte of the upload to the response',
    registers,
  });
  const videos = new Counter({
    name: `${PREFIX}videos_total`,
    help: 'Videos handed to the engine, by outcome (ok or error)',
    labelNames: ['outcome'] as const,
    registers,
  });
  const batches = new Counter({ name: `${PREFIX}batches_total`, help: 'Batch requests accepted', registers });
  const batchSize = new Histogram({ name: `${PREFIX}batch_size_videos`, help: 'Videos per batch request', buckets: BATCH, registers });
  const flops = new Histogram({
    name: `${PREFIX}video_flops`,
    help: 'FLOPs (1 multiply-add = 1 FLOP) spent on one video',
    buckets: FLOPS,
    registers,
  });
  const tokens = new Histogram({
    name: `${PREFIX}video_tokens`,
    help: 'Tokens the joint layers processed for one video, all layers summed',
    buckets: TOKENS,
    registers,
  });
  const kept = new Histogram({
    name: `${PREFIX}video_kept_token_ratio`,
    help: 'Tokens processed over what a dense run processes, per video (0..1)',
    buckets: RATIO,
    registers,
  });
  const layerTokens = new Counter({
    name: `${PREFIX}layer_active_tokens_total`,
    help: 'Tokens processed by each joint layer (0-based index), summed over videos; divide by videos_total for the mean',
    labelNames: ['layer'] as const,
    registers,
  });
  const counted = new WeakSet<EngineError>();
  const errors = new Counter({
    name: `${PREFIX}errors_total`,
    help: 'Errors answered, by error code (a batch counts each failed item)',
    labelNames: ['code'] as const,
    registers,
  });
  // Read at each scrape (prom-client calls collect() first) from what watch() was given. The engine
  // keeps the worker counts, so those counters are set to its totals rather than counted here.
  let sources: ScrapeSources | undefined;
  const pools = (): Array<[string, WorkerPoolStats]> => Object.entries(sources?.workers() ?? {});
  const ready = new Gauge({
    name: `${PREFIX}model_ready`,
    help: '1 when the service is ready (model loaded and warm, an inference worker can run, not draining), else 0',
    registers,
    collect() {
      if (sources) this.set(sources.ready() ? 1 : 0);
    },
  });
  const uploadsInProgress = new Gauge({
    name: `${PREFIX}uploads_in_progress`,
    help: 'Requests admitted (a place taken before their upload is read) and not answered yet; at most QUEUE_SIZE + CONCURRENCY',
    registers,
  });
  for (const [name, help, field] of [
    ['upload_files', 'Upload temp files on disk', 'files'],
    ['upload_bytes', 'Bytes of upload temp files on disk', 'bytes'],
  ] as const) {
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers,
      collect() {
        this.set(sources?.uploads()[field] ?? 0);
      },
    });
  }
  new Gauge({
    name: `${PREFIX}workers_alive`,
    help: 'Worker processes ready to serve, by pool',
    labelNames: ['pool'] as const,
    registers,
    collect() {
      for (const [pool, stats] of pools()) this.set({ pool }, stats.alive);
    },
  });
  for (const [name, help, field] of [
    ['worker_restarts_total', 'Ready worker processes that died and were replaced, by pool', 'restarts'],
    ['worker_retired_total', 'Worker processes replaced on purpose after their job limit (DECODE_WORKER_MAX_VIDEOS), by pool', 'retired'],
    ['worker_failed_starts_total', 'Worker processes that died or were killed before they were ready, by pool', 'failedStarts'],
  ] as const) {
    new Counter({
      name: `${PREFIX}${name}`,
      help,
      labelNames: ['pool'] as const,
      registers,
      collect() {
        this.reset();
        for (const [pool, stats] of pools()) this.inc({ pool }, stats[field]);
      },
    });
  }
  const modelInfo = new Gauge({
    name: `${PREFIX}model_info`,
    help: 'The served model (value is always 1)',
    labelNames: ['model', 'version', 'execution_provider'] as const,
    registers,
  });
  const streamsActive = new Gauge({ name: `${PREFIX}streams_active`, help: 'Live streams open now', registers });
  const streamsEnded = new Counter({
    name: `${PREFIX}streams_total`,
    help: 'Live streams ended, by how: end_of_stream, idle, max_duration, error, shutdown, gave_up, deleted or client_gone',
    labelNames: ['end'] as const,
    registers,
  });
  const streamDuration = new Histogram({ name: `${PREFIX}stream_duration_seconds`, help: 'Wall-clock life of a live stream', buckets: STREAM_SECONDS, registers });
  const windows = new Counter({
    name: `${PREFIX}stream_windows_total`,
    help: 'Live stream windows, by outcome: classified, dropped (inference behind, drop_oldest) or failed',
    labelNames: ['outcome'] as const,
    registers,
  });
  const windowLag = new Histogram({
    name: `${PREFIX}stream_window_lag_seconds`,
    help: 'From the arrival of a window\'s last frame to its event',
    buckets: LAG,
    registers,
  });
  const windowFlops = new Histogram({ name: `${PREFIX}stream_window_flops`, help: 'FLOPs spent on one live stream window', buckets: FLOPS, registers });
  const reconnects = new Counter({
    name: `${PREFIX}stream_reconnects_total`,
    help: 'Reconnection attempts of pulled live streams, by reason: lost, stalled, unreachable or failed',
    labelNames: ['reason'] as const,
    registers,
  });
  const gaps = new Counter({ name: `${PREFIX}stream_gap_seconds_total`, help: 'Stream time lost to pulled sources\' disconnections (last packet before to first after)', registers });
  const refusals = new Counter({
    name: `${PREFIX}source_refusals_total`,
    help: 'Sources refused by the operator\'s allow-list: when a stream was asked for (admission) or a URL its decoder opened (egress)',
    labelNames: ['stage'] as const,
    registers,
  });
  const forwards = new Counter({
    name: `${PREFIX}stream_forwards_total`,
    help: 'Requests for pulled streams held by another replica (STREAM_ROUTING_KEY), by outcome: answered by that replica, or unreachable',
    labelNames: ['outcome'] as const,
    registers,
  });
  for (const outcome of ['answered', 'unreachable']) forwards.inc({ outcome }, 0);
  for (const reason of ['lost', 'stalled', 'unreachable', 'failed']) reconnects.inc({ reason }, 0);
  for (const stage of ['admission', 'egress']) refusals.inc({ stage }, 0);
  streamsActive.set(0);
  for (const outcome of ['classified', 'dropped', 'failed']) windows.inc({ outcome }, 0);
  ready.set(0);
  uploadsInProgress.set(0);
  queueDepth.set(0);
  running.set(0);
  inferring.set(0);
  inflight.set(0);

  return {
    registry,
    observeRequest(protocol, route, method, status, seconds, exemplar) {
      requests.inc({ protocol, route, method, status: String(status) });
      requestDuration.observe({ labels: { protocol, route, method }, value: seconds, exemplarLabels: exemplar ?? NO_EXEMPLAR });
    },
    observeVideo(result, exemplar) {
      videos.inc({ outcome: 'ok' });
      const t = result.timings_s;
      const exemplarLabels = exemplar ?? NO_EXEMPLAR;
      stageDuration.observe({ labels: { stage: 'queue' }, value: t.queue, exemplarLabels });
      stageDuration.observe({ labels: { stage: 'decode' }, value: t.decode, exemplarLabels });
      stageDuration.observe({ labels: { stage: 'infer' }, value: t.infer, exemplarLabels });
      stageDuration.observe({ labels: { stage: 'post' }, value: t.post, exemplarLabels });
      flops.observe(result.gflops * 1e9);
      tokens.observe(result.tokens.total);
      kept.observe(result.tokens.kept_ratio);
      result.tokens.per_layer.forEach((n, layer) => layerTokens.inc({ layer: String(layer) }, n));
    },
    videoFailed() {
      videos.inc({ outcome: 'error' });
    },
    batch(items) {
      batches.inc();
      batchSize.observe(items);
    },
    error(error) {
      if (counted.has(error)) return;
      counted.add(error);
      errors.inc({ code: error.code });
    },
    queue(stats) {
      queueDepth.set(stats.queued);
      running.set(stats.running);
      inferring.set(stats.inferring);
      uploadsInProgress.set(stats.admitted);
    },
    inflight(delta) {
      inflight.inc(delta);
    },
    watch(given) {
      sources = given;
    },
    streamOpened() {
      streamsActive.inc();
    },
    streamEnded(how, seconds) {
      streamsActive.dec();
      streamsEnded.inc({ end: how });
      streamDuration.observe(seconds);
    },
    observeWindow(windowFlopCount, lagS) {
      windows.inc({ outcome: 'classified' });
      windowFlops.observe(windowFlopCount);
      windowLag.observe(lagS);
    },
    windowsDropped(count) {
      windows.inc({ outcome: 'dropped' }, count);
    },
    sourceReconnect(reason) {
      reconnects.inc({ reason });
    },
    sourceGap(seconds) {
      gaps.inc(seconds);
    },
    sourceRefused(stage) {
      refusals.inc({ stage });
    },
    streamForwarded(outcome) {
      forwards.inc({ outcome });
    },
    windowFailed() {
      windows.inc({ outcome: 'failed' });
    },
    modelReady(info) {
      ready.set(info ? 1 : 0);
      modelInfo.reset();
      if (info) modelInfo.set({ model: info.name, version: info.version, execution_provider: info.executionProvider }, 1);
    },
  };
}
