/**
 * The reference the decoder is held to: what the ffmpeg command line (Debian's, as the Python
 * sampler runs it) gives for the same frames and the same filter chain, autorotation included.
 */
import { execFileSync } from 'node:child_process';
import { filterChain, type CropGeometry } from '../../src/engine/preprocess.js';

/** `indices`: sorted, distinct. Returns the frames back to back, rgb24. */
export function ffmpegSelect(file: string, indices: readonly number[], geometry: CropGeometry, scaleFlags = 'bilinear'): Buffer {
  const select = `select='${indices.map((i) => `eq(n\\,${i})`).join('+')}'`;
  return execFileSync(
    'ffmpeg',
    ['-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0', '-vf', `${select},${filterChain(geometry, scaleFlags)}`, '-vsync', 'passthrough', '-frames:v', String(indices.length), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] },
  );
}
