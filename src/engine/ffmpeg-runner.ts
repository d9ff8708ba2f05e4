/**
 * Our own thin ffmpeg adapter (fluent-ffmpeg is archived; see docs/decisions.md): spawn a binary
 * with an argument array, never a shell, under a wall-clock timeout and an optional AbortSignal.
 * Whatever ends the run early (timeout, abort, a consumer error) kills the process with SIGKILL,
 * and the promise settles only after the process has exited, so nothing outlives a request.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { EngineError } from '../errors.js';
import type { FfmpegBinaries } from './ffmpeg-binaries.js';

export type FfmpegTool = 'ffmpeg' | 'ffprobe';

export interface RunOptions {
  /** Wall-clock limit; past it the process is killed and the run fails with DECODE_TIMEOUT. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /**
   * Streaming consumer for stdout. When given, stdout is not collected. If it throws, the process
   * is killed and the run fails with that error.
   */
  onStdout?: ((chunk: Buffer) => void) | undefined;
  /** Limit for collected stdout (ffprobe JSON); past it the process is killed. */
  maxStdoutBytes?: number | undefined;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Collected stdout; empty when `onStdout` consumed it. */
  stdout: Buffer;
  /** The last STDERR_KEEP bytes of stderr, for error messages. */
  stderr: string;
  pid: number | undefined;
}

/** The injectable interface the decode stages use. Tests pass fakes or wrap the real one. */
export interface FfmpegRunner {
  run(tool: FfmpegTool, args: readonly string[], options: RunOptions): Promise<RunResult>;
}

const STDERR_KEEP = 8192;
const DEFAULT_MAX_STDOUT = 16 * 1024 * 1024;

export function createFfmpegRunner(binaries: FfmpegBinaries): FfmpegRunner {
  return {
    run(tool, args, options) {
      return runProcess(binaries[tool], args, options);
    },
  };
}

export function runProcess(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const { timeoutMs, signal, onStdout } = options;
  const maxStdout = options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT;
  if (signal?.aborted) return Promise.reject(abortError(signal));

  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    const stdoutChunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let failure: unknown;

    const fail = (err: unknown): void => {
      if (failure !== undefined) return;
      failure = err;
      child.kill('SIGKILL');
      // Close our ends too: a grandchild holding the pipes open must not delay 'close'.
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const timer = setTimeout(
      () => fail(new EngineError('DECODE_TIMEOUT', `${tool(file)} did not finish within ${timeoutMs} ms`, { timeoutMs })),
      timeoutMs,
    );
    const onAbort = (): void => fail(abortError(signal));
    signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      if (onStdout) {
        try {
          onStdout(chunk);
        } catch (err) {
          fail(err);
        }
        return;
      }
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        fail(new EngineError('DECODE_FAILED', `${tool(file)} wrote more than ${maxStdout} bytes to stdout`));
        return;
      }
      stdoutChunks.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_KEEP);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      fail(
        err.code === 'ENOENT' || err.code === 'EACCES'
          ? new EngineError('FFMPEG_NOT_FOUND', `cannot run ${file}: ${err.code}`, { file }, { cause: err })
          : err,
      );
    });
    // 'close' comes after the process exited and its pipes drained (and also after a spawn error).
    child.on('close', (exitCode, exitSignal) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (failure !== undefined) {
        reject(failure);
        return;
      }
      resolve({ exitCode, signal: exitSignal, stdout: Buffer.concat(stdoutChunks), stderr, pid: child.pid });
    });
  });
}

function abortError(signal: AbortSignal | undefined): EngineError {
  const reason: unknown = signal?.reason;
  if (reason instanceof EngineError) return reason;
  return new EngineError('ABORTED', 'the request was cancelled', undefined, { cause: reason });
}

function tool(file: string): string {
  return file.split('/').pop() ?? file;
}

/** The last meaningful stderr lines, for error messages. */
export function stderrTail(stderr: string, lines = 3): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join(' | ');
}

/**
 * How a local file is named on an ffmpeg/ffprobe command line: `file:` plus the absolute path, so a
 * name like "a:b.mp4" or "-x.mp4" is never read as a protocol or an option.
 */
export function inputUrl(file: string): string {
  return `file:${path.resolve(file)}`;
}
