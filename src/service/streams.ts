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
import { round6, topK, type FramesAnswer, type Knobs, type LiveProcess, type LiveWindow } from '../engine/index.js';
import { EngineError } from '../errors.js';
import { asServiceError, logFailure, publicError, type FailureLog } from './errors.js';
import type { Lifecycle } from './lifecycle.js';
import type { Metrics } from './metrics.js';
import { STREAM_FORMATS, type StreamEvent, type StreamSettings } from './stream-events.js';
import type { UploadArea } from './uploads.js';

export interface StreamsConfig {
  /** Streams held at once; 0: none. */
  max: number;
  idleTimeoutMs: number;
  maxDurationS: number;
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
}

type EndReason = Extract<StreamEvent, { event: 'ended' }>['reason'];

/** Arrival times kept per stream: minutes of chunks at a camera's rate. */
const MAX_ARRIVALS = 8192;

export function createStreams(deps: StreamsDeps): Streams {
  const { config, lifecycle, uploads, metrics, wallClock } = deps;
  const running = new Map<string, (reason: EndReason) => void>();
  const finished = new Set<Promise<void>>();

  const open = (request: StreamRequest): OpenStream => {
    if (config.max === 0) throw new EngineError('STREAMS_FULL', 'this instance takes no live streams (MAX_STREAMS=0)', { maxStreams: 0 });
    const engine = lifecycle.engine();
    if (running.size >= config.max) throw new EngineError('STREAMS_FULL', `${running.size} live streams are open, the most this instance holds; retry later`, { maxStreams: config.max });
    const id = randomBytes(8).toString('hex');
    let endNow: (reason: EndReason) => void = () => undefined;
    running.set(id, (reason) => endNow(reason)); // the place is taken now, before any byte is read
    const leave = lifecycle.enter();
    metrics.streamOpened();

    const run = async (emit: EmitEvent): Promise<void> => {
      const { settings, knobs, source, signal, log } = request;
      const startedAt = wallClock();
      const temps = uploads.session();
      const waiting: LiveWindow[] = [];
      let inference: Promise<void> | undefined;
      let live: LiveProcess | undefined;
      let ending: EndReason | undefined;
      let failure: EngineError | undefined;
      let inputFull = false;
      let paused = false;
      const tally = { windows: 0, dropped: 0, gflops: 0, streamS: 0 };
      const timeline: Array<{ from_s: number; label: string }> = [];
      const recent: Float64Array[] = [];
      let lastEmittedLabel: string | undefined;
      const iso = (ms: number): string => new Date(ms).toISOString();
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
        const hold = inputFull || (settings.policy === 'block' && waiting.length > 0);
        if (hold && !paused) source.pause();
        else if (!hold && paused) source.resume();
        if (hold !== paused) watchIdle(!hold);
        paused = hold;
      };

      const answered = (w: LiveWindow, answer: FramesAnswer): void => {
        const emittedAt = wallClock();
        const lagS = Math.max(0, (emittedAt - w.lastFrameAt) / 1000);
        tally.windows++;
        tally.gflops += answer.gflops;
        tally.streamS = Math.max(tally.streamS, w.endS);
        metrics.observeWindow(answer.gflops * 1e9, lagS);
        const label = answer.top[0]?.label ?? '';
        if (timeline[timeline.length - 1]?.label !== label) timeline.push({ from_s: round6(w.startS), label });
        let averaged: { windows: number; top: typeof answer.top } | undefined;
        if (settings.average > 1) {
          recent.push(answer.probabilities);
          if (recent.length > settings.average) recent.shift();
          const mean = new Float64Array(answer.probabilities.length);
          for (const p of recent) for (let i = 0; i < mean.length; i++) mean[i] = (mean[i] as number) + (p[i] as number) / recent.length;
          averaged = { windows: recent.length, top: topK(mean, knobs.top_k, engine.manifest.labels) };
        }
        const shown = (averaged?.top ?? answer.top)[0]?.label;
        if (settings.emit === 'changes' && shown === lastEmittedLabel) return;
        lastEmittedLabel = shown;
        send({
          event: 'window',
          seq: w.seq,
          start_s: round6(w.startS),
          end_s: round6(w.endS),
          partial: w.partial,
          frames: { count: w.frameCount, sampled_s: w.slotTimesS.map(round6), padded: w.padded },
          last_frame_at: iso(w.lastFrameAt),
          emitted_at: iso(emittedAt),
          lag_s: round6(lagS),
          top: answer.top,
          ...(averaged ? { averaged } : {}),
          tokens: answer.tokens,
          gflops: answer.gflops,
          dense_gflops: answer.dense_gflops,
          timings_s: answer.timings_s,
        });
      };

      const drop = (dropped: LiveWindow[], reason: 'behind' | 'undecodable'): void => {
        tally.dropped += dropped.length;
        metrics.windowsDropped(dropped.length);
        send({ event: 'dropped', seq: dropped.map((w) => w.seq), reason, total: tally.dropped });
      };

      /** The next waiting window into inference, when none of this stream's is there. */
      const next = (): void => {
        if (inference || failure || signal.aborted) return;
        const w = waiting.shift();
        flow();
        if (!w) return;
        inference = engine
          .classifyFrames(w, knobs, { signal })
          .then(
            (answer) => answered(w, answer),
            (err: unknown) => {
              if (signal.aborted) return;
              metrics.windowFailed();
              const error = asServiceError(err);
              // The inference worker replaced (crash, timeout): this window is lost, the stream goes on.
              logFailure(log, error, { seq: w.seq }, 'stream window');
              send({ event: 'error', ...wireError(error) });
            },
          )
          .finally(() => {
            void temps.remove(w.file);
            inference = undefined;
            next();
          });
      };

      const windowReady = (decoded: LiveWindow): void => {
        if (failure || signal.aborted) return void temps.remove(decoded.file);
        const w = { ...decoded, lastFrameAt: arrivedAt(decoded) };
        if (settings.policy === 'drop_oldest' && waiting.length > 0 && inference) {
          const old = waiting.splice(0, waiting.length);
          for (const o of old) void temps.remove(o.file);
          drop(old, 'behind');
        }
        waiting.push(w);
        next();
        flow();
      };

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
          for (const w of waiting.splice(0)) void temps.remove(w.file);
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

      let summary: Awaited<LiveProcess['done']> | undefined;
      try {
        live = engine.openStream(
          { name: 'the stream', windowMs: Math.round(settings.window_s * 1000), strideMs: Math.round(settings.stride_s * 1000), format: settings.format ? STREAM_FORMATS[settings.format] : undefined, dir: temps.folder() },
          {
            started: (info) =>
              send({
                event: 'started',
                stream: id,
                window_s: settings.window_s,
                stride_s: settings.stride_s,
                policy: settings.policy,
                video: { format: info.format, codec: info.codec, width: info.width, height: info.height, fps: info.fps ?? null },
                at: iso(wallClock()),
              }),
            window: windowReady,
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
        } // else: the stream was stopped (idle, shutdown, client gone), and this is that stop.
      } finally {
        clearTimeout(idle);
        clearTimeout(longest);
        signal.removeEventListener('abort', onAbort);
        while (inference) await inference;
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
      send({
        event: 'ended',
        reason,
        summary: {
          windows: tally.windows,
          dropped: tally.dropped,
          stream_s: round6(tally.streamS),
          wall_s: round6((wallClock() - startedAt) / 1000),
          gflops: round6(tally.gflops),
          gflops_per_stream_s: tally.streamS > 0 ? round6(tally.gflops / tally.streamS) : null,
          decoded_frames: summary?.decodedFrames ?? null,
          decoder_cpu_s: summary ? round6(summary.cpuS) : null,
          decoder_startup_cpu_s: summary ? round6(summary.startupCpuS) : null,
          timeline,
        },
      });
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
    active: () => running.size,
    idleTimeoutMs: config.idleTimeoutMs,
    async endAll() {
      for (const end of running.values()) end('shutdown');
      await Promise.all([...finished]);
    },
  };
}

function wireError(error: EngineError): { code: string; status: number; message: string } {
  const shown = publicError(error);
  return { code: shown.code, status: shown.status, message: shown.message };
}
