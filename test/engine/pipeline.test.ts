import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEngineError, type ErrorCode } from '../../src/errors.js';
import { createEngine, type Engine, type KnobInput } from '../../src/engine/index.js';
import { ortSessionFactory, type SessionFactory } from '../../src/engine/inference/ort-session.js';
import { createInProcessHost } from '../../src/engine/inference/in-process.js';
import { captureLogger } from '../helpers/logger.js';
import { fixture } from '../helpers/media.js';
import { TINY_MODEL } from '../helpers/paths.js';

let engine: Engine;
beforeAll(async () => {
  engine = await createEngine({ modelDir: TINY_MODEL, config: { executionProviders: ['cpu'], maxDurationS: 1.5, maxPixels: 1e6 } });
});
afterAll(() => engine.close());

async function code(file: string, knobs: KnobInput = {}): Promise<ErrorCode | undefined> {
  try {
    await engine.classify(file, engine.validateKnobs(knobs));
  } catch (err) {
    if (isEngineError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('engine.classify (tiny model, decode and inference worker processes)', () => {
  it('returns a result that explains itself', async () => {
    const r = await engine.classify(fixture('one.mp4'), engine.validateKnobs({ top_k: 3, keep_ratio: 0.3, halt_threshold: 0.9 }));
    expect(r.top).toHaveLength(3);
    expect(r.top.map((p) => p.probability)).toEqual([...r.top.map((p) => p.probability)].sort((a, b) => b - a));
    expect(engine.manifest.labels).toContain(r.top[0]?.label);
    expect(r.knobs).toEqual({ top_k: 3, keep_ratio: 0.3, halt_threshold: 0.9, merge_mode: 'none', merge_ratio: 0 });
    expect(r.tokens.per_layer).toHaveLength(4);
    expect(r.tokens.total).toBe(r.tokens.per_layer.reduce((a, b) => a + b, 0));
    expect(r.tokens.dense).toBe(4 * (1 + 4 * 9));
    expect(r.tokens.kept_ratio).toBeCloseTo(r.tokens.total / r.tokens.dense, 6);
    expect(r.tokens.patch_stop_histogram.reduce((a, b) => a + b, 0)).toBe(4 * 9);
    expect(r.gflops).toBeGreaterThan(0);
    expect(r.gflops).toBeLessThan(r.dense_gflops);
    expect(r.video).toMatchObject({ width: 160, height: 120, frame_count: 1, sampled_indices: [0, 0, 0, 0], decoded_frames: 1, seeks: 0, padded_frames: 0 });
    for (const stage of ['decode', 'queue', 'infer', 'post', 'total'] as const) expect(r.timings_s[stage]).toBeGreaterThanOrEqual(0);
  });

  it('spends the dense budget with keep 1 and halting off', async () => {
    const r = await engine.classify(fixture('one.mp4'), engine.validateKnobs({ keep_ratio: 1, halt_threshold: 4 }));
    expect(r.tokens.kept_ratio).toBe(1);
    expect(r.gflops).toBeCloseTo(r.dense_gflops, 5);
  });

  it('gives the same answer for the same video', async () => {
    const [a, b] = await Promise.all([engine.classify(fixture('one.mp4'), engine.validateKnobs({})), engine.classify(fixture('one.mp4'), engine.validateKnobs({}))]);
    expect(a.top).toEqual(b.top);
    expect(a.tokens).toEqual(b.tokens);
  });

  it.each([
    ['missing.mp4', 'FILE_NOT_FOUND'],
    ['audio.m4a', 'VIDEO_NO_STREAM'],
    ['image.png', 'VIDEO_STILL_IMAGE'],
    ['garbage.mp4', 'VIDEO_UNDECODABLE'],
    ['clip.mp4', 'VIDEO_TOO_LONG'],
  ] as const)('refuses %s with %s', async (name, expected) => {
    expect(await code(name === 'missing.mp4' ? '/nonexistent/missing.mp4' : fixture(name))).toBe(expected);
  });

  it('hands the frames to the inference worker through a scratch file when given one, with the same answer', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-frames-'));
    try {
      const framesFile = path.join(dir, 'frames');
      const knobs = engine.validateKnobs({ keep_ratio: 0.5 });
      const [viaIpc, viaFile] = [await engine.classify(fixture('one.mp4'), knobs), await engine.classify(fixture('one.mp4'), knobs, { framesFile })];
      // The decode worker left the distinct frames there: whole 48 × 48 rgb24 frames, at most one per slot.
      const bytes = statSync(framesFile).size;
      expect(bytes % (48 * 48 * 3)).toBe(0);
      expect(bytes / (48 * 48 * 3)).toBeGreaterThanOrEqual(1);
      expect(bytes / (48 * 48 * 3)).toBeLessThanOrEqual(4);
      expect(viaFile.top).toEqual(viaIpc.top);
      expect(viaFile.tokens).toEqual(viaIpc.tokens);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says how it decodes, and that a decode worker is available', () => {
    expect(engine.info.decode).toMatchObject({ workers: 1, hardware: 'cpu' });
    expect(engine.info.decode.threads).toBeGreaterThanOrEqual(1);
    expect(engine.stats()).toMatchObject({ accepting: true, pools: { decode: { state: 'up', alive: 1 }, inference: { state: 'up', alive: 1 } } });
  });

  it('refuses bad knobs before touching the file', async () => {
    expect(await code('/nonexistent/missing.mp4', { keep_ratio: 9 })).toBe('BAD_KNOB');
  });

  it('is cancelled by its signal', async () => {
    const error = await engine.classify(fixture('one.mp4'), engine.validateKnobs({}), { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(isEngineError(error, 'ABORTED')).toBe(true);
  });
});

describe('createEngine', () => {
  it('refuses frames over the pixel limit', async () => {
    const small = await createEngine({ modelDir: TINY_MODEL, config: { executionProviders: ['cpu'], maxPixels: 100 } });
    try {
      await expect(small.classify(fixture('one.mp4'), small.validateKnobs({}))).rejects.toMatchObject({ code: 'VIDEO_TOO_LARGE' });
    } finally {
      await small.close();
    }
  });

  it('fails with the model error when the folder is broken', async () => {
    await expect(createEngine({ modelDir: '/nonexistent/model' })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
  });
});

describe('createEngine with an injected session factory', () => {
  it('falls back from CUDA to CPU, says why, and classifies on CPU', async () => {
    const tried: string[] = [];
    const factory: SessionFactory = async (modelPath, options) => {
      tried.push(options.executionProviders.join(','));
      if (options.executionProviders[0] === 'cuda') throw new Error('CUDA driver version is insufficient');
      return ortSessionFactory(modelPath, options);
    };
    const { logger, lines } = captureLogger();
    const engine = await createEngine({ modelDir: TINY_MODEL, logger, createHost: createInProcessHost(factory) });
    try {
      expect(tried).toEqual(['cuda,cpu', 'cpu']);
      expect(engine.info.session.executionProvider).toBe('cpu');
      expect(lines.find((l) => l.level === 40)).toMatchObject({ provider: 'cuda', reason: 'CUDA driver version is insufficient' });
      const r = await engine.classify(fixture('one.mp4'), engine.validateKnobs({}));
      expect(r.top).toHaveLength(5);
    } finally {
      await engine.close();
    }
  });

  it('selects WebGPU and, with no GPU adapter, falls back to CPU as CUDA does, with the same answers', async () => {
    const { logger, lines } = captureLogger();
    const webgpu = await createEngine({ modelDir: TINY_MODEL, logger, config: { executionProviders: ['webgpu', 'cpu'] }, createHost: createInProcessHost(ortSessionFactory) });
    try {
      const knobs = { keep_ratio: 0.3, halt_threshold: 0.9 };
      const [got, want] = await Promise.all([webgpu.classify(fixture('one.mp4'), webgpu.validateKnobs(knobs)), engine.classify(fixture('one.mp4'), engine.validateKnobs(knobs))]);
      if (webgpu.info.session.executionProvider === 'cpu') {
        // This machine has no GPU: Dawn finds no adapter and the session opens on the next provider.
        expect(lines.find((l) => l.level === 40)).toMatchObject({ provider: 'webgpu', reason: expect.stringContaining('Failed to get a WebGPU adapter') });
        expect(got.top).toEqual(want.top);
      } else {
        // A machine with a GPU: the graph ran there (scripts/gpu-check.sh measures how closely).
        expect(webgpu.info.session.executionProvider).toBe('webgpu');
        got.top.forEach((p, i) => expect(p.probability).toBeCloseTo(want.top[i]?.probability ?? NaN, 3));
      }
      expect(got.tokens).toEqual(want.tokens);
    } finally {
      await webgpu.close();
    }
  });

  it('turns a model that breaks the output contract into MODEL_INVALID', async () => {
    const factory: SessionFactory = async (modelPath, options) => {
      const real = await ortSessionFactory(modelPath, options);
      return { ...real, run: async (feeds) => ({ ...(await real.run(feeds)), logits: { dtype: 'int64', dims: [1, 5], data: new BigInt64Array(5) } }) };
    };
    const engine = await createEngine({ modelDir: TINY_MODEL, config: { executionProviders: ['cpu'] }, createHost: createInProcessHost(factory) });
    try {
      await expect(engine.classify(fixture('one.mp4'), engine.validateKnobs({}))).rejects.toThrow(/output "logits" is int64, the contract says float32/);
    } finally {
      await engine.close();
    }
  });
});
