import { describe, expect, it } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { resolveFfmpegBinaries } from '../../src/engine/ffmpeg-binaries.js';

const executables = (...files: string[]) => (file: string) => files.includes(file);

describe('resolveFfmpegBinaries', () => {
  it('prefers the configured path over PATH and the npm package', () => {
    const found = resolveFfmpegBinaries({
      override: { ffmpeg: '/opt/ff/ffmpeg' },
      pathEnv: '/usr/bin',
      packageDir: (tool) => `/pkg/${tool}`,
      isExecutable: executables('/opt/ff/ffmpeg', '/usr/bin/ffmpeg', '/usr/bin/ffprobe', '/pkg/ffmpeg/ffmpeg'),
    });
    expect(found).toMatchObject({ ffmpeg: '/opt/ff/ffmpeg', ffprobe: '/usr/bin/ffprobe', sources: { ffmpeg: 'config', ffprobe: 'path' } });
  });

  it('takes the first PATH entry that has the tool', () => {
    const found = resolveFfmpegBinaries({
      pathEnv: '/a:/b:/c',
      packageDir: () => undefined,
      isExecutable: executables('/b/ffmpeg', '/c/ffmpeg', '/c/ffprobe'),
    });
    expect(found).toMatchObject({ ffmpeg: '/b/ffmpeg', ffprobe: '/c/ffprobe' });
  });

  it('falls back to the binary inside the npm package', () => {
    const found = resolveFfmpegBinaries({
      pathEnv: '/usr/bin',
      packageDir: (tool) => `/nm/${tool}-installer`,
      isExecutable: executables('/nm/ffmpeg-installer/ffmpeg', '/nm/ffprobe-installer/ffprobe'),
    });
    expect(found.sources).toEqual({ ffmpeg: 'npm', ffprobe: 'npm' });
    expect(found.ffprobe).toBe('/nm/ffprobe-installer/ffprobe');
  });

  it('refuses a configured path that is not executable instead of silently using another', () => {
    const error = (() => {
      try {
        return resolveFfmpegBinaries({ override: { ffprobe: '/nope' }, pathEnv: '/usr/bin', isExecutable: executables('/usr/bin/ffmpeg', '/usr/bin/ffprobe') });
      } catch (e) {
        return e;
      }
    })();
    expect(isEngineError(error, 'FFMPEG_NOT_FOUND')).toBe(true);
    expect((error as Error).message).toContain('/nope');
  });

  it('says where it looked when nothing is found', () => {
    expect(() => resolveFfmpegBinaries({ pathEnv: '/x', packageDir: () => undefined, isExecutable: () => false })).toThrow(
      /ffmpeg not found: not configured, not on PATH, and the npm package @ffmpeg-installer\/linux-x64/,
    );
  });

  it('finds real binaries on this machine, and the npm package ones without PATH', () => {
    expect(resolveFfmpegBinaries().ffmpeg).toMatch(/ffmpeg$/);
    const npm = resolveFfmpegBinaries({ pathEnv: '' });
    expect(npm.sources).toEqual({ ffmpeg: 'npm', ffprobe: 'npm' });
  });
});
