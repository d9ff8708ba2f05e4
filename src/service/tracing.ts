/**
 * What a traced video's and window's spans say about them: the attributes an operator filters on
 * in a trace backend (model, knobs) and the figures that explain a slow or costly one (tokens per
 * layer, GFLOPs, frames decoded). Names follow OpenTelemetry's advice: a namespace of our own.
 */
import { context, trace, type Attributes } from '@opentelemetry/api';
import type { VideoAnswer } from '../engine/result.js';
import type { EngineError } from '../errors.js';
import { endFailed, startSpan, type Span, type Tracer } from '../telemetry/spans.js';

type ModelFacts = { name: string; version: string; precision: string };
type Answer = Pick<VideoAnswer, 'top' | 'tokens' | 'gflops' | 'knobs'>;

/** The model and knobs a video or window ran with, and what it cost. */
export function answerSpanAttributes(model: ModelFacts, answer: Answer): Attributes {
  const { knobs, tokens } = answer;
  return {
    'haltingvt.model.name': model.name,
    'haltingvt.model.version': model.version,
    'haltingvt.model.precision': model.precision,
    'haltingvt.knobs.top_k': knobs.top_k,
    'haltingvt.knobs.keep_ratio': knobs.keep_ratio,
    'haltingvt.knobs.halt_threshold': knobs.halt_threshold,
    ...(knobs.merge_mode !== undefined ? { 'haltingvt.knobs.merge_mode': knobs.merge_mode, 'haltingvt.knobs.merge_ratio': knobs.merge_ratio ?? 0 } : {}),
    'haltingvt.tokens.per_layer': tokens.per_layer,
    'haltingvt.tokens.total': tokens.total,
    'haltingvt.tokens.kept_ratio': tokens.kept_ratio,
    'haltingvt.gflops': answer.gflops,
    'haltingvt.top.label': answer.top[0]?.label ?? '',
  };
}

/** A classified video's span: its answer's attributes and the frames its decoding took. */
export function videoSpanAttributes(model: ModelFacts, result: VideoAnswer): Attributes {
  return { ...answerSpanAttributes(model, result), 'haltingvt.frames.decoded': result.video.decoded_frames };
}

/** One live stream's trace: a span for the stream's life, and one per window under it. */
export interface StreamTrace {
  /** A window's span, from the moment it goes into inference to its event. */
  window(seq: number, startS: number, endS: number): Span;
  windowsDropped(count: number): void;
  /** A pulled source lost and tried again. */
  reconnecting(attempt: number, reason: string): void;
  /** Ends the stream's span with its end reason (and its error). */
  end(reason: string, error?: EngineError): void;
}

/**
 * A stream's own trace (a stream lasts hours; a request's trace would hold one span open as long),
 * linked to the request that opened it (its transport's active span, if traced).
 */
export function startStreamTrace(tracer: Tracer, id: string, kind: 'pushed' | 'pulled', attributes: Attributes = {}): StreamTrace {
  const opener = trace.getSpan(context.active())?.spanContext();
  const span = tracer.startSpan('live stream', { root: true, attributes: { 'haltingvt.stream.id': id, 'haltingvt.stream.kind': kind, ...attributes }, links: opener ? [{ context: opener }] : [] });
  return {
    window: (seq, startS, endS) => startSpan(tracer, 'stream window', span, { 'haltingvt.window.seq': seq, 'haltingvt.window.start_s': startS, 'haltingvt.window.end_s': endS }),
    windowsDropped: (count) => span.addEvent('windows dropped', { 'haltingvt.windows.dropped': count }),
    reconnecting: (attempt, reason) => span.addEvent('reconnecting', { 'haltingvt.source.attempt': attempt, 'haltingvt.source.reason': reason }),
    end(reason, error) {
      span.setAttribute('haltingvt.stream.end', reason);
      if (error) endFailed(span, error);
      else span.end();
    },
  };
}
