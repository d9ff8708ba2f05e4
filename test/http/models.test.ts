import { describe, expect, it } from 'vitest';
import { ErrorBody, ModelInfo, ModelList } from '../../src/http/schemas.js';
import { useTinyApp } from './helpers.js';

const t = useTinyApp();

describe('GET /v1/models', () => {
  it('lists the served model with labels, input spec, knob ranges and dense GFLOPs', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/models' });
    expect(res.statusCode).toBe(200);
    const { models } = ModelList.parse(res.json());
    expect(models).toHaveLength(1);
    const [m] = models;
    expect(m).toMatchObject({ name: 'tiny', version: '0.0.1', ready: true, execution_provider: 'cpu', labels: ['left', 'right', 'up', 'down', 'still'] });
    expect(m!.input).toMatchObject({ layout: 'NCTHW', frames: 4, size: 48 });
    expect(m!.knobs).toEqual({
      top_k: { default: 5, min: 1, max: 5 },
      keep_ratio: t.engine.manifest.knobs.keep_ratio,
      halt_threshold: t.engine.manifest.knobs.halt_threshold,
      merge_mode: { default: 'none', choices: ['none', 'tome', 'tldr'] },
      merge_ratio: { default: 0, min: 0, max: 0.5 },
    });
    expect(m!.dense_gflops).toBe(t.engine.manifest.dense_gflops);
  });

  it('GET /v1/models/{name} answers the model, 404 NOT_FOUND for another name', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/models/tiny' });
    expect(ModelInfo.parse(res.json()).name).toBe('tiny');
    const missing = await t.app.inject({ method: 'GET', url: '/v1/models/huge' });
    expect(missing.statusCode).toBe(404);
    expect(ErrorBody.parse(missing.json()).error).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });
});

describe('health', () => {
  it('answers liveness and readiness in both forms', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
    expect((await t.app.inject({ method: 'GET', url: '/v2/health/live' })).json()).toEqual({ live: true });
    expect((await t.app.inject({ method: 'GET', url: '/v2/health/ready' })).json()).toEqual({ ready: true });
  });
});

describe('documentation', () => {
  it('serves openapi.yaml and a self-contained /docs page', async () => {
    const yaml = await t.app.inject({ method: 'GET', url: '/openapi.yaml' });
    expect(yaml.headers['content-type']).toContain('application/yaml');
    expect(yaml.body).toMatch(/^openapi: 3\.1\.0/);
    const docs = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-type']).toContain('text/html');
    expect(docs.headers['content-security-policy']).toContain("default-src 'none'");
    expect(docs.body).toContain('/v1/classify:batch');
    expect(docs.body).toContain('ClassifyResponse');
    // Nothing is loaded from another origin.
    expect(docs.body).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
  });
});
