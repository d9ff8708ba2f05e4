/** GET /v1/models and /v1/models/{name}: what is served and how to call it. */
import type { FastifyPluginAsync } from 'fastify';
import { knobRanges } from '../../engine/index.js';
import { EngineError } from '../../errors.js';
import type { EnginePort } from '../engine-port.js';
import type { Lifecycle } from '../lifecycle.js';
import { ModelNameParams, type ModelInfo } from '../schemas.js';

export const modelRoutes: FastifyPluginAsync<{ lifecycle: Lifecycle }> = async (app, { lifecycle }) => {
  const served = (): EnginePort => {
    const engine = lifecycle.loaded();
    if (!engine) throw new EngineError('NOT_READY', 'the model is still loading');
    return engine;
  };

  app.get('/v1/models', async () => ({ models: [modelInfo(served(), lifecycle.status() === 'ready')] }));

  app.get('/v1/models/:name', async (request): Promise<ModelInfo> => {
    const { name } = ModelNameParams.parse(request.params);
    const engine = served();
    if (name !== engine.manifest.name) throw new EngineError('NOT_FOUND', `no model named ${JSON.stringify(name)}; this service serves ${JSON.stringify(engine.manifest.name)}`);
    return modelInfo(engine, lifecycle.status() === 'ready');
  });
};

export function modelInfo(engine: EnginePort, ready: boolean): ModelInfo {
  const { manifest } = engine;
  const { input } = manifest;
  const knobs = knobRanges(manifest);
  return {
    name: manifest.name,
    version: manifest.version,
    ready,
    execution_provider: engine.info.session.executionProvider,
    precision: engine.info.model.precision,
    precisions: engine.info.model.precisions,
    labels: manifest.labels,
    input: {
      layout: input.layout,
      frames: input.frames,
      size: input.size,
      resize_short_side: input.resize_short_side,
      crop: input.crop,
      sampling: input.sampling,
      color: input.color,
      mean: input.mean,
      std: input.std,
    },
    knobs: {
      top_k: knobs.top_k,
      keep_ratio: knobs.keep_ratio,
      halt_threshold: knobs.halt_threshold,
      // Only models exported with token merging offer it.
      ...(knobs.merge_mode && knobs.merge_ratio ? { merge_mode: knobs.merge_mode, merge_ratio: knobs.merge_ratio } : {}),
    },
    dense_gflops: manifest.dense_gflops,
  };
}
