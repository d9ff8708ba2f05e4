import { resolveFfmpegBinaries } from '../../src/engine/ffmpeg-binaries.js';
import { createFfmpegRunner, type FfmpegRunner, type FfmpegTool } from '../../src/engine/ffmpeg-runner.js';

/** The real runner on the binaries this machine resolves. */
export function realRunner(): FfmpegRunner {
  return createFfmpegRunner(resolveFfmpegBinaries());
}

/** Wraps a runner and records every call, so tests can assert which commands ran. */
export function recordingRunner(inner: FfmpegRunner): FfmpegRunner & { calls: Array<{ tool: FfmpegTool; args: readonly string[] }> } {
  const calls: Array<{ tool: FfmpegTool; args: readonly string[] }> = [];
  return {
    calls,
    run(tool, args, options) {
      calls.push({ tool, args });
      return inner.run(tool, args, options);
    },
  };
}
