import { describe, expect, it } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { createKnobValidator, type KnobInput, type Knobs } from '../../src/engine/knobs.js';
import type { Manifest } from '../../src/engine/model.js';

const manifest = {
  labels: ['a', 'b', 'c', 'd'],
  knobs: {
    keep_ratio: { default: 0.5, min: 0.05, max: 1 },
    halt_threshold: { default: 0.99, min: 0.5, max: 10 },
    top_k: { default: 5, min: 1, max: 10 },
  },
} as unknown as Manifest;
const validate = createKnobValidator(manifest);

function refusal(input: unknown): { message: string; details: Record<string, unknown> | undefined } {
  try {
    validate(input as KnobInput);
  } catch (err) {
    if (isEngineError(err, 'BAD_KNOB')) return { message: err.message, details: err.details };
    throw err;
  }
  throw new Error('accepted');
}

describe('knob validation', () => {
  it('fills defaults, capping top_k at the number of labels', () => {
    expect(validate({})).toEqual({ top_k: 4, keep_ratio: 0.5, halt_threshold: 0.99 });
    expect(validate(undefined as unknown as KnobInput)).toEqual({ top_k: 4, keep_ratio: 0.5, halt_threshold: 0.99 });
    expect(validate({ keep_ratio: undefined, top_k: 2 })).toEqual({ top_k: 2, keep_ratio: 0.5, halt_threshold: 0.99 });
  });

  it('accepts the range ends', () => {
    expect(validate({ keep_ratio: 0.05, halt_threshold: 10, top_k: 1 })).toEqual({ top_k: 1, keep_ratio: 0.05, halt_threshold: 10 });
  });

  it('names the knob, the value and the range', () => {
    expect(refusal({ keep_ratio: 1.5 }).message).toBe('keep_ratio=1.5 is out of range [0.05, 1]');
    expect(refusal({ halt_threshold: 0.1 }).message).toBe('halt_threshold=0.1 is out of range [0.5, 10]');
    expect(refusal({ top_k: 5 }).message).toBe('top_k=5 is out of range [1, 4]');
  });

  it('reports every bad knob at once', () => {
    const { message, details } = refusal({ keep_ratio: 0, top_k: 0 });
    expect(message).toContain('keep_ratio=0');
    expect(message).toContain('top_k=0');
    expect(details?.problems).toHaveLength(2);
  });

  it('refuses non-integers, non-numbers and unknown knobs', () => {
    expect(refusal({ top_k: 2.5 }).message).toContain('top_k=2.5 must be an integer');
    expect(refusal({ keep_ratio: 'half' }).message).toContain('keep_ratio must be a number, got "half"');
    expect(refusal({ keep_ratio: Number.NaN }).message).toContain('keep_ratio');
    expect(refusal({ keep: 0.5 }).message).toContain('unknown knob keep');
  });

  it('returns frozen Knobs, the only type the engine takes: plain objects do not type-check (tsc runs in make test)', () => {
    const knobs: Knobs = validate({ keep_ratio: 0.3 });
    expect(Object.isFrozen(knobs)).toBe(true);
    // @ts-expect-error an unchecked object is not Knobs
    const unchecked: Knobs = { top_k: 1, keep_ratio: 0.3, halt_threshold: 0.99 };
    expect(unchecked.top_k).toBe(1);
    expect(() => validate({ ...knobs, top_k: 9 })).toThrow(/top_k=9 is out of range/);
    const narrower = createKnobValidator({ ...manifest, knobs: { ...manifest.knobs, keep_ratio: { default: 0.5, min: 0.4, max: 1 } } } as Manifest);
    expect(() => narrower(knobs)).toThrow(/keep_ratio=0.3 is out of range \[0.4, 1\]/);
  });
});

describe('merge knobs', () => {
  const merging = createKnobValidator({
    ...manifest,
    knobs: {
      ...manifest.knobs,
      merge_mode: { default: 'none', choices: ['none', 'tome', 'tldr'] },
      merge_ratio: { default: 0, min: 0, max: 0.5 },
    },
  } as unknown as Manifest);

  function refused(input: unknown): string {
    try {
      merging(input as KnobInput);
    } catch (err) {
      if (isEngineError(err, 'BAD_KNOB')) return err.message;
      throw err;
    }
    throw new Error('accepted');
  }

  it('default to no merging, for models that offer it only', () => {
    expect(merging({})).toEqual({ top_k: 4, keep_ratio: 0.5, halt_threshold: 0.99, merge_mode: 'none', merge_ratio: 0 });
    expect(merging({ merge_mode: 'tldr', merge_ratio: 0.5 })).toMatchObject({ merge_mode: 'tldr', merge_ratio: 0.5 });
    expect(validate({})).not.toHaveProperty('merge_mode');
    expect(refusal({ merge_mode: 'tome' }).message).toBe('unknown knob merge_mode; known: top_k, keep_ratio, halt_threshold');
  });

  it('name the mode, the ratio and the range', () => {
    expect(refused({ merge_mode: 'fast' })).toBe('merge_mode="fast" is not one of none, tome, tldr');
    expect(refused({ merge_mode: 'tome', merge_ratio: 0.6 })).toBe('merge_ratio=0.6 is out of range [0, 0.5]');
    expect(refused({ merge_ratio: 0.3 })).toBe('merge_ratio=0.3 needs merge_mode tome or tldr');
  });

  it('list their choices and range when refusing', () => {
    try {
      merging({ merge_ratio: -1 });
    } catch (err) {
      if (!isEngineError(err, 'BAD_KNOB')) throw err;
      expect(err.details?.ranges).toMatchObject({ merge_mode: { choices: ['none', 'tome', 'tldr'] }, merge_ratio: { min: 0, max: 0.5 } });
      return;
    }
    throw new Error('accepted');
  });
});
