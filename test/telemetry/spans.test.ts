/**
 * The pieces of tracing that need no collector: when the environment turns tracing on, and the
 * traceparent strings that carry a span's identity to the worker processes.
 */
import { ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/errors.js';
import { contextFrom, endFailed, startSpan, traceIds, traceparentOf } from '../../src/telemetry/spans.js';
import { tracingRequested } from '../../src/telemetry/tracing.js';

describe('tracingRequested', () => {
  it.each<[Record<string, string>, boolean, string]>([
    [{}, false, 'nothing set: off (unlike the SDK, whose default exporter is OTLP)'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true, 'an OTLP endpoint'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true, 'a traces endpoint'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, false, 'a blank endpoint'],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true, 'an exporter named'],
    [{ OTEL_TRACES_EXPORTER: 'console' }, true, 'the console exporter'],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, false, 'exporter none wins over an endpoint'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }, false, 'the SDK disabled'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'false' }, true, 'the SDK not disabled'],
    [{ OTEL_METRICS_EXPORTER: 'otlp' }, false, 'only metrics asked for (they stay with Prometheus)'],
  ])('%j → %s (%s)', (env, expected) => {
    expect(tracingRequested(env)).toBe(expected);
  });
});

describe('traceparents across processes', () => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');

  it('a span made from a traceparent is the child of the span it names, in the same trace', () => {
    const parent = tracer.startSpan('parent');
    const traceparent = traceparentOf(parent);
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const child = startSpan(tracer, 'child', traceparent);
    child.end();
    parent.end();
    const [ended] = exporter.getFinishedSpans().filter((s) => s.name === 'child');
    expect(ended?.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(ended?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(ended?.parentSpanContext?.isRemote).toBe(true);
  });

  it('keeps an unsampled parent unsampled, and gives no ids to link to it', () => {
    const ctx = contextFrom('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00');
    expect(trace.getSpanContext(ctx ?? ROOT_CONTEXT)?.traceFlags).toBe(TraceFlags.NONE);
    const sampled = tracer.startSpan('sampled');
    expect(traceIds(sampled)).toEqual({ trace_id: sampled.spanContext().traceId, span_id: sampled.spanContext().spanId });
    expect(traceIds(trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.NONE }))).toBeUndefined();
    expect(traceIds(undefined)).toBeUndefined();
  });

  it.each([
    ['', 'empty'],
    ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331', 'no flags'],
    ['01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'an unknown version'],
    ['00-00000000000000000000000000000000-b7ad6b7169203331-01', 'the invalid trace id'],
    ['00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', 'the invalid span id'],
    ['00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', 'upper case'],
  ])('refuses a malformed traceparent %j (%s): the span starts a trace of its own', (traceparent) => {
    expect(contextFrom(traceparent)).toBeUndefined();
    const span = startSpan(tracer, 'orphan', traceparent);
    expect(span.spanContext().traceId).not.toBe('0af7651916cd43dd8448eb211c80319c');
    span.end();
  });

  it('a failed span carries the catalogue code and the error status', () => {
    const span = tracer.startSpan('failing');
    endFailed(span, new EngineError('DECODE_FAILED', 'moov atom not found'));
    const [ended] = exporter.getFinishedSpans().filter((s) => s.name === 'failing');
    expect(ended?.attributes['error.type']).toBe('DECODE_FAILED');
    expect(ended?.status).toEqual({ code: 2, message: 'moov atom not found' });
  });
});
