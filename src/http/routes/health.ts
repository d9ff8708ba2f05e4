/**
 * Liveness and readiness, plain and in the KServe v2 (Open Inference Protocol) form. Live means
 * the process answers; ready (lifecycle.ready()) means the model is loaded and warm, an inference
 * worker can run, and the service is not draining, so a load balancer stops sending work as soon
 * as SIGTERM arrives or the worker cannot be restarted.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Lifecycle } from '../lifecycle.js';

export const healthRoutes: FastifyPluginAsync<{ lifecycle: Lifecycle; retryAfterS: number }> = async (app, { lifecycle, retryAfterS }) => {
  app.get('/healthz', async () => ({ status: 'ok' as const }));
  app.get('/v2/health/live', async () => ({ live: true }));

  app.get('/readyz', async (_request, reply) => {
    const status = lifecycle.status();
    if (!lifecycle.ready()) reply.code(503).header('retry-after', String(retryAfterS));
    return { status };
  });
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = lifecycle.ready();
    if (!ready) reply.code(503).header('retry-after', String(retryAfterS));
    return { ready };
  });
};
