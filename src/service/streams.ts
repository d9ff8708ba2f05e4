/**
 * Live streams, written once for every transport: the pushed bytes go to the stream's own decoder
 * process (engine.openStream), each window it completes goes through the shared inference worker
 * (engine.classifyFrames), and every step becomes an event (stream-events.ts) that the transport
 * writes in its own framing.
 *
 * - Admission before any byte is decoded: the engine must take work and fewer than MAX_STREAMS may
 *   be open (STREAMS_FULL, 429).
 * - One window of a stream in inference at a time, so the shared worker serves streams in turn (no
 *   stream can starve the others); the next waits. When one more completes while one is waiting,
 *   `drop_oldest` drops the waiting one (lag stays under a stride), `block` stops reading the
 *   source until the waiting one starts (the sender is held back by TCP / HTTP/2 flow control).
 * - Every end is one `ended` event (but for a client that left): the source's end once the last
 *   windows are answered, an idle source, the longest duration, a failure (after an `error`
 *   event), or the service's shutdown. The decoder process never outlives its stream, and the
 *   stream's temp folder goes with it.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Knobs, LiveProcess, LiveSummary, LiveWindow } from '../engine/index.js';
import { EngineError, isEngineError } from '../errors.js';
import { asServiceError, logFailure, type FailureLog } from './errors.js';
import type { EnginePort, Lifecycle } from './lifecycle.js';
import { startPulledStream, type PullRequest, type PulledStream } from './pulled.js';
import { startEgressProxy, type EgressProxy } from './sources/egress-proxy.js';
import type { SourcePolicy } from './sources/policy.js';
import { parseSource } from './sources/source.js';
import { createStreamIds, type StreamRouting } from './stream-ids.js';
import type { Metrics } from './metrics.js';
import { STREAM_FORMATS, type StreamEvent, type StreamSettings } from './stream-events.js';
import { createWindowFlow, startedEvent, wireError } from './stream-windows.js';
import type { UploadArea } from './uploads.js';
import { startStreamTrace } from './tracing.js';
import type { Tracer } from '../telemetry/spans.js';

export interface StreamsConfig {
  /** Streams held at once, pushed and pulled together; 0: none. */
  max: number;
  idleTimeoutMs: number;
  maxDurationS: number;
  /** Pulled streams reachable through any replica (stream-ids.ts); absent: each replica answers for its own. */
  routing?: StreamRouting | undefined;
  pull: {
    /** Backoff between reconnection attempts: doubles from min to max, with ±25% jitter. */
    backoffMinS: number;
    backoffMaxS: number;
    connectTimeoutS: number;
    /** Events kept per pulled stream for replay (Last-Event-ID). */
    events: number;
    /** Ended pulled streams kept for GET (the oldest forgotten first). */
    keepEnded: number;
  };
}

export interface StreamRequest {
  settings: StreamSettings;
  knobs: Knobs;
  /** The pushed bytes (Buffers); paused and resumed for back-pressure. */
  source: Readable;
  /** Aborts when the client goes away: the stream stops at once, without an `ended` event. */
  signal: AbortSignal;
  /** The request's logger (with its id). */
  log: FailureLog;
}

export type EmitEvent = (event: StreamEvent) => void;

export interface OpenStream {
  readonly id: string;
  /** Runs the stream to its end; `emit` gets every event in order. Never rejects. */
  run(emit: EmitEvent): Promise<void>;
}

export interface Streams {
  /** STREAMS_FULL, or the engine's NOT_READY / DRAINING / WORKER_UNAVAILABLE, before anything is read. */
  open(request: StreamRequest): OpenStream;
  /**
   * A pulled stream, started: refused before any connection when the policy refuses the source
   * (SOURCE_NOT_ALLOWED; a name that does not resolve: SOURCE_UNREACHABLE), or as open() refuses.
   */
  pull(request: PullRequest): Promise<PulledStream>;
  /** A pulled stream by id (ended ones are kept a while); STREAM_NOT_FOUND. */
  get(id: string): PulledStream;
  /** The replica that holds a pulled stream this one does not, when its id says so (STREAM_ROUTING_KEY); a base URL. */
  owner(id: string): string | undefined;
  /** Pulled streams, oldest first, and how many pushed ones are open. */
  list(): { pulled: PulledStream[]; pushed: number; max: number };
  /** Ends a pulled stream (`ended: deleted`) and forgets it; STREAM_NOT_FOUND. */
  remove(id: string): Promise<void>;
  active(): number;
  /** STREAM_IDLE_TIMEOUT_MS, which also bounds a transport's wait for a stream's first message. */
  readonly idleTimeoutMs: number;
  /** Ends every stream with an `ended` event (shutdown); resolves when they have ended. */
  endAll(): Promise<void>;
}

export interface StreamsDeps {
  config: StreamsConfig;
  lifecycle: Lifecycle;
  uploads: UploadArea;
  metrics: Metrics;
  /** Wall clock, epoch ms: lag is measured against the decoder process's clock. */
  wallClock: () => number;
  /** What may be pulled; the egress proxy for HTTP(S) sources is started with the first. */
  sourcePolicy: SourcePolicy;
  /** The connect guard pulled decoders load (src/native/connect-guard.c). */
  connectGuard: string;
  /** Only when tracing is on: one trace per stream (tracing.ts). */
  tracer?: Tracer | undefined;
}

type EndReason = Extract<StreamEvent, { event: 'ended' }>['reason'];

/** Arrival times kept per stream: minutes of chunks at a camera's rate. */
const MAX_ARRIVALS = 8192;

export function createStreams(deps: StreamsDeps): Streams {
  const { config, lifecycle, uploads, metrics, wallClock } = deps;
  const running = new Map<string, (reason: EndReason) => void>();
  const finished = new Set<Promise<void>>();
  const pulled = new Map<string, PulledStream>();
  const ids = createStreamIds(config.routing);
  let proxy: Promise<EgressProxy> | undefined;

  const admit = (): EnginePort => {
    if (config.max === 0) throw new EngineError('STREAMS_FULL', 'this instance takes no live streams (MAX_STREAMS=0)', { maxStreams: 0 });
    const engine = lifecycle.engine();
    if (running.size >= config.max) throw new EngineError('STREAMS_FULL', `${running.size} live streams are open, the most this instance holds; retry later`, { maxStreams: config.max });
    return engine;
  };

  const pull = async (request: PullRequest): Promise<PulledStream> => {
    const { url, scheme } = parseSource(request.source.url, deps.sourcePolicy);
    admit();
    const id = ids.mint();
    running.set(id, () => undefined); // the place is taken while the source is checked
    let stream: PulledStream;
    try {
      await deps.sourcePolicy.check(scheme, url.hostname);
      proxy ??= startEgressProxy(deps.sourcePolicy);
      const egress = await proxy;
      const engine = lifecycle.engine();
      const leave = lifecycle.enter();
      metrics.streamOpened();
      stream = startPulledStream({
        id,
        request,
        engine,
        trace: deps.tracer && startStreamTrace(deps.tracer, id, 'pulled', { 'haltingvt.stream.source.scheme': scheme }),
        policy: deps.sourcePolicy,
        proxy: egress,
        metrics,
        temps: uploads.session(),
        wallClock,
        limits: { maxDurationS: config.maxDurationS, ...config.pull, guard: deps.connectGuard },
        ended: () => {
          running.delete(id);
          leave();
        },
      });
    } catch (err) {
      running.delete(id);
      if (isEngineError(err) && err.code === 'SOURCE_NOT_ALLOWED') metrics.sourceRefused('admission');
      throw err;
    }
    running.set(id, (reason) => void stream.stop(reason === 'shutdown' ? 'shutdown' : 'deleted'));
    finished.add(stream.done);
    void stream.done.finally(() => finished.delete(stream.done));
    pulled.set(id, stream);
    const over = [...pulled.values()].filter((s) => s.status().state === 'ended');
    for (const old of over.slice(0, Math.max(0, over.length - config.pull.keepEnded))) pulled.delete(old.id);
    return stream;
  };

  const get = (id: string): PulledStream => {
    const stream = pulled.get(id);
    if (!stream) throw new EngineError('STREAM_NOT_FOUND', `no pulled stream ${id} on this instance`, { stream: id });
    return stream;
  };

  const open = (request: StreamRequest): OpenStream => {
    const engine = admit();
    const id = randomBytes(8).toString('hex');
    let endNow: (reason: EndReason) => void = () => undefined;
    running.set(id, (reason) => endNow(reason)); // the place is taken now, before any byte is read
    const leave = lifecycle.enter();
    metrics.streamOpened();

    const run = async (emit: EmitEvent): Promise<void> => {
      const { settings, knobs, source, signal, log } = request;
      const startedAt = wallClock();
      const temps = uploads.session();
      let live: LiveProcess | undefined;
      let ending: EndReason | undefined;
      let failure: EngineError | undefined;
      let inputFull = false;
      let paused = false;
      const send = (event: StreamEvent): void => {
        if (!signal.aborted) emit(event);
      };

      // When each piece of the stream arrived here: a window's lag counts from its last frame's
      // arrival, a backlog in front of the decoder included. Pruned as windows pass.
      const arrivals: Array<{ end: number; at: number }> = [];
      let received = 0;
      const arrivedAt = (w: LiveWindow): number => {
        if (w.lastFrameByte === undefined) return w.lastFrameAt;
        while (arrivals.length > 1 && (arrivals[0] as { end: number }).end < w.lastFrameByte) arrivals.shift();
        const chunk = arrivals[0];
        return chunk && chunk.end >= w.lastFrameByte ? Math.min(chunk.at, w.lastFrameAt) : w.lastFrameAt;
      };

      const flow = (): void => {
        const hold = inputFull || windows.holding();
        if (hold && !paused) source.pause();
        else if (!hold && paused) source.resume();
        if (hold !== paused) watchIdle(!hold);
        paused = hold;
      };
      const trace = deps.tracer && startStreamTrace(deps.tracer, id, 'pushed');
      const windows = createWindowFlow({ engine, settings, knobs, metrics, temps, log, signal, wallClock, send, changed: () => flow(), trace });

      const stop = (reason: EndReason, error?: EngineError): void => {
        if (ending) return;
        ending = reason;
        // No byte is expected any more: a decoder still finishing what was sent is not idle.
        clearTimeout(idle);
        if (error) failure = error;
        source.pause();
        if (reason === 'end_of_stream' || reason === 'max_duration') {
          // What was sent is decoded and answered: the decoder ends when its input does.
          live?.input.end();
        } else {
          live?.stop(error ?? new EngineError('DRAINING', 'the stream was ended'));
          windows.stop();
        }
      };
      endNow = (reason) => stop(reason);

      // Idle is the sender's silence while we read: not while we hold it back (block, a full pipe),
      // nor once its stream has ended.
      let idle: NodeJS.Timeout | undefined;
      function watchIdle(reading: boolean): void {
        clearTimeout(idle);
        idle = reading && !ending ? setTimeout(() => stop('idle', new EngineError('STREAM_IDLE', `the stream sent no bytes for ${config.idleTimeoutMs} ms`, { idleTimeoutMs: config.idleTimeoutMs })), config.idleTimeoutMs) : undefined;
      }
      watchIdle(true);
      const longest = setTimeout(() => stop('max_duration'), config.maxDurationS * 1000);
      const onAbort = (): void => stop('error', new EngineError('ABORTED', 'the client went away'));
      signal.addEventListener('abort', onAbort, { once: true });

      let summary: LiveSummary | undefined;
      try {
        live = engine.openStream(
          { name: 'the stream', windowMs: Math.round(settings.window_s * 1000), strideMs: Math.round(settings.stride_s * 1000), source: { kind: 'pipe', format: settings.format ? STREAM_FORMATS[settings.format] : undefined }, paced: false, dir: temps.folder() },
          {
            started: (info) => send(startedEvent(id, settings, info, wallClock())),
            window: (w) => {
              if (failure) return void temps.remove(w.file);
              windows.ready({ ...w, lastFrameAt: arrivedAt(w) });
            },
          },
        );
        const input = live.input;
        input.on('drain', () => {
          inputFull = false;
          flow();
        });
        source.on('data', (chunk: Buffer) => {
          idle?.refresh();
          if (ending) return;
          received += chunk.length;
          arrivals.push({ end: received, at: wallClock() });
          if (arrivals.length > MAX_ARRIVALS) arrivals.shift(); // no window for long (garbage): older ones fall back to the decoder's clock
          if (!input.write(chunk)) {
            inputFull = true;
            flow();
          }
        });
        source.once('end', () => stop('end_of_stream'));
        source.once('error', () => {
          if (!signal.aborted) stop('error', new EngineError('ABORTED', 'the upload broke off'));
        });
        if (source.readableEnded) stop('end_of_stream');
        summary = await live.done;
        stop('end_of_stream'); // the decoder ended by itself (its input broke off): read no more
      } catch (err) {
        const error = asServiceError(err);
        if (!ending) stop('error', error);
        else if (ending === 'end_of_stream' || ending === 'max_duration') {
          // It failed on its own while finishing what was sent (garbage, a decoder crash).
          failure = error;
          ending = 'error';
          windows.stop();
        } // else: the stream was stopped (idle, shutdown, client gone), and this is that stop.
      } finally {
        clearTimeout(idle);
        clearTimeout(longest);
        signal.removeEventListener('abort', onAbort);
        await windows.settled();
        await temps.removeAll();
        running.delete(id);
        leave();
      }

      const reason: EndReason = ending === 'idle' || ending === 'max_duration' || ending === 'shutdown' ? ending : failure ? 'error' : 'end_of_stream';
      if (failure && !signal.aborted && reason !== 'shutdown') {
        metrics.error(failure);
        logFailure(log, failure, { stream: id }, 'stream');
        send({ event: 'error', ...wireError(failure) });
      }
      metrics.streamEnded(signal.aborted ? 'client_gone' : reason, (wallClock() - startedAt) / 1000);
      trace?.end(signal.aborted ? 'client_gone' : reason, failure);
      send({ event: 'ended', reason, summary: windows.summary(startedAt, summary ? [summary] : []) });
    };

    let done: Promise<void> | undefined;
    return {
      id,
      run(emit) {
        done ??= run(emit).catch((err: unknown) => request.log.error({ err }, 'a live stream failed unexpectedly'));
        finished.add(done);
        void done.finally(() => finished.delete(done as Promise<void>));
        return done;
      },
    };
  };

  return {
    open,
    pull,
    get,
    owner: (id) => (pulled.has(id) ? undefined : ids.owner(id)),
    list: () => {
      const list = [...pulled.values()];
      return { pulled: list, pushed: running.size - list.filter((s) => s.status().state !== 'ended').length, max: config.max };
    },
    async remove(id) {
      const stream = get(id);
      await stream.stop('deleted');
      pulled.delete(id);
    },
    active: () => running.size,
    idleTimeoutMs: config.idleTimeoutMs,
    async endAll() {
      for (const end of running.values()) end('shutdown');
      await Promise.all([...finished]);
      const egress = proxy;
      proxy = undefined;
      if (egress) await (await egress).close();
    },
  };
}
