/**
 * End to end across both languages: the Python toolkit renders a fresh held-out split of the
 * benchmark as real video files, and the TypeScript engine classifies them with the committed
 * default model. Needs the project's Python environment (HALTINGVT_PYTHON, set by `make test`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine/index.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PYTHON = process.env.HALTINGVT_PYTHON;
const MODEL = path.join(ROOT, 'models/default');

describe.skipIf(!PYTHON)('the default model on a fresh held-out split (through the TypeScript engine)', () => {
  let engine: Engine;
  let dir: string;
  let rows: { path: string; label: string }[];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'haltingvt-heldout-'));
    execFileSync(PYTHON!, ['-m', 'haltingvt', 'synth', '--out', dir, '--count', '12', '--seed', '1950', '--quiet'], {
      cwd: path.join(ROOT, 'models'),
      env: { ...process.env, PYTHONPATH: path.join(ROOT, 'models') },
    });
    const csv = readFileSync(path.join(dir, 'labels.csv'), 'utf8').trim().split('\n').slice(1);
    rows = csv.map((line) => {
      const [file, label] = line.split(',');
      return { path: path.join(dir, file), label };
    });
    engine = await createEngine({ modelDir: MODEL });
  }, 180_000);

  afterAll(async () => {
    await engine?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('labels held-out videos right, with the tokens and GFLOPs it spent', async () => {
    expect(existsSync(path.join(MODEL, 'manifest.json'))).toBe(true);
    let right = 0;
    for (const row of rows) {
      const result = await engine.classify(row.path);
      if (result.top[0].label === row.label) right += 1;
      expect(result.tokens.per_layer.length).toBe(engine.manifest.flops.joint_blocks);
      expect(result.gflops).toBeGreaterThan(0);
      expect(result.gflops).toBeLessThan(result.dense_gflops);
    }
    // 95% is the target on 240 clips; 12 fresh clips leave room for one miss more.
    expect(right).toBeGreaterThanOrEqual(10);
  }, 180_000);
});
