/**
 * Liveness and readiness, plain and in the KServe v2 (Open Inference Protocol) form. Live means
 * the process answers; ready means the model is loaded and warm and the service is not draining,
 * so a load balancer stops sending work as soon as SIGTERM arrives.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Lifecycle } from '../lifecycle.js';
import { isReady } from '../readiness.js';

export const healthRoutes: FastifyPluginAsync<{ lifecycle: Lifecycle; retryAfterS: number }> = async (app, { lifecycle, retryAfterS }) => {
  app.get('/healthz', async () => ({ status: 'ok' as const }));
  app.get('/v2/health/live', async () => ({ live: true }));

  app.get('/readyz', async (_request, reply) => {
    const status = lifecycle.status();
    if (!isReady(lifecycle)) reply.code(503).header('retry-after', String(retryAfterS));
    return { status };
  });
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = isReady(lifecycle);
    if (!ready) reply.code(503).header('retry-after', String(retryAfterS));
    return { ready };
  });
};
