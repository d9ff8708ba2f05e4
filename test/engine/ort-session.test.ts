import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { mergeModeIndex, type MergeMode } from '../../src/engine/merging.js';
import { checkFeeds, feedMismatches, openSession, providerAttempts, type SessionFactory, type ValueSpec } from '../../src/engine/inference/ort-session.js';
import { captureLogger } from '../helpers/logger.js';
import { GOLDEN, TINY_MODEL, golden } from '../helpers/paths.js';

const inputs: ValueSpec[] = [
  { name: 'video', dtype: 'float32', dims: ['batch', 3, 4, 48, 48] },
  { name: 'keep_ratio', dtype: 'float32', dims: [] },
  { name: 'halt_threshold', dtype: 'float32', dims: [] },
];
const scalar = (v: number) => ({ dtype: 'float32' as const, dims: [], data: Float32Array.of(v) });
const video = (dims: number[]) => ({ dtype: 'float32' as const, dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) });

describe('feed validation', () => {
  it('accepts feeds that fit, with any batch size', () => {
    expect(feedMismatches(inputs, { video: video([2, 3, 4, 48, 48]), keep_ratio: scalar(0.5), halt_threshold: scalar(1) })).toEqual([]);
  });

  it('reports every mismatch at once: names, dtypes and dims', () => {
    const problems = feedMismatches(inputs, {
      video: video([1, 3, 8, 48, 48]),
      keep_ratio: { dtype: 'int64', dims: [], data: BigInt64Array.of(1n) },
      threshold: scalar(1),
    });
    expect(problems).toEqual([
      '"video": dim 2 is 8, model wants 4',
      '"keep_ratio": dtype int64, model wants float32',
      'missing input "halt_threshold" (float32 [])',
      'unexpected input "threshold"',
    ]);
  });

  it('reports a wrong rank and a data length that does not match the dims', () => {
    const problems = feedMismatches(inputs, {
      video: { dtype: 'float32', dims: [1, 3, 4, 48, 48], data: new Float32Array(10) },
      keep_ratio: { dtype: 'float32', dims: [1], data: Float32Array.of(1) },
      halt_threshold: scalar(1),
    });
    expect(problems).toEqual(['"video": 10 values for dims [1, 3, 4, 48, 48] (27648)', '"keep_ratio": rank 1 [1], model wants rank 0 []']);
  });

  it('throws FEED_MISMATCH with the list in its details', () => {
    try {
      checkFeeds(inputs, {});
      expect.unreachable();
    } catch (err) {
      expect(isEngineError(err, 'FEED_MISMATCH')).toBe(true);
      expect((err as { details: { problems: string[] } }).details.problems).toHaveLength(3);
    }
  });
});

describe('openSession', () => {
  const fakeSession = { inputs, outputs: [], run: async () => ({}), dispose: async () => undefined };

  it('falls back from CUDA to CPU and logs why', async () => {
    const tried: string[][] = [];
    const factory: SessionFactory = async (_path, options) => {
      tried.push(options.executionProviders);
      if (options.executionProviders[0] === 'cuda') throw new Error('libcudart.so.12: cannot open shared object file');
      return fakeSession;
    };
    const { logger, lines } = captureLogger();
    const session = await openSession('model.onnx', { executionProviders: ['cuda', 'cpu'], logger, factory });
    expect(session.executionProvider).toBe('cpu');
    expect(tried).toEqual([['cuda', 'cpu'], ['cpu']]);
    const warning = lines.find((l) => l.level === 40);
    expect(warning).toMatchObject({ provider: 'cuda', reason: 'libcudart.so.12: cannot open shared object file' });
    expect(String(warning?.msg)).toContain('trying cpu');
  });

  it('puts one GPU provider in each attempt, the CPU after it: CUDA, then WebGPU, then CPU', () => {
    expect(providerAttempts(['cuda', 'webgpu', 'cpu'])).toEqual([['cuda', 'cpu'], ['webgpu', 'cpu'], ['cpu']]);
    expect(providerAttempts(['webgpu', 'cuda'])).toEqual([['webgpu'], ['cuda']]);
    expect(providerAttempts(['cpu'])).toEqual([['cpu']]);
  });

  it('falls back from CUDA to WebGPU to CPU, logging each reason', async () => {
    const tried: string[][] = [];
    const factory: SessionFactory = async (_path, options) => {
      tried.push(options.executionProviders);
      if (options.executionProviders[0] !== 'cpu') throw new Error(`no ${options.executionProviders[0]}`);
      return fakeSession;
    };
    const { logger, lines } = captureLogger();
    const session = await openSession('model.onnx', { executionProviders: ['cuda', 'webgpu', 'cpu'], logger, factory });
    expect(session.executionProvider).toBe('cpu');
    expect(tried).toEqual([['cuda', 'cpu'], ['webgpu', 'cpu'], ['cpu']]);
    expect(lines.filter((l) => l.level === 40).map((l) => [l.provider, l.reason, l.msg])).toEqual([
      ['cuda', 'no cuda', 'cannot create a session on cuda; trying webgpu'],
      ['webgpu', 'no webgpu', 'cannot create a session on webgpu; trying cpu'],
    ]);
  });

  it('uses CUDA without a warning when it works', async () => {
    const { logger, lines } = captureLogger();
    const session = await openSession('model.onnx', { executionProviders: ['cuda', 'cpu'], logger, factory: async () => fakeSession });
    expect(session.executionProvider).toBe('cuda');
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });

  it('fails with every provider\'s reason when none works', async () => {
    const { logger } = captureLogger();
    const factory: SessionFactory = async (_p, o) => {
      throw new Error(`no ${o.executionProviders[0]}`);
    };
    await expect(openSession('m.onnx', { executionProviders: ['cuda', 'cpu'], logger, factory })).rejects.toThrow(/cuda: no cuda; cpu: no cpu/);
  });

  it('runs the tiny model like Python (models/golden/parity_tiny)', async () => {
    const { logger } = captureLogger();
    const session = await openSession(path.join(TINY_MODEL, 'model.onnx'), { executionProviders: ['cpu'], logger });
    const parity = golden<{
      input_shape: number[];
      cases: Array<{ keep_ratio: number; halt_threshold: number; merge_mode: MergeMode; merge_ratio: number; logits: number[][]; active_tokens: number[][] }>;
    }>('parity_tiny/expected.json');
    const raw = readFileSync(path.join(GOLDEN, 'parity_tiny', 'input.f32'));
    const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    for (const c of parity.cases) {
      const out = await session.run({
        video: { dtype: 'float32', dims: parity.input_shape, data },
        keep_ratio: scalar(c.keep_ratio),
        halt_threshold: scalar(c.halt_threshold),
        merge_mode: { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(mergeModeIndex(c.merge_mode))) },
        merge_ratio: scalar(c.merge_ratio),
      });
      const logits = Array.from(out.logits?.data as Float32Array);
      logits.forEach((v, i) => expect(v).toBeCloseTo(c.logits.flat()[i] as number, 4));
      expect(Array.from(out.active_tokens?.data as BigInt64Array, Number)).toEqual(c.active_tokens.flat());
    }
    await session.dispose();
  });
});
