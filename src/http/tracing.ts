/**
 * Tracing of the HTTP transport: fastify's official OpenTelemetry plugin (@fastify/otel) makes a
 * SERVER span per request (the parent a client's `traceparent` names, else a new trace) and one
 * for its handler, under which the service's spans go. Probes and scrapes are not traced. Loaded
 * only when tracing is on.
 *
 * Each traced request's log lines carry its trace and span ids: fastify logs "incoming request"
 * before any hook runs, so for a traced route that line waits for the span (TracedLogController).
 */
import type { TracerProvider } from '@opentelemetry/api';
import { LogController, type FastifyPluginCallback, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Exemplar } from '../service/metrics.js';
import { traceIds } from '../telemetry/spans.js';

/** Probes, scrapes and pages: frequent and of no interest in a trace backend. */
const UNTRACED = new Set(['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready', '/metrics', '/openapi.yaml', '/docs', '/demo', '/live']);
const untraced = (url: string): boolean => UNTRACED.has(url.split('?')[0] as string);

export interface HttpTracing {
  /** Registered before any route. */
  plugin: FastifyPluginCallback;
  logController: LogController;
  /** The ids of a traced request's span (its exemplar), from its start to its answer. */
  ids(request: FastifyRequest): Exemplar;
}

/** Logs "incoming request" of a traced route once its span exists, with the span's ids. */
class TracedLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    if (untraced(request.url)) super.incomingRequest(request, reply);
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    reply.log = request.log; // the one with the span's ids
    super.requestCompleted(error, request, reply);
  }

  tracedIncoming(request: FastifyRequest): void {
    super.incomingRequest(request, undefined as never);
  }
}

export async function createHttpTracing(provider: TracerProvider, options: { requestIdLogLabel: string }): Promise<HttpTracing> {
  const { FastifyOtelInstrumentation } = await import('@fastify/otel');
  const logController = new TracedLogController(options);
  const ids = new WeakMap<FastifyRequest, NonNullable<Exemplar>>();
  const instrumentation = new FastifyOtelInstrumentation({
    instrumentHooks: false,
    ignorePaths: ({ url }) => untraced(url),
    requestHook(span, request) {
      span.updateName(`${request.method} ${request.routeOptions.url ?? 'unmatched'}`);
      span.setAttribute('haltingvt.request_id', request.id);
      const traced = traceIds(span);
      if (traced) {
        ids.set(request, traced);
        request.log = request.log.child(traced);
      }
      logController.tracedIncoming(request);
    },
  });
  instrumentation.setTracerProvider(provider);
  return { plugin: instrumentation.plugin(), logController, ids: (request) => ids.get(request) };
}
