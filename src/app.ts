/**
 * The whole HTTP service as one fastify instance. Everything that varies comes in through `deps`
 * (engine, logger, metrics registry, clock, limits), so tests build as many apps as they like and
 * `inject()` requests without a port; server.ts only configures, listens and closes.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { AppConfig } from './config.js';
import { EngineError } from './errors.js';
import { createBearerCheck } from './http/auth.js';
import type { EnginePort } from './http/engine-port.js';
import { clientErrorAnswer, sendError, toServiceError } from './http/errors.js';
import { createLifecycle, type Lifecycle } from './http/lifecycle.js';
import { createMetrics } from './http/metrics.js';
import { API_VERSION } from './http/openapi.js';
import { createWorkQueue } from './http/queue.js';
import { createRequestIdGenerator, REQUEST_ID_HEADER } from './http/request-id.js';
import { classifyRoutes } from './http/routes/classify.js';
import { healthRoutes } from './http/routes/health.js';
import { modelRoutes } from './http/routes/models.js';
import { oipRoutes } from './http/routes/oip.js';
import { serviceRoutes } from './http/routes/service.js';
import { createUploadArea, type UploadArea } from './http/upload.js';
import { createOipService, type OipService } from './oip/service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** starting → ready → draining; server.ts drains it on SIGTERM. */
    lifecycle: Lifecycle;
    /** The Open Inference Protocol model, shared with the gRPC server (server.ts). */
    oip: OipService;
  }
}

export type AppSettings = Pick<AppConfig, 'limits' | 'queue' | 'authToken' | 'uploadDir'>;

export interface AppDeps {
  config: AppSettings;
  /** The engine, or the promise of one still loading: readiness turns 200 when it resolves. */
  engine: EnginePort | Promise<EnginePort>;
  logger: FastifyBaseLogger;
  registry: Registry;
  /** Milliseconds, monotonic. */
  now?: (() => number) | undefined;
  makeRequestId?: (() => string) | undefined;
  /** Where uploads are spooled; defaults to a fresh folder in config.uploadDir (tests inject a full disk). */
  uploads?: UploadArea | undefined;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, registry } = deps;
  const now = deps.now ?? (() => performance.now());
  const metrics = createMetrics(registry);

  const app = fastify({
    loggerInstance: deps.logger,
    genReqId: createRequestIdGenerator(deps.makeRequestId),
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    // Requests arriving once app.close() has begun are answered 503 DRAINING by the onRequest hook
    // below, in the error format; fastify's own 503 has neither our body nor Retry-After.
    return503OnClosing: false,
    // Fastify disables Node's request timeout by default; a client trickling an upload would
    // otherwise hold its temp file and an in-flight slot for ever. The upload routes enforce
    // REQUEST_TIMEOUT_MS themselves (a 408 in the error format); Node's timer is the backstop.
    requestTimeout: backstopTimeout(config.limits.requestTimeoutMs),
    http: httpTimeouts(config.limits.requestTimeoutMs),
    // What Node refuses before fastify sees a request (the backstop timeout, unparsable HTTP).
    clientErrorHandler(err, socket) {
      const answer = clientErrorAnswer(err, (deps.makeRequestId ?? randomUUID)());
      if (!answer) return void socket.destroy();
      metrics.error(answer.code);
      metrics.observeRequest('unmatched', 'unknown', answer.status, 0);
      deps.logger.info({ code: answer.code, err: err.message }, 'request refused before it was parsed');
      if (socket.writable) socket.write(answer.raw);
      socket.destroy();
    },
  });

  const lifecycle = createLifecycle(deps.engine, {
    onReady: (engine) => {
      metrics.modelReady({ ...engine.info.model, executionProvider: engine.info.session.executionProvider });
      app.log.info({ model: engine.info.model, executionProvider: engine.info.session.executionProvider }, 'model ready');
    },
    onFailed: (err) => app.log.error({ err }, 'the model failed to load'),
    onInflight: (delta) => metrics.inflight(delta),
  });
  app.decorate('lifecycle', lifecycle);

  const queue = createWorkQueue({
    concurrency: config.queue.concurrency,
    size: config.queue.size,
    now,
    onChange: (s) => metrics.queue(s.queued, s.running, s.admitted),
  });
  const uploads = deps.uploads ?? createUploadArea(config.uploadDir);
  app.addHook('onClose', async () => uploads.dispose());
  metrics.watch({ ready: () => lifecycle.ready(), workers: () => lifecycle.loaded()?.stats().pools, uploads: () => uploads.usage() });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async () => {
    if (closing) throw new EngineError('DRAINING', 'the service is closing its listener; retry on another instance');
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL: unknown paths must not create label values. `::` is the
    // router's escape for a literal colon (/v1/classify::batch); the label shows the path as served.
    const route = request.routeOptions.url?.replaceAll('::', ':') ?? 'unmatched';
    metrics.observeRequest(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.setErrorHandler(async (err, request, reply) => {
    const error = toServiceError(err);
    metrics.error(error.code);
    return sendError(request, reply, error, config.queue.retryAfterS);
  });
  app.setNotFoundHandler(async (request, reply) => {
    const error = new EngineError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    metrics.error(error.code);
    return sendError(request, reply, error, config.queue.retryAfterS);
  });

  app.register(healthRoutes, { lifecycle, retryAfterS: config.queue.retryAfterS });
  app.register(modelRoutes, { lifecycle });
  app.register(serviceRoutes, { registry });
  const oip = createOipService({ lifecycle, queue, uploads, metrics, limits: config.limits, serverVersion: API_VERSION });
  app.decorate('oip', oip);
  app.register(oipRoutes, {
    prefix: '/v2',
    oip,
    metrics,
    maxUploadBytes: config.limits.maxUploadBytes,
    retryAfterS: config.queue.retryAfterS,
    authorize: config.authToken ? createBearerCheck(config.authToken) : undefined,
  });
  app.register(classifyRoutes, {
    lifecycle,
    queue,
    uploads,
    metrics,
    limits: config.limits,
    authorize: config.authToken ? createBearerCheck(config.authToken) : undefined,
  });
  return app;
}

/**
 * Node's own request timeout, behind the routes' REQUEST_TIMEOUT_MS: late enough that the route's
 * 408 (with its body and metrics) always comes first, since Node checks only every
 * connectionsCheckingInterval.
 */
function backstopTimeout(requestTimeoutMs: number): number {
  return requestTimeoutMs === 0 ? 0 : requestTimeoutMs + Math.max(1000, Math.round(requestTimeoutMs / 5));
}

/**
 * Node enforces requestTimeout only while headersTimeout <= requestTimeout (otherwise a stalled
 * upload is never cut off: checked on Node 20), and checks both on a timer that runs every 30 s by
 * default, too coarse for short limits.
 */
function httpTimeouts(requestTimeoutMs: number): { headersTimeout?: number; connectionsCheckingInterval?: number } {
  if (requestTimeoutMs === 0) return {};
  return {
    headersTimeout: Math.min(60_000, requestTimeoutMs),
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.round(requestTimeoutMs / 10))),
  };
}
