/** GET /metrics, /openapi.yaml, /docs, /demo and /live. */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { DEMO_CSP, DEMO_PAGE } from '../demo-page.js';
import { DOCS_CSP, renderDocsPage } from '../docs-page.js';
import { LIVE_CSP, LIVE_PAGE } from '../live-page.js';
import { buildOpenApiDocument, openApiYaml } from '../openapi.js';

export const serviceRoutes: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  // Built once: the document depends only on the code.
  const yaml = openApiYaml();
  const page = renderDocsPage(buildOpenApiDocument());

  app.get('/metrics', async (_request, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
  app.get('/openapi.yaml', async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(yaml));
  app.get('/docs', async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', DOCS_CSP).header('x-content-type-options', 'nosniff').send(page),
  );
  app.get('/demo', async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', DEMO_CSP).header('x-content-type-options', 'nosniff').send(DEMO_PAGE),
  );
  app.get('/live', async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', LIVE_CSP).header('x-content-type-options', 'nosniff').send(LIVE_PAGE),
  );
};
