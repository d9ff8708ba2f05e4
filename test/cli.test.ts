import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { defaultModelDir } from '../src/paths.js';
import { EngineError } from '../src/errors.js';
import type { ClassifyResult, Engine, EngineOptions } from '../src/engine/index.js';
import { ROOT } from './helpers/paths.js';
import { sink } from './helpers/sink.js';

const result = (): ClassifyResult =>
  ({
    top: [
      { label: 'left', index: 0, probability: 0.7 },
      { label: 'up', index: 2, probability: 0.2 },
    ],
    tokens: { per_layer: [5, 3], total: 8, dense: 20, kept_ratio: 0.4, layers_run: 2, patch_stop_histogram: [] },
    gflops: 0.001,
    dense_gflops: 0.002,
    knobs: { top_k: 2, keep_ratio: 0.5, halt_threshold: 0.99 },
    timings_s: { decode: 0.1, queue: 0, infer: 0.01, post: 0, total: 0.11 },
  }) as unknown as ClassifyResult;

function fakeEngine(seen: { options?: EngineOptions; knobs: unknown[]; closed: boolean }) {
  return async (options: EngineOptions): Promise<Engine> => {
    seen.options = options;
    return {
      manifest: { name: 'fake', version: '0' },
      info: { model: { name: 'fake', version: '0' }, session: { executionProvider: 'cpu' } },
      // A model folder named /down stands for an engine whose inference worker cannot start now.
      stats: () => ({ accepting: options.modelDir !== '/down', pools: {} }),
      validateKnobs: (k: unknown) => {
        if ((k as { keep_ratio?: unknown }).keep_ratio === 7) throw new EngineError('BAD_KNOB', 'keep_ratio=7 is out of range [0.05, 1]');
        return k;
      },
      classify: async (file: string, knobs: unknown) => {
        seen.knobs.push(knobs);
        if (file.endsWith('.png')) throw new EngineError('VIDEO_STILL_IMAGE', `${file} is a still image`);
        return result();
      },
      close: async () => {
        seen.closed = true;
      },
    } as unknown as Engine;
  };
}

async function run(args: string[], tty = false) {
  const out = sink();
  const err = sink(tty);
  const seen = { knobs: [] as unknown[], closed: false } as { options?: EngineOptions; knobs: unknown[]; closed: boolean };
  const code = await main(args, { stdout: out.stream, stderr: err.stream, createEngine: fakeEngine(seen), cwd: ROOT });
  return { code, stdout: out.text(), stderr: err.text(), seen };
}

describe('haltingvt classify', () => {
  it('prints one JSON line per file and passes the knobs', async () => {
    const { code, stdout, seen } = await run(['classify', 'a.mp4', 'b.mp4', '--top-k', '2', '--keep-ratio', '0.3', '--threshold', '1.5', '--model', '/m']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as ClassifyResult & { file: string });
    expect(lines.map((l) => l.file)).toEqual(['a.mp4', 'b.mp4']);
    expect(seen.knobs[0]).toEqual({ top_k: 2, keep_ratio: 0.3, halt_threshold: 1.5 });
    expect(seen.options?.modelDir).toBe('/m');
    expect(seen.closed).toBe(true);
  });

  it('answers every file with the refusal when no worker can run, and exits 1', async () => {
    const { code, stdout } = await run(['classify', 'a.mp4', 'b.mp4', '--model', '/down']);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; error: { code: string } });
    expect(lines.map((l) => [l.file, l.error.code])).toEqual([
      ['a.mp4', 'WORKER_UNAVAILABLE'],
      ['b.mp4', 'WORKER_UNAVAILABLE'],
    ]);
    expect(code).toBe(1);
  });

  it('prints an error line for a failed file, goes on, and exits 1', async () => {
    const { code, stdout } = await run(['classify', 'a.png', 'b.mp4']);
    const [first, second] = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toEqual({ file: 'a.png', error: { code: 'VIDEO_STILL_IMAGE', message: 'a.png is a still image' } });
    expect(second?.file).toBe('b.mp4');
    expect(code).toBe(1);
  });

  it('prints a table with --pretty', async () => {
    const { stdout } = await run(['classify', 'a.mp4', 'b.png', '--pretty']);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^file\s+top label\s+p\s+others\s+kept\s+GFLOPs/);
    expect(lines[2]).toMatch(/^a\.mp4\s+left\s+0\.700\s+up 0\.20\s+0\.400\s+0\.0010/);
    expect(lines[3]).toContain('ERROR VIDEO_STILL_IMAGE');
  });

  it('passes the token-merging knobs', async () => {
    const { code, seen } = await run(['classify', 'a.mp4', '--merge-mode', 'tldr', '--merge-ratio', '0.2']);
    expect(code).toBe(0);
    expect(seen.knobs[0]).toMatchObject({ merge_mode: 'tldr', merge_ratio: 0.2 });
  });

  it('refuses bad knobs once with exit code 2 and closes the engine', async () => {
    const { code, stderr, stdout, seen } = await run(['classify', 'a.mp4', '--keep-ratio', '7']);
    expect(code).toBe(2);
    expect(stderr).toContain('BAD_KNOB: keep_ratio=7 is out of range [0.05, 1]');
    expect(stdout).toBe('');
    expect(seen.closed).toBe(true);
  });

  it('shows progress on a terminal when there are several files', async () => {
    const { stderr } = await run(['classify', 'a.mp4', 'b.mp4'], true);
    expect(stderr).toContain('2/2');
  });

  it('says once, in words, that a provider asked for by name could not be used', async () => {
    const asked = await run(['classify', 'a.mp4', '--providers', 'cuda,cpu']);
    expect(asked.seen.options?.config).toMatchObject({ executionProviders: ['cuda', 'cpu'] });
    expect(asked.stderr).toBe('haltingvt: running on cpu: cuda could not load the model (--verbose says why)\n');
    expect((await run(['classify', 'a.mp4'])).stderr).toBe('');
    expect((await run(['classify', 'a.mp4', '--providers', 'cpu'])).stderr).toBe('');
  });

  it('passes --precision to the engine and refuses one it does not know', async () => {
    expect((await run(['classify', 'a.mp4', '--precision', 'int8'])).seen.options?.config).toMatchObject({ precision: 'int8' });
    const bad = await run(['classify', 'a.mp4', '--precision', 'int4']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--precision must be one of fp32, int8, fp16, not "int4"');
  });

  it('explains its usage on bad arguments', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['frobnicate', 'x'])).stderr).toContain('unknown command "frobnicate"');
    expect((await run(['classify', 'x', '--nope'])).stderr).toContain("Unknown option '--nope'");
    expect((await run(['--help'])).stdout).toContain('usage: haltingvt classify');
  });

  it('defaults to models/default, else the tiny fixture', () => {
    expect(defaultModelDir([ROOT])).toMatch(/models\/(default|fixtures\/tiny)$/);
  });
});
