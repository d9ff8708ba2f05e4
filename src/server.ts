/**
 * The entry point: read the config, listen, and shut down cleanly. Everything else is in app.ts.
 *
 * The port opens before the model is warm, so liveness answers at once and readiness turns 200
 * when the engine is ready. A start first removes the upload folders that dead processes of this
 * host left in UPLOAD_DIR.
 *
 * The HTTP server (app.ts) and the OIP gRPC server (GRPC_PORT, 0 for none) are two transports over
 * one service layer (src/service/): the same queue, admission, uploads, metrics and readiness
 * (grpc.health.v1 reports it too).
 *
 * On SIGTERM/SIGINT: readiness turns 503 (gRPC health NOT_SERVING) and new inference is refused
 * (DRAINING) on both servers for at least SHUTDOWN_DELAY_MS while requests in flight finish; then
 * both listeners and the engine close and the process exits 0. The whole shutdown fits in
 * SHUTDOWN_GRACE_MS whatever clients do: requests still running at the grace period minus a
 * closing reserve are cut (their connections closed, gRPC calls cancelled), and if closing itself
 * hangs, the process removes its upload folder and exits 1 at the grace period. A second signal
 * does the same at once. When no inference or decode worker can run for WORKER_MAX_DOWN_MS, the
 * process shuts down the same way and exits 1, for its orchestrator to replace it.
 *
 * Tracing (telemetry/tracing.ts) starts here when the OTEL_* variables ask for it, and its last
 * spans are exported before the process exits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { buildApp, REQUEST_ID_LOG_LABEL } from './app.js';
import { ConfigError, loadConfig, type AppConfig } from './config.js';
import { createEngine, type Engine } from './engine/index.js';
import { createGrpcService, type GrpcService } from './grpc/server.js';
import { API_VERSION } from './http/openapi.js';
import { createService } from './service/index.js';
import { createRegistry } from './service/metrics.js';
import { createUploadArea, sweepLeftovers } from './service/uploads.js';
import { createHttpTracing } from './http/tracing.js';
import { missingNodeFlags } from './node-flags.js';
import { startTracing } from './telemetry/tracing.js';

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`haltingvt: ${err.message}\n`);
    process.exit(1);
  }
  const logger = pino({ level: config.logLevel });
  const { authToken, ...serviceSettings } = config.service;
  logger.info({ modelDir: config.modelDir, engine: config.engine, service: { ...serviceSettings, auth: authToken !== undefined }, http: config.http }, 'starting');
  const missingFlags = missingNodeFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missingFlags.length > 0) logger.warn({ missing: missingFlags }, 'node was started without the V8 flags this service is tuned for (src/node-flags.ts): expect about 1 ms more CPU per video in garbage collection; start it as the Dockerfile does');

  const tracing = await startTracing({ process: 'main' });
  if (tracing) logger.info('tracing on: spans are exported as the OTEL_* variables say');
  const tracer = tracing?.tracer;

  const swept = sweepLeftovers(config.service.uploadDir);
  if (swept.length > 0) logger.warn({ folders: swept }, 'removed upload folders left by processes that died');

  let stopping = false;
  const engine = createEngine({
    modelDir: config.modelDir,
    config: config.engine,
    logger: logger.child({ component: 'engine' }),
    onFatal: (err) => {
      logger.fatal({ err }, 'the engine stopped for good; shutting down to be replaced');
      if (!stopping) void exit(1, 'no inference or decode worker');
    },
    tracer,
  });
  const service = createService({ config: config.service, engine, logger, registry: createRegistry(), uploads: createUploadArea(config.service.uploadDir), tracer });
  const { lifecycle } = service;
  const httpTracing = tracing && (await createHttpTracing(tracing.provider, { requestIdLogLabel: REQUEST_ID_LOG_LABEL }));
  const app = buildApp({ service, config: config.http, logger, tracing: httpTracing });
  const grpc: GrpcService | undefined =
    config.grpcPort === 0 ? undefined : createGrpcService({ service, serverVersion: API_VERSION, logger: logger.child({ component: 'grpc' }), tracer });
  let opened: Engine | undefined;

  /** The last resort: whatever still runs, the upload folder goes and the process ends. */
  const abandon = (why: string): never => {
    logger.error({ inflight: lifecycle.inflight() }, why);
    service.close();
    process.exit(1);
  };

  const exit = async (code: number, reason: string): Promise<void> => {
    stopping = true;
    const { delayMs, graceMs } = config.shutdown;
    setTimeout(() => abandon('shutdown did not finish within the grace period; exiting'), graceMs).unref();
    // Clients that hold a request open (a trickled upload, an unread body) cannot keep the process
    // alive: at the grace period minus a reserve for closing, every connection left is closed, and
    // the requests on them end as the client's abort (their temp files go).
    let cut = false;
    const cutAll = (): void => {
      cut = true;
      if (lifecycle.inflight() > 0) logger.warn({ inflight: lifecycle.inflight() }, 'cutting the requests still in flight at the end of the grace period');
      app.server.closeAllConnections();
    };
    const cutAfterMs = graceMs - Math.min(5_000, Math.floor(graceMs / 2));
    const cutAt = Date.now() + cutAfterMs;
    const cutTimer = setTimeout(cutAll, cutAfterMs);
    logger.info({ reason, inflight: lifecycle.inflight(), delayMs, graceMs }, 'draining');
    // Readiness is 503 from here on; the delay gives load balancers time to notice before the listener closes.
    const drained = lifecycle.drain();
    // Idle keep-alive connections would bring their next request here; closed now, they reconnect
    // through the load balancer. Busy ones close after their answer (app.ts).
    app.server.closeIdleConnections();
    // A live stream has no end of its own to wait for: each ends now with its final event, so that
    // its client can reconnect elsewhere while this instance drains.
    if (service.streams.active() > 0) logger.info({ streams: service.streams.active() }, 'ending the live streams');
    void service.streams.endAll();
    grpc?.syncHealth();
    await Promise.all([drained, sleep(delayMs)]);
    const closing = Promise.all([app.close(), grpc?.close(Math.max(0, cutAt - Date.now()))]);
    if (cut) cutAll(); // connections opened since the cut
    await closing;
    clearTimeout(cutTimer);
    await opened?.close();
    service.close();
    await tracing?.shutdown().catch((err: unknown) => logger.warn({ err }, 'the last spans could not be exported'));
    logger.info({ code }, 'stopped');
    process.exit(code);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) abandon(`second signal (${signal}): exiting now`);
    void exit(0, signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  engine.then(
    (e) => {
      opened = e;
      if (stopping) void e.close();
    },
    (err: unknown) => {
      logger.fatal({ err }, 'the model could not be loaded');
      if (!stopping) void exit(1, 'engine failed');
    },
  );

  await app.listen({ port: config.port, host: config.host });
  if (grpc) {
    const port = await grpc.listen(config.host, config.grpcPort);
    logger.info({ port }, 'gRPC (Open Inference Protocol) listening');
  }
}

main().catch((err: unknown) => {
  // Logged by hand: the logger may not exist yet (e.g. the port is taken before anything started).
  process.stderr.write(`haltingvt: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
