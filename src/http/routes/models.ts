/** GET /v1/models and /v1/models/{name}: what is served and how to call it. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Service } from '../../service/index.js';
import { checkServed, modelInfo } from '../../service/models.js';
import { ModelInfo, ModelList, ModelNameParams } from '../schemas.js';

export const modelRoutes: FastifyPluginAsync<{ service: Service }> = async (base, { service }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const ready = (): boolean => service.lifecycle.status() === 'ready';

  app.get('/v1/models', { schema: { response: { 200: ModelList } } }, async () => ({ models: [modelInfo(service.loaded(), ready())] }));

  app.get('/v1/models/:name', { schema: { params: ModelNameParams, response: { 200: ModelInfo } } }, async (request) => {
    const engine = service.loaded();
    checkServed(engine, request.params.name);
    return modelInfo(engine, ready());
  });
};
