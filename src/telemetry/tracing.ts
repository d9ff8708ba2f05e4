/**
 * OpenTelemetry tracing for one process of the service (the main process and each worker process
 * start their own): off unless the standard OTEL_* variables ask for it, and then the Node SDK,
 * configured by those same variables (exporter and protocol, endpoint, sampler, resource). This is
 * the only module that loads the SDK, and it loads it only when tracing is on, so that a service
 * without tracing neither loads nor runs any of it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Tracer, TracerProvider } from '@opentelemetry/api';
import { PACKAGE_ROOT } from '../paths.js';

/** Which process of the service a span comes from (the resource attribute `haltingvt.process`). */
export type TracedProcess = 'main' | 'decode' | 'inference' | 'stream';

export interface Tracing {
  readonly tracer: Tracer;
  /** For instrumentations that take a provider (the HTTP transport's). */
  readonly provider: TracerProvider;
  /** Exports the spans still buffered and stops; call before the process exits. */
  shutdown(): Promise<void>;
}

const TRUE = new Set(['true', '1']);
const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');

/**
 * Whether the environment asks for traces. OpenTelemetry's own default exporter is OTLP, which
 * would make every deployment try to send spans somewhere; here tracing is off until the operator
 * names an exporter (OTEL_TRACES_EXPORTER, not `none`) or an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). OTEL_SDK_DISABLED=true wins.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (TRUE.has((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase())) return false;
  const exporters = list(env.OTEL_TRACES_EXPORTER);
  if (exporters.length > 0) return exporters.some((e) => e !== 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/**
 * Starts the SDK for this process when `tracingRequested(env)`, else resolves undefined. Metrics
 * stay with Prometheus and logs with stdout: the SDK exports traces only. The service's name
 * defaults to `haltingvt` (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it).
 */
export async function startTracing(options: { process: TracedProcess; env?: NodeJS.ProcessEnv }): Promise<Tracing | undefined> {
  const env = options.env ?? process.env;
  if (!tracingRequested(env)) return undefined;
  const { version } = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  const { NodeSDK, resources, api } = await import('@opentelemetry/sdk-node');
  const { defaultResource, resourceFromAttributes } = resources;
  const sdk = new NodeSDK({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'haltingvt', 'service.version': version, 'haltingvt.process': options.process })),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  return {
    tracer: api.trace.getTracer('haltingvt', version),
    provider: api.trace.getTracerProvider(),
    shutdown: () => sdk.shutdown(),
  };
}
