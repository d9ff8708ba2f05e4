import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEngineError, type ErrorCode } from '../../src/errors.js';
import { loadModel, parseManifest } from '../../src/engine/model.js';
import { copyTinyModel } from '../helpers/model-copy.js';
import { TINY_MODEL } from '../helpers/paths.js';

async function failure(dir: string): Promise<{ code: ErrorCode; message: string }> {
  try {
    await loadModel(dir);
  } catch (err) {
    if (isEngineError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('loaded');
}

describe('loadModel', () => {
  it('loads the tiny fixture and checks its files', async () => {
    const model = await loadModel(TINY_MODEL);
    expect(model.manifest.name).toBe('tiny');
    expect(model.manifest.input).toMatchObject({ frames: 4, size: 48, resize_short_side: 55 });
    expect(model.modelPath).toBe(path.join(TINY_MODEL, 'model.onnx'));
  });

  it('serves a variant the manifest lists by precision, fp32 by default', async () => {
    const model = await loadModel(TINY_MODEL, 'int8');
    expect(model.modelPath).toBe(path.join(TINY_MODEL, 'model.int8.onnx'));
    expect(model).toMatchObject({ precision: 'int8', precisions: ['fp32', 'int8', 'fp16'] });
    expect(await loadModel(TINY_MODEL)).toMatchObject({ precision: 'fp32', modelPath: path.join(TINY_MODEL, 'model.onnx') });
  });

  it('refuses a variant whose file is not listed in files with the same sha256', async () => {
    const { dir, manifest, writeManifest } = copyTinyModel();
    manifest.variants.int8.sha256 = '0'.repeat(64);
    writeManifest(manifest);
    const { code, message } = await failure(dir);
    expect(code).toBe('MODEL_INVALID');
    expect(message).toContain('variants.int8: file "model.int8.onnx" must be listed in files with the same sha256');
  });

  it('names a missing manifest', async () => {
    const { dir } = copyTinyModel();
    rmSync(path.join(dir, 'manifest.json'));
    expect(await failure(dir)).toEqual({ code: 'MODEL_NOT_FOUND', message: `${path.join(dir, 'manifest.json')}: cannot read (does not exist)` });
  });

  it('names a listed file that is missing', async () => {
    const { dir } = copyTinyModel();
    rmSync(path.join(dir, 'model.onnx'));
    const { code, message } = await failure(dir);
    expect(code).toBe('MODEL_NOT_FOUND');
    expect(message).toContain('model.onnx: listed in manifest.json but does not exist');
  });

  it('names a file whose size differs', async () => {
    const { dir } = copyTinyModel();
    appendFileSync(path.join(dir, 'model.onnx'), 'x');
    const { code, message } = await failure(dir);
    expect(code).toBe('MODEL_INVALID');
    expect(message).toMatch(/model\.onnx: \d+ bytes, manifest\.json says \d+/);
  });

  it('names a file whose sha256 differs', async () => {
    const { dir, manifest, writeManifest } = copyTinyModel();
    manifest.files['labels.txt'].sha256 = '0'.repeat(64);
    writeManifest(manifest);
    const { code, message } = await failure(dir);
    expect(code).toBe('MODEL_INVALID');
    expect(message).toContain(`labels.txt: sha256 8fecba72`);
    expect(message).toContain(`does not match manifest.json (${'0'.repeat(64)})`);
  });

  it('refuses labels.txt that disagrees with the manifest', async () => {
    const { dir, manifest, writeManifest } = copyTinyModel();
    manifest.labels = ['a', 'b', 'c', 'd', 'e'];
    writeManifest(manifest);
    expect((await failure(dir)).message).toContain('labels.txt');
  });

  it('refuses a manifest that is not JSON', async () => {
    const { dir } = copyTinyModel();
    writeFileSync(path.join(dir, 'manifest.json'), '{ nope');
    expect((await failure(dir)).message).toMatch(/manifest\.json: not valid JSON/);
  });
});

describe('parseManifest', () => {
  const base = () => copyTinyModel().manifest;

  it('lists every schema problem with its path', () => {
    const m = base();
    m.format = 'haltingvt-manifest/2';
    m.input.frames = 0;
    delete m.knobs.top_k;
    let message = '';
    try {
      parseManifest(JSON.stringify(m));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('format:');
    expect(message).toContain('input.frames:');
    expect(message).toContain('knobs.top_k:');
  });

  it('checks the cross-field rules of the contract', () => {
    const m = base();
    m.input.resize_short_side = 40;
    m.flops.classes = 7;
    m.graph.inputs = m.graph.inputs.filter((i: { name: string }) => i.name !== 'halt_threshold');
    m.files['../escape'] = { sha256: '0'.repeat(64), bytes: 1 };
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/resize_short_side: must be >= input.size/);
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/flops.classes: must equal the number of labels/);
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/must declare input "halt_threshold"/);
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/must be a path inside the model folder/);
  });

  it('refuses scale flags that could smuggle filters into ffmpeg', () => {
    const m = base();
    m.input.scale_flags = 'bilinear,drawtext=text=x';
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/scale_flags/);
  });

  it('takes the merge knobs only with their graph inputs, modes the graph knows and the heads ToMe needs', () => {
    expect(parseManifest(JSON.stringify(base())).knobs.merge_mode).toEqual({ default: 'none', choices: ['none', 'tome', 'tldr'] });
    const { merge_mode: _m, merge_ratio: _r, ...older } = base().knobs;
    expect(parseManifest(JSON.stringify({ ...base(), knobs: older })).knobs.merge_mode).toBeUndefined();
    const m = base();
    m.graph.inputs = m.graph.inputs.filter((i: { name: string }) => i.name !== 'merge_ratio');
    delete m.flops.heads;
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/knob merge_ratio needs a scalar graph input "merge_ratio"/);
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/flops.heads: needed to count ToMe merges/);
    const odd = base();
    odd.knobs.merge_mode.choices = ['none', 'evit'];
    expect(() => parseManifest(JSON.stringify(odd))).toThrow(/knobs.merge_mode/);
    const half = base();
    delete half.knobs.merge_ratio;
    expect(() => parseManifest(JSON.stringify(half))).toThrow(/merge_mode and merge_ratio come together/);
  });

  it('refuses knob defaults outside their own range', () => {
    const m = base();
    m.knobs.keep_ratio.default = 2;
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/knobs.keep_ratio: needs min <= default <= max/);
  });
});
