/**
 * The HTTP transport as one fastify instance: the /v1 routes, the Open Inference Protocol over
 * HTTP (/v2), health, metrics and the pages, each a thin adapter over the service layer
 * (src/service/). Everything that varies comes in through `deps`, so tests build as many apps as
 * they like and `inject()` requests without a port; server.ts only configures, listens and closes.
 */
import { randomUUID } from 'node:crypto';
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { HttpConfig } from './config.js';
import { EngineError } from './errors.js';
import { clientErrorAnswer, sendError, toServiceError } from './http/errors.js';
import { API_VERSION } from './http/openapi.js';
import { createRequestIdGenerator, REQUEST_ID_HEADER } from './http/request-id.js';
import { responseSerializerCompiler } from './http/serializer.js';
import { classifyRoutes } from './http/routes/classify.js';
import { healthRoutes } from './http/routes/health.js';
import { modelRoutes } from './http/routes/models.js';
import { oipRoutes } from './http/routes/oip.js';
import { serviceRoutes } from './http/routes/service.js';
import { streamRoutes } from './http/routes/streams.js';
import { pulledStreamRoutes } from './http/routes/pulled-streams.js';
import { createOipProtocol } from './oip/protocol.js';
import type { Service } from './service/index.js';
import type { HttpTracing } from './http/tracing.js';

/** Names the instance that answered, when the operator turns it on (SERVED_BY_HEADER). */
const SERVED_BY_HEADER = 'x-served-by';

export interface AppDeps {
  service: Service;
  config: HttpConfig;
  logger: FastifyBaseLogger;
  makeRequestId?: (() => string) | undefined;
  /** Only when tracing is on (http/tracing.ts createHttpTracing). */
  tracing?: HttpTracing | undefined;
}

/** What the request logs call the request id. */
export const REQUEST_ID_LOG_LABEL = 'request_id';

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, service } = deps;
  const { metrics } = service;
  const errorDeps = { metrics, retryAfterS: config.retryAfterS };

  const app = fastify({
    loggerInstance: deps.logger,
    genReqId: createRequestIdGenerator(deps.makeRequestId),
    logController: deps.tracing?.logController ?? new LogController({ requestIdLogLabel: REQUEST_ID_LOG_LABEL }),
    // Requests arriving once app.close() has begun are answered 503 DRAINING by the onRequest hook
    // below, in the error format; fastify's own 503 has neither our body nor Retry-After.
    return503OnClosing: false,
    // Node's request timeout is server-wide, and a live stream's upload lasts as long as the
    // stream: the backstop is ours instead (the onRequest hook below), for every route but those.
    // Node still cuts a client that stalls in its headers (headersTimeout).
    requestTimeout: 0,
    http: httpTimeouts(config.requestTimeoutMs),
    // What Node refuses before fastify sees a request (the backstop timeout, unparsable HTTP).
    clientErrorHandler(err, socket) {
      const answer = clientErrorAnswer(err, (deps.makeRequestId ?? randomUUID)());
      if (!answer) return void socket.destroy();
      metrics.error(new EngineError(answer.code, err.message));
      metrics.observeRequest('http', 'unmatched', 'unknown', answer.status, 0);
      deps.logger.info({ code: answer.code, err: err.message }, 'request refused before it was parsed');
      if (socket.writable) socket.write(answer.raw);
      socket.destroy();
    },
  });
  // Route schemas are the zod schemas themselves: requests are parsed by them, handlers typed from
  // them (fastify-type-provider-zod), and responses written from them (http/serializer.ts).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(responseSerializerCompiler);
  // Applied to the root at once rather than registered: a registered plugin loads at ready(), after
  // the hooks below, and the request's span must exist before any of them runs (a DRAINING refusal
  // is traced too).
  deps.tracing?.plugin(app, {}, () => undefined);

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A client trickling an upload would otherwise hold its temp file and an in-flight slot for ever.
  // The upload routes enforce REQUEST_TIMEOUT_MS themselves (a 408 in the error format); this is
  // the backstop for the rest, which live streams are exempt from.
  // The hooks on every request take fastify's callback form: an async hook costs a promise each.
  const backstopMs = backstopTimeout(config.requestTimeoutMs);
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) return done(new EngineError('DRAINING', 'the service is closing its listener; retry on another instance'));
    if (backstopMs > 0 && request.routeOptions.config.liveUpload !== true) {
      const timer = setTimeout(() => {
        if (!request.raw.complete) request.raw.destroy();
      }, backstopMs);
      timer.unref();
      reply.raw.once('close', () => clearTimeout(timer));
    }
    done();
  });

  const { servedBy } = config;
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    if (servedBy !== undefined) reply.header(SERVED_BY_HEADER, servedBy);
    // A keep-alive client of a draining instance would send its next request here and get DRAINING;
    // closed, its connection is made again through the load balancer, to an instance that stays.
    if (service.lifecycle.status() === 'draining') reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, never the raw URL: unknown paths must not create label values. `::` is the
    // router's escape for a literal colon (/v1/classify::batch); the label shows the path as served.
    const route = request.routeOptions.url?.replaceAll('::', ':') ?? 'unmatched';
    metrics.observeRequest('http', route, request.method, reply.statusCode, reply.elapsedTime / 1000, deps.tracing?.ids(request));
    done();
  });
  app.setErrorHandler(async (err, request, reply) => sendError(request, reply, toServiceError(err), errorDeps));
  app.setNotFoundHandler(async (request, reply) => sendError(request, reply, new EngineError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`), errorDeps));

  app.register(healthRoutes, { lifecycle: service.lifecycle, retryAfterS: config.retryAfterS });
  app.register(modelRoutes, { service });
  app.register(serviceRoutes, { registry: metrics.registry });
  app.register(oipRoutes, { prefix: '/v2', service, oip: createOipProtocol(service, API_VERSION), retryAfterS: config.retryAfterS });
  app.register(classifyRoutes, { service, requestTimeoutMs: config.requestTimeoutMs });
  app.register(streamRoutes, { service });
  app.register(pulledStreamRoutes, { service });
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
