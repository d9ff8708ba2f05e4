/**
 * A stream's windows from its decoder to its events, the same for pushed and pulled streams:
 * one window of a stream in inference at a time (the shared worker serves streams in turn); the
 * next waits; when one more completes while one waits, `drop_oldest` drops the waiting one, and
 * `block` tells the caller to hold its source back until the waiting one starts. Each answer
 * becomes a `window` event (or none, with emit=changes), and is tallied for the `ended` summary.
 */
import { round6, topK, type FramesAnswer, type Knobs, type LiveInfo, type LiveSummary, type LiveWindow } from '../engine/index.js';
import type { EngineError } from '../errors.js';
import { asServiceError, logFailure, publicError, type FailureLog } from './errors.js';
import type { EnginePort } from './lifecycle.js';
import type { Metrics } from './metrics.js';
import type { StreamEvent, StreamSettings } from './stream-events.js';
import type { TempFiles } from './uploads.js';
import { answerSpanAttributes, type StreamTrace } from './tracing.js';
import { endFailed } from '../telemetry/spans.js';

type Ended = Extract<StreamEvent, { event: 'ended' }>;

export interface WindowFlowDeps {
  engine: EnginePort;
  settings: StreamSettings;
  knobs: Knobs;
  metrics: Metrics;
  temps: TempFiles;
  log: FailureLog;
  signal: AbortSignal;
  wallClock: () => number;
  send: (event: StreamEvent) => void;
  /** After every change of what waits: a `block` caller holds its source while `holding()`. */
  changed: () => void;
  /** A window went into inference (a paced source may read on). */
  taken?: () => void;
  /** The stream's trace, when tracing is on: a span per window. */
  trace?: StreamTrace | undefined;
}

export interface WindowFlow {
  /** A window from the decoder; `offsetS` moves it to the stream's time (a pulled stream's reconnects). */
  ready(window: LiveWindow, offsetS?: number): void;
  /** Whether a `block` stream must hold its source now. */
  holding(): boolean;
  /** Stops taking windows (a failure, a stop): waiting ones are removed. */
  stop(): void;
  /** Resolves when no window is in inference. */
  settled(): Promise<void>;
  /** Seconds between the last window's emission and its last frame's arrival; undefined before any. */
  lastLagS(): number | undefined;
  /** Windows classified and dropped so far. */
  counts(): { windows: number; dropped: number };
  /** The `ended` event's summary; `decoders` are the summaries of the stream's decoder processes. */
  summary(startedAt: number, decoders: readonly LiveSummary[]): Ended['summary'];
}

export function createWindowFlow(deps: WindowFlowDeps): WindowFlow {
  const { engine, settings, knobs, metrics, temps, log, signal, wallClock, send } = deps;
  const waiting: LiveWindow[] = [];
  let inference: Promise<void> | undefined;
  let stopped = false;
  let lagS: number | undefined;
  const tally = { windows: 0, dropped: 0, gflops: 0, streamS: 0 };
  const timeline: Array<{ from_s: number; label: string }> = [];
  const recent: Float64Array[] = [];
  let lastEmittedLabel: string | undefined;
  const iso = (ms: number): string => new Date(ms).toISOString();

  const answered = (w: LiveWindow, answer: FramesAnswer): void => {
    const emittedAt = wallClock();
    lagS = Math.max(0, (emittedAt - w.lastFrameAt) / 1000);
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

  /** The next waiting window into inference, when none of this stream's is there. */
  const next = (): void => {
    if (inference || stopped || signal.aborted) return;
    const w = waiting.shift();
    deps.changed();
    if (!w) return;
    deps.taken?.();
    const span = deps.trace?.window(w.seq, round6(w.startS), round6(w.endS));
    inference = engine
      .classifyFrames(w, knobs, { signal, span })
      .then(
        (answer) => {
          answered(w, answer);
          span?.setAttributes({ ...answerSpanAttributes(engine.info.model, { top: answer.top, tokens: answer.tokens, gflops: answer.gflops, knobs }), 'haltingvt.window.lag_s': lagS ?? 0 });
          span?.end();
        },
        (err: unknown) => {
          if (span) endFailed(span, asServiceError(err));
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

  return {
    ready(decoded, offsetS = 0) {
      if (stopped || signal.aborted) return void temps.remove(decoded.file);
      const w = offsetS === 0 ? decoded : { ...decoded, startS: decoded.startS + offsetS, endS: decoded.endS + offsetS, slotTimesS: decoded.slotTimesS.map((t) => t + offsetS) };
      if (settings.policy === 'drop_oldest' && waiting.length > 0 && inference) {
        const old = waiting.splice(0, waiting.length);
        for (const o of old) void temps.remove(o.file);
        tally.dropped += old.length;
        metrics.windowsDropped(old.length);
        deps.trace?.windowsDropped(old.length);
        send({ event: 'dropped', seq: old.map((o) => o.seq), reason: 'behind', total: tally.dropped });
      }
      waiting.push(w);
      next();
      deps.changed();
    },
    holding: () => settings.policy === 'block' && waiting.length > 0,
    stop() {
      stopped = true;
      for (const w of waiting.splice(0)) void temps.remove(w.file);
    },
    async settled() {
      while (inference) await inference;
    },
    lastLagS: () => lagS,
    counts: () => ({ windows: tally.windows, dropped: tally.dropped }),
    summary(startedAt, decoders) {
      const sum = (pick: (s: LiveSummary) => number): number | null => (decoders.length > 0 ? decoders.reduce((a, s) => a + pick(s), 0) : null);
      const cpu = sum((s) => s.cpuS);
      const startup = sum((s) => s.startupCpuS);
      return {
        windows: tally.windows,
        dropped: tally.dropped,
        stream_s: round6(tally.streamS),
        wall_s: round6((wallClock() - startedAt) / 1000),
        gflops: round6(tally.gflops),
        gflops_per_stream_s: tally.streamS > 0 ? round6(tally.gflops / tally.streamS) : null,
        decoded_frames: sum((s) => s.decodedFrames),
        decoder_cpu_s: cpu === null ? null : round6(cpu),
        decoder_startup_cpu_s: startup === null ? null : round6(startup),
        timeline,
      };
    },
  };
}

export function wireError(error: EngineError): { code: string; status: number; message: string } {
  const shown = publicError(error);
  return { code: shown.code, status: shown.status, message: shown.message };
}

/** The `started` event of a stream (of its first connection, for a pulled one). */
export function startedEvent(id: string, settings: StreamSettings, info: LiveInfo, at: number): Extract<StreamEvent, { event: 'started' }> {
  return {
    event: 'started',
    stream: id,
    window_s: settings.window_s,
    stride_s: settings.stride_s,
    policy: settings.policy,
    video: { format: info.format, codec: info.codec, width: info.width, height: info.height, fps: info.fps ?? null },
    at: new Date(at).toISOString(),
  };
}
