/**
 * Liveness and readiness, plain and in the KServe v2 (Open Inference Protocol) form. Live means
 * the process answers; ready (lifecycle.ready()) means the model is loaded and warm, an inference
 * worker can run, and the service is not draining, so a load balancer stops sending work as soon
 * as SIGTERM arrives or the worker cannot be restarted.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Lifecycle } from '../../service/index.js';
import { Liveness, Readiness, V2Live, V2Ready } from '../schemas.js';

export const healthRoutes: FastifyPluginAsync<{ lifecycle: Lifecycle; retryAfterS: number }> = async (base, { lifecycle, retryAfterS }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.get('/healthz', { schema: { response: { 200: Liveness } } }, async () => ({ status: 'ok' as const }));
  app.get('/v2/health/live', { schema: { response: { 200: V2Live } } }, async () => ({ live: true }));

  app.get('/readyz', { schema: { response: { 200: Readiness, 503: Readiness } } }, async (_request, reply) => {
    const status = lifecycle.status();
    if (!lifecycle.ready()) reply.code(503).header('retry-after', String(retryAfterS));
    return { status };
  });
  app.get('/v2/health/ready', { schema: { response: { 200: V2Ready, 503: V2Ready } } }, async (_request, reply) => {
    const ready = lifecycle.ready();
    if (!ready) reply.code(503).header('retry-after', String(retryAfterS));
    return { ready };
  });
};
