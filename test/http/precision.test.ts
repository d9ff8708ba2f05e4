/**
 * MODEL_PRECISION: the service serves the graph variant its configuration names (config → engine
 * port → engine → session), reports it in /v1/models, and a variant the manifest lacks stops the
 * start. The tiny fixture carries an int8 and an fp16 variant (models/haltingvt/export/variants.py).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import type { Engine } from '../../src/engine/index.js';
import { isEngineError } from '../../src/errors.js';
import { ClassifyResponse, ModelList } from '../../src/http/schemas.js';
import { copyTinyModel } from '../helpers/model-copy.js';
import { engineFromConfig, fixture, form, makeApp, TINY_MODEL, useTinyApp, videoPart, type TestApp } from './helpers.js';

const silent = pino({ level: 'silent' });
const fp32 = useTinyApp();

function open(env: Record<string, string>): Promise<Engine> {
  return engineFromConfig(loadConfig({ EXECUTION_PROVIDERS: 'cpu', INTRA_OP_THREADS: '1', CONCURRENCY: '1', ...env }), silent);
}

async function classify(t: TestApp): Promise<ClassifyResponse> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/classify?top_k=5', ...form([videoPart('clip.mp4', fixture('clip.mp4'))]) });
  expect(res.statusCode).toBe(200);
  return ClassifyResponse.parse(res.json());
}

describe('MODEL_PRECISION=int8', () => {
  let engine: Engine | undefined;
  let t: TestApp;
  beforeAll(async () => {
    engine = await open({ MODEL_DIR: TINY_MODEL, MODEL_PRECISION: 'int8' });
    t = makeApp(engine);
  });
  afterAll(async () => {
    await t?.app.close();
    await engine?.close();
  });

  it('is reported by /v1/models, with what the folder offers', async () => {
    const [m] = ModelList.parse((await t.app.inject({ method: 'GET', url: '/v1/models' })).json()).models;
    expect(m).toMatchObject({ name: 'tiny', precision: 'int8', precisions: ['fp32', 'int8', 'fp16'] });
    const [plain] = ModelList.parse((await fp32.app.inject({ method: 'GET', url: '/v1/models' })).json()).models;
    expect(plain).toMatchObject({ precision: 'fp32', precisions: ['fp32', 'int8', 'fp16'] });
  });

  it('runs the int8 graph: the same token accounting, probabilities near fp32\'s but its own', async () => {
    const [q, f] = [await classify(t), await classify(fp32)];
    expect(q.tokens.dense).toBe(f.tokens.dense);
    // Every class's probability, by label (top_k=5 is every class of the tiny model): int8 weights
    // move the tiny random model's logits a little (models/tests/test_variants.py bounds the real
    // model's drift), so near but not equal; equal would mean the fp32 graph ran.
    const byLabel = (r: ClassifyResponse): Map<string, number> => new Map(r.top.map((p) => [p.label, p.probability]));
    const [int8, full] = [byLabel(q), byLabel(f)];
    expect([...int8.keys()].sort()).toEqual([...full.keys()].sort());
    const drift = [...full].map(([label, p]) => Math.abs((int8.get(label) ?? Number.NaN) - p));
    expect(Math.max(...drift)).toBeLessThan(0.1);
    expect(Math.max(...drift)).toBeGreaterThan(0);
  });
});

describe('MODEL_PRECISION validation', () => {
  it('refuses an unknown precision when the configuration is read', () => {
    expect(() => loadConfig({ MODEL_PRECISION: 'int4' })).toThrow(/MODEL_PRECISION="int4"/);
  });

  it('fails the start, naming what the folder offers, when the manifest lacks the variant', async () => {
    const { dir, manifest, writeManifest } = copyTinyModel();
    delete manifest.variants.fp16;
    delete manifest.files['model.fp16.onnx'];
    writeManifest(manifest);
    const err = await open({ MODEL_DIR: dir, MODEL_PRECISION: 'fp16' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEngineError(err) && err.code).toBe('MODEL_NOT_FOUND');
    expect((err as Error).message).toContain('no fp16 variant of the graph (this model offers fp32, int8)');
  });
});
