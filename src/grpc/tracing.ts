/**
 * A SERVER span per gRPC call (per request of a ModelStreamInfer stream), under the parent a
 * client's `traceparent` metadata names: the service's spans are made under it. Written here rather
 * than with OpenTelemetry's grpc-js instrumentation, which patches grpc-js as it is required and so
 * needs a loader hook before any import in an ES module program; one wrapper at the one gRPC
 * adapter does the same work explicitly, and nothing when tracing is off.
 */
import type { Metadata } from '@grpc/grpc-js';
import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import type { EngineError } from '../errors.js';
import { contextFrom, endFailed, traceIds, type Span, type Tracer } from '../telemetry/spans.js';
import type { Exemplar } from '../service/metrics.js';
import { grpcCode } from './status.js';

export interface CallSpan {
  /** Runs `fn` with the call's span active, so that the service's spans go under it. */
  within<T>(fn: () => T): T;
  ids: Exemplar;
  ok(): void;
  failed(error: EngineError): void;
}

/** gRPC's OK, for `rpc.grpc.status_code`. */
const OK = 0;

export function startCallSpan(tracer: Tracer, service: string, method: string, metadata: Metadata): CallSpan {
  const traceparent = metadata.get('traceparent')[0];
  const parent = (typeof traceparent === 'string' && contextFrom(traceparent)) || ROOT_CONTEXT;
  const span: Span = tracer.startSpan(
    `${service}/${method}`,
    { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } },
    parent,
  );
  const active = trace.setSpan(parent, span);
  return {
    within: (fn) => context.with(active, fn),
    ids: traceIds(span),
    ok() {
      span.setAttribute('rpc.grpc.status_code', OK);
      span.end();
    },
    failed(error) {
      span.setAttribute('rpc.grpc.status_code', grpcCode(error));
      endFailed(span, error);
    },
  };
}
