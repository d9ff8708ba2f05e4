import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { inputUrl, runProcess, stderrTail } from '../../src/engine/ffmpeg-runner.js';

const SLEEPY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sleepy-tool.sh');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidFile(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'hvt-runner-')), 'pid');
}

describe('runProcess', () => {
  it('collects stdout and stderr of a process that exits', async () => {
    const result = await runProcess('/bin/sh', ['-c', 'printf abc; printf err >&2; exit 3'], { timeoutMs: 5000 });
    expect(result.stdout.toString()).toBe('abc');
    expect(result.stderr).toBe('err');
    expect(result.exitCode).toBe(3);
  });

  it('passes arguments without a shell', async () => {
    const result = await runProcess('/bin/echo', ['$HOME; rm -rf /', '`id`'], { timeoutMs: 5000 });
    expect(result.stdout.toString()).toBe('$HOME; rm -rf / `id`\n');
  });

  it('kills the process on timeout and settles only after it has exited', async () => {
    const file = pidFile();
    const error = await runProcess(SLEEPY, [file], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(isEngineError(error, 'DECODE_TIMEOUT')).toBe(true);
    const pid = Number(readFileSync(file, 'utf8'));
    expect(alive(pid)).toBe(false);
  });

  it('kills the process when the signal aborts', async () => {
    const file = pidFile();
    const controller = new AbortController();
    const running = runProcess(SLEEPY, [file], { timeoutMs: 30_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    const error = await running.catch((e: unknown) => e);
    expect(isEngineError(error, 'ABORTED')).toBe(true);
    expect(alive(Number(readFileSync(file, 'utf8')))).toBe(false);
  });

  it('kills the process when the stdout consumer throws', async () => {
    const file = pidFile();
    const error = await runProcess(SLEEPY, [file], {
      timeoutMs: 30_000,
      onStdout: () => {
        throw new Error('consumer broke');
      },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('consumer broke');
    expect(alive(Number(readFileSync(file, 'utf8')))).toBe(false);
  });

  it('refuses an already aborted signal without spawning', async () => {
    const error = await runProcess('/bin/true', [], { timeoutMs: 1000, signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(isEngineError(error, 'ABORTED')).toBe(true);
  });

  it('reports a missing binary as FFMPEG_NOT_FOUND', async () => {
    const error = await runProcess('/nonexistent/ffmpeg', [], { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(isEngineError(error, 'FFMPEG_NOT_FOUND')).toBe(true);
  });

  it('stops a process that floods stdout past the limit', async () => {
    const error = await runProcess('/bin/sh', ['-c', 'yes'], { timeoutMs: 10_000, maxStdoutBytes: 1 << 16 }).catch((e: unknown) => e);
    expect(isEngineError(error, 'DECODE_FAILED')).toBe(true);
  });
});

describe('helpers', () => {
  it('names inputs as absolute file: URLs so they are never protocols or options', () => {
    expect(inputUrl('a:b.mp4')).toBe(`file:${path.resolve('a:b.mp4')}`);
    expect(inputUrl('-i.mp4').startsWith('file:/')).toBe(true);
  });

  it('keeps the last non-empty stderr lines', () => {
    expect(stderrTail('a\n\nb\nc\nd\n', 2)).toBe('c | d');
  });
});
