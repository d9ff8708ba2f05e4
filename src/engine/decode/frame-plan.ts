/**
 * Which frames to decode, and where to seek, as pure functions of the frame count and the keyframe
 * positions that the one demux pass found (docs/decisions.md, "Decoding").
 *
 * Frame indices are presentation order: frame n is the n-th frame the decoder outputs from the
 * start, which is what ffmpeg's `select='eq(n,i)'` counts and what the Python sampler uses.
 */

/** Decode forward until `target` comes out, after seeking to keyframe `seekTo` when it is set. */
export interface DecodeStep {
  target: number;
  seekTo: number | undefined;
}

/**
 * Walks the targets in order. Seeking costs a decoder flush and restarts at a keyframe, so it pays
 * only when a keyframe lies after the next frame the decoder would give anyway: then every frame
 * between them is skipped. Otherwise decoding forward is never more work than seeking back.
 * `targets` ascending and distinct, `keyframes` ascending, both presentation indices.
 */
export function planDecode(targets: readonly number[], keyframes: readonly number[]): DecodeStep[] {
  let next = 0; // the frame the decoder gives next without a seek
  let k = -1; // keyframes[k] is the last keyframe at or before the current target
  return targets.map((target) => {
    while (k + 1 < keyframes.length && (keyframes[k + 1] as number) <= target) k++;
    const key = k >= 0 ? (keyframes[k] as number) : undefined;
    const seekTo = key !== undefined && key > next ? key : undefined;
    next = target + 1;
    return { target, seekTo };
  });
}

/** How many frames a plan decodes: each step runs from its seek point (or where the last stopped). */
export function framesDecoded(steps: readonly DecodeStep[]): number {
  let next = 0;
  let total = 0;
  for (const { target, seekTo } of steps) {
    total += target + 1 - (seekTo ?? next);
    next = target + 1;
  }
  return total;
}

/**
 * n for sampling (docs/contracts.md): the container's frame count when it states one, else the
 * packets the demux pass counted. A container that promises more frames than it holds packets for
 * (a truncated file whose index survived) is not believed: then the packet count is n.
 */
export function frameCountOf(container: number | undefined, packets: number): { frameCount: number; source: 'container' | 'counted' } {
  if (container !== undefined && container > 0 && container <= packets) return { frameCount: container, source: 'container' };
  return { frameCount: packets, source: 'counted' };
}
