/**
 * End to end across both languages: the Python toolkit renders a fresh held-out split of the
 * benchmark as real video files and predicts them with ONNX Runtime (Python) on its own decoder's
 * frames; the TypeScript engine must give the same top-1 labels with the committed default model.
 * Needs the project's Python environment (HALTINGVT_PYTHON, set by `make test`); under `make test`
 * its absence fails rather than skips (helpers/needs.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine/index.js';
import { mergeCount } from '../../src/engine/merging.js';
import { suiteNeeds } from '../helpers/needs.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PYTHON = process.env.HALTINGVT_PYTHON;
const MODEL = path.join(ROOT, 'models/default');

const PREDICT = `
import csv, json, sys
from pathlib import Path
import numpy as np, onnxruntime as ort
from haltingvt.export import feeds
from haltingvt.synth.stream import to_tensor
from haltingvt.video import sample_video
split, model = Path(sys.argv[1]), Path(sys.argv[2])
m = json.loads((model / "manifest.json").read_text())
sess = ort.InferenceSession(str(model / "model.onnx"), providers=["CPUExecutionProvider"])
out = []
for row in csv.DictReader(open(split / "labels.csv")):
    clip = sample_video(split / row["path"], m["input"]["frames"], m["input"]["size"], m["input"]["resize_short_side"])
    knobs = (m["knobs"]["keep_ratio"]["default"], m["knobs"]["halt_threshold"]["default"])
    logits, tokens, _ = sess.run(None, feeds(to_tensor(clip[None]).numpy(), *knobs))
    merged, merged_tokens, _ = sess.run(None, feeds(to_tensor(clip[None]).numpy(), *knobs, "tldr", 0.2))
    out.append({"path": row["path"], "label": row["label"], "top1": m["labels"][int(logits[0].argmax())],
                "tokens": tokens[0].tolist(), "merged_top1": m["labels"][int(merged[0].argmax())],
                "merged_tokens": merged_tokens[0].tolist()})
print(json.dumps(out))
`;

const canRun = suiteNeeds({ 'HALTINGVT_PYTHON (the Python of scripts/python-env.sh)': PYTHON });

describe.runIf(canRun)('the default model on a fresh held-out split, TypeScript engine vs Python', () => {
  let engine: Engine;
  let dir: string;
  let expected: { path: string; label: string; top1: string; tokens: number[]; merged_top1: string; merged_tokens: number[] }[];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'haltingvt-heldout-'));
    const env = { ...process.env, PYTHONPATH: path.join(ROOT, 'models') };
    execFileSync(PYTHON!, ['-m', 'haltingvt', 'synth', '--out', dir, '--count', '12', '--seed', '1950', '--quiet'], { env });
    expected = JSON.parse(execFileSync(PYTHON!, ['-c', PREDICT, dir, MODEL], { env, encoding: 'utf8' }));
    engine = await createEngine({ modelDir: MODEL });
  }, 240_000);

  afterAll(async () => {
    await engine?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the same labels and token counts as Python, with the GFLOPs it spent', async () => {
    expect(expected).toHaveLength(12);
    for (const row of expected) {
      const result = await engine.classify(path.join(dir, row.path), engine.validateKnobs({}));
      expect(result.top[0]?.label, row.path).toBe(row.top1);
      expect(result.tokens.per_layer, row.path).toEqual(row.tokens);
      expect(result.gflops).toBeGreaterThan(0);
      expect(result.gflops).toBeLessThan(result.dense_gflops);
      const merged = await engine.classify(path.join(dir, row.path), engine.validateKnobs({ merge_mode: 'tldr', merge_ratio: 0.2 }));
      expect(merged.top[0]?.label, row.path).toBe(row.merged_top1);
      expect(merged.tokens.per_layer, row.path).toEqual(row.merged_tokens);
      expect(merged.tokens.merged_per_layer).toEqual(row.merged_tokens.map((n) => mergeCount(n, 0.2)));
    }
  }, 240_000);
});
