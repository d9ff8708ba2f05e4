/**
 * Where ffmpeg and ffprobe come from, each resolved on its own, first match wins:
 *   1. an explicit path from config,
 *   2. the first executable of that name on PATH (the system build: newest codecs, distro fixes),
 *   3. the static binary shipped inside the optional npm packages @ffmpeg-installer/linux-x64 and
 *      @ffprobe-installer/linux-x64 (the binary is in the tarball; nothing is downloaded at install).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { EngineError } from '../errors.js';
import type { FfmpegTool } from './ffmpeg-runner.js';

export type FfmpegBinaries = Record<FfmpegTool, string>;
export type BinarySource = 'config' | 'path' | 'npm';

export interface ResolvedBinaries extends FfmpegBinaries {
  sources: Record<FfmpegTool, BinarySource>;
}

export interface ResolveOptions {
  override?: Partial<FfmpegBinaries> | undefined;
  /** Defaults to process.env.PATH. */
  pathEnv?: string | undefined;
  /** Directory of the npm package that ships `tool`, or undefined when not installed. */
  packageDir?: ((tool: FfmpegTool) => string | undefined) | undefined;
  isExecutable?: ((file: string) => boolean) | undefined;
}

const PACKAGES: Record<FfmpegTool, string> = {
  ffmpeg: '@ffmpeg-installer/linux-x64',
  ffprobe: '@ffprobe-installer/linux-x64',
};

export function resolveFfmpegBinaries(options: ResolveOptions = {}): ResolvedBinaries {
  const isExec = options.isExecutable ?? isExecutableFile;
  const pathEnv = options.pathEnv ?? process.env.PATH ?? '';
  const packageDir = options.packageDir ?? npmPackageDir;
  const found = (tool: FfmpegTool): [string, BinarySource] => {
    const configured = options.override?.[tool];
    if (configured) {
      if (!isExec(configured)) {
        throw new EngineError('FFMPEG_NOT_FOUND', `configured ${tool} "${configured}" is not an executable file`, { tool, file: configured });
      }
      return [configured, 'config'];
    }
    for (const dir of pathEnv.split(path.delimiter)) {
      if (!dir) continue;
      const candidate = path.join(dir, tool);
      if (isExec(candidate)) return [candidate, 'path'];
    }
    const dir = packageDir(tool);
    if (dir) {
      const candidate = path.join(dir, tool);
      if (isExec(candidate)) return [candidate, 'npm'];
    }
    throw new EngineError(
      'FFMPEG_NOT_FOUND',
      `${tool} not found: not configured, not on PATH, and the npm package ${PACKAGES[tool]} is not installed`,
      { tool },
    );
  };
  const [ffmpeg, ffmpegSource] = found('ffmpeg');
  const [ffprobe, ffprobeSource] = found('ffprobe');
  return { ffmpeg, ffprobe, sources: { ffmpeg: ffmpegSource, ffprobe: ffprobeSource } };
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function npmPackageDir(tool: FfmpegTool): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return path.dirname(require.resolve(`${PACKAGES[tool]}/package.json`));
  } catch {
    return undefined;
  }
}
