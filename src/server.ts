/**
 * The entry point: read the config, listen, and shut down cleanly. Everything else is in app.ts.
 *
 * The port opens before the model is warm, so liveness answers at once and readiness turns 200
 * when the engine is ready. The OIP gRPC server (GRPC_PORT, 0 for none) serves the same app's
 * OipService and reports the same readiness through grpc.health.v1. On SIGTERM/SIGINT: readiness
 * turns 503 (gRPC health NOT_SERVING) and new inference is refused (DRAINING) on both servers,
 * requests and calls in flight finish, then both listeners and the engine close and the process
 * exits 0. Past SHUTDOWN_GRACE_MS it exits 1 anyway; a second signal exits at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type AppConfig } from './config.js';
import type { Engine } from './engine/index.js';
import { createGrpcService, type GrpcService } from './grpc/server.js';
import { openEngine } from './http/engine-port.js';
import { createRegistry } from './http/metrics.js';

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
  logger.info({ modelDir: config.modelDir, executionProviders: config.executionProviders, limits: config.limits, queue: config.queue }, 'starting');

  const engine = openEngine(config, logger.child({ component: 'engine' }));
  const app = buildApp({ config, engine, logger, registry: createRegistry() });
  const grpc: GrpcService | undefined =
    config.grpcPort === 0
      ? undefined
      : createGrpcService({ oip: app.oip, maxUploadBytes: config.limits.maxUploadBytes, authToken: config.authToken, logger: logger.child({ component: 'grpc' }) });
  let opened: Engine | undefined;
  let stopping = false;

  const exit = async (code: number, reason: string): Promise<never> => {
    stopping = true;
    const force = setTimeout(() => {
      logger.error({ graceMs: config.shutdown.graceMs }, 'in-flight requests did not finish within the grace period; exiting');
      process.exit(1);
    }, config.shutdown.graceMs);
    logger.info({ reason, inflight: app.lifecycle.inflight() }, 'draining');
    // Readiness is 503 from here on; the delay gives load balancers time to notice before the listener closes.
    const drained = app.lifecycle.drain();
    grpc?.syncHealth();
    await Promise.all([drained, sleep(config.shutdown.delayMs)]);
    await Promise.all([app.close(), grpc?.close(config.shutdown.graceMs)]);
    await opened?.close();
    clearTimeout(force);
    logger.info({ code }, 'stopped');
    process.exit(code);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
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
