/**
 * Stage 2: which frames to decode. Segment-centre sampling (docs/contracts.md): frame i of
 * `frames` is floor((i + 0.5) * n / frames), the centre of `frames` equal segments of the n decoded
 * frames; indices repeat when n < frames. Golden cases: models/golden/sampling.json.
 */
import { EngineError } from '../errors.js';

export function segmentCentreIndices(n: number, frames: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new EngineError('VIDEO_UNDECODABLE', `cannot sample from ${n} frames`, { frames: n });
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`frames must be a positive integer, got ${frames}`);
  const indices = new Array<number>(frames);
  for (let i = 0; i < frames; i++) {
    // Integer form of floor((i + 0.5) * n / frames): exact for any n that fits a double.
    indices[i] = Math.floor(((2 * i + 1) * n) / (2 * frames));
  }
  return indices;
}

/**
 * Frames to decode once each (sorted, distinct) and, for each of the `frames` output slots, which
 * decoded frame fills it. When n < frames several slots share one decoded frame.
 */
export interface FramePlan {
  indices: number[];
  unique: number[];
  slotToUnique: number[];
}

export function planFrames(n: number, frames: number): FramePlan {
  const indices = segmentCentreIndices(n, frames);
  const unique = [...new Set(indices)]; // already ascending: the indices never decrease
  const position = new Map(unique.map((index, k) => [index, k]));
  return { indices, unique, slotToUnique: indices.map((index) => position.get(index) as number) };
}
