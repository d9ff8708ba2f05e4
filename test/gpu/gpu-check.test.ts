/**
 * The CPU half of the GPU check (docs/gpu.md), so that the check the first GPU session runs cannot
 * rot: the bundle staged without its runtime (scripts/gpu-bundle.sh --no-runtime: the esbuild'ed
 * check, the default model, the golden inputs) and scripts/gpu-check.sh --cpu on it, which checks
 * Node against the golden answers and PyTorch against Node, clip by clip and patch by patch.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

const run = promisify(execFile);
let dir: string;
let stage: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'haltingvt-gpu-check-test-'));
  stage = path.join(dir, 'bundle');
  await run(path.join(ROOT, 'scripts', 'gpu-bundle.sh'), ['--stage', stage, '--no-runtime'], { cwd: ROOT });
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('scripts/gpu-check.sh --cpu (the CPU standing in for WebGPU and CUDA)', () => {
  it('passes parity against the golden answers and the PyTorch reference, and writes the report', async () => {
    const out = path.join(dir, 'out');
    await run(path.join(ROOT, 'scripts', 'gpu-check.sh'), ['--cpu', '--bundle', stage, '--out', out], { cwd: ROOT });
    const report = await readFile(path.join(out, 'gpu-results.md'), 'utf8');
    expect(report).toMatch(/\| motion-tiny \| Node, cpu \| golden \(default_answers\.json, 6 clips\) \| [0-9.e+-]+ \| 0 \| 0 \| ok \|/);
    for (const setting of ['dense', 'halting']) {
      expect(report).toMatch(new RegExp(`\\| motion-tiny \\| PyTorch reference, cpu \\| node cpu \\(${setting}\\) \\| [0-9.e+-]+ \\| 0 \\| 0 \\| ok \\|`));
    }
    expect(report).toMatch(/\| motion-tiny \| CPU \| \d+ \|/); // the placement read from ORT's profile
    expect(report).toMatch(/\| motion-tiny \| 1 \| ORT cpu \| [\d.]+ \| [\d.]+ \|/);
    expect(report).toMatch(/\| motion-tiny \| 1 \| PyTorch compact, cpu \|/);
    expect(report).toContain('Verdict: every parity check passed.');
  }, 120_000);

  it('fails when the answers differ from the golden ones', async () => {
    const golden = JSON.parse(await readFile(path.join(stage, 'golden', 'default_answers.json'), 'utf8')) as { logits: number[][]; active_tokens: number[][] };
    (golden.logits[2] as number[])[0] = (golden.logits[2]?.[0] ?? 0) + 0.5;
    (golden.active_tokens[4] as number[])[1] = (golden.active_tokens[4]?.[1] ?? 0) + 1;
    const tampered = path.join(dir, 'tampered.json');
    await writeFile(tampered, JSON.stringify(golden));
    const args = [path.join(stage, 'check.mjs'), '--model', path.join(ROOT, 'models', 'default'), '--inputs', path.join(stage, 'inputs', 'default')];
    const failed = await run(process.execPath, [...args, '--provider', 'cpu', '--golden', tampered, '--batches', '1', '--reps', '1', '--warmup', '0', '--out', path.join(dir, 'tampered-out.json')]).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/parity vs golden .*token rows differing 1, stop patches differing 0 +FAILED/);
    const written = JSON.parse(await readFile(path.join(dir, 'tampered-out.json'), 'utf8')) as { ok: boolean; parity: Array<{ logits_rel: number }> };
    expect(written.ok).toBe(false);
    expect(written.parity[0]?.logits_rel).toBeGreaterThan(1e-3);
  }, 60_000);
});
