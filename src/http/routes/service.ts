/** GET /metrics, /openapi.yaml, /docs, /demo and /live. */
import type { FastifyPluginAsync } from 'fastify';
import type { MetricsRegistry as Registry } from '../../service/metrics.js';
import { exposition } from '../../service/exposition.js';
import { DEMO_PAGE } from '../demo-page.js';
import { DOCS_CSP, renderDocsPage } from '../docs-page.js';
import { LIVE_PAGE } from '../live-page.js';
import type { Page } from '../page.js';
import { buildOpenApiDocument, openApiYaml } from '../openapi.js';

export const serviceRoutes: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  // Built once: the document depends only on the code.
  const yaml = openApiYaml();
  const servePage = (url: string, { html, csp }: Page): void =>
    void app.get(url, async (_request, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', csp).header('x-content-type-options', 'nosniff').send(html));

  app.get('/metrics', async (request, reply) => {
    const { contentType, body } = await exposition(registry, request.headers.accept);
    return reply.type(contentType).header('vary', 'accept').send(body);
  });
  app.get('/openapi.yaml', async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(yaml));
  servePage('/docs', { html: renderDocsPage(buildOpenApiDocument()), csp: DOCS_CSP });
  servePage('/demo', DEMO_PAGE);
  servePage('/live', LIVE_PAGE);
};
