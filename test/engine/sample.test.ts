import { describe, expect, it } from 'vitest';
import { planFrames, segmentCentreIndices } from '../../src/engine/sample.js';
import { golden } from '../helpers/paths.js';

const { cases } = golden<{ cases: Array<{ n: number; frames: number; indices: number[] }> }>('sampling.json');

describe('segmentCentreIndices', () => {
  it('has golden cases to check', () => {
    expect(cases.length).toBeGreaterThan(5);
    expect(cases.some((c) => c.n < c.frames)).toBe(true);
  });

  it.each(cases.map((c) => [c.n, c.frames, c.indices] as const))('n=%i frames=%i matches Python', (n, frames, indices) => {
    expect(segmentCentreIndices(n, frames)).toEqual(indices);
  });

  it('refuses an empty video', () => {
    expect(() => segmentCentreIndices(0, 8)).toThrow(/cannot sample from 0 frames/);
  });
});

describe('planFrames', () => {
  it('decodes each repeated frame once and maps every slot to it', () => {
    const plan = planFrames(3, 8);
    expect(plan.indices).toEqual([0, 0, 0, 1, 1, 2, 2, 2]);
    expect(plan.unique).toEqual([0, 1, 2]);
    expect(plan.slotToUnique).toEqual([0, 0, 0, 1, 1, 2, 2, 2]);
  });

  it('is the identity when there are enough frames', () => {
    const plan = planFrames(100, 4);
    expect(plan.unique).toEqual(plan.indices);
    expect(plan.slotToUnique).toEqual([0, 1, 2, 3]);
  });
});
