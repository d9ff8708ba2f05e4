/**
 * Spans as the service makes them, on @opentelemetry/api alone (the SDK is tracing.ts's). A span's
 * parent crosses to a worker process as a W3C `traceparent` string in the job message, so that
 * decode and inference spans join the request's trace in the worker that ran them.
 */
import { context, ROOT_CONTEXT, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { EngineError } from '../errors.js';

export type { Span, Tracer } from '@opentelemetry/api';

/** `00-<trace id>-<span id>-<flags>`: W3C Trace Context's traceparent header value. */
export type TraceParent = string;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const INVALID_TRACE = /^0+$/;

/** The traceparent naming `span` as the parent (its sampled flag with it). */
export function traceparentOf(span: Span): TraceParent {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The context whose parent is the remote span a traceparent names; undefined for a malformed one. */
export function contextFrom(traceparent: TraceParent): Context | undefined {
  const m = TRACEPARENT.exec(traceparent);
  if (!m) return undefined;
  const [, traceId, spanId, flags] = m as unknown as [string, string, string, string];
  if (INVALID_TRACE.test(traceId) || INVALID_TRACE.test(spanId)) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true });
}

/** A child of `parent` (a span of this process, or a traceparent from another), or of the active context. */
export function startSpan(tracer: Tracer, name: string, parent: Span | TraceParent | undefined, attributes?: Attributes): Span {
  const ctx = parent === undefined ? context.active() : typeof parent === 'string' ? (contextFrom(parent) ?? ROOT_CONTEXT) : trace.setSpan(ROOT_CONTEXT, parent);
  return tracer.startSpan(name, { attributes }, ctx);
}

/** Marks a span failed with the catalogue's code (`error.type`, as OpenTelemetry's conventions name it) and ends it. */
export function endFailed(span: Span, error: EngineError): void {
  span.setAttribute('error.type', error.code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.end();
}

/** Trace and span ids for a log line or an exemplar; undefined when the span is not sampled (so nothing links to a trace that was not kept). */
export function traceIds(span: Span | undefined): { trace_id: string; span_id: string } | undefined {
  if (!span) return undefined;
  const { traceId, spanId, traceFlags } = span.spanContext();
  if ((traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  return { trace_id: traceId, span_id: spanId };
}
