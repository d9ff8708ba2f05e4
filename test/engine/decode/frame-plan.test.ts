import { describe, expect, it } from 'vitest';
import { frameCountOf, framesDecoded, planDecode } from '../../../src/engine/decode/frame-plan.js';
import { segmentCentreIndices } from '../../../src/engine/sample.js';

/** Today's two strategies, for the bound: select decodes 0..last target; seek decodes each target from its keyframe. */
const selectCost = (targets: number[]): number => (targets.at(-1) as number) + 1;
const seekCost = (targets: number[], keyframes: number[]): number =>
  targets.reduce((sum, t) => sum + t + 1 - Math.max(...keyframes.filter((k) => k <= t)), 0);

describe('planDecode', () => {
  it('decodes forward from the start when the only keyframe is frame 0 (x264 default GOP on a short clip)', () => {
    const steps = planDecode([15, 46, 78, 109], [0]);
    expect(steps.map((s) => s.seekTo)).toEqual([undefined, undefined, undefined, undefined]);
    expect(framesDecoded(steps)).toBe(110);
  });

  it('seeks only where a keyframe lies between the last decoded frame and the target', () => {
    // GOP 25, 250 frames, the 8 segment centres.
    const targets = segmentCentreIndices(250, 8);
    const keyframes = Array.from({ length: 10 }, (_, i) => i * 25);
    const steps = planDecode(targets, keyframes);
    expect(targets).toEqual([15, 46, 78, 109, 140, 171, 203, 234]);
    expect(steps.map((s) => s.seekTo)).toEqual([undefined, 25, 75, 100, 125, 150, 200, 225]);
    expect(framesDecoded(steps)).toBe(16 + 22 + 4 + 10 + 16 + 22 + 4 + 10);
  });

  it('does not seek to a keyframe the decoder reaches next anyway', () => {
    expect(planDecode([10, 11], [0, 11])).toEqual([
      { target: 10, seekTo: undefined },
      { target: 11, seekTo: undefined },
    ]);
    expect(planDecode([9, 20], [0, 11])[1]).toEqual({ target: 20, seekTo: 11 });
  });

  it('skips to the first keyframe when the stream does not start with one, and never seeks without keyframes', () => {
    expect(planDecode([30], [12, 24])).toEqual([{ target: 30, seekTo: 24 }]);
    expect(planDecode([5, 40], [])).toEqual([
      { target: 5, seekTo: undefined },
      { target: 40, seekTo: undefined },
    ]);
  });

  it('never decodes more than the better of one select pass and one seek per frame', () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + random(5000);
      const gop = 1 + random(400);
      const keyframes = Array.from({ length: Math.ceil(n / gop) }, (_, i) => i * gop);
      const targets = [...new Set(segmentCentreIndices(n, 1 + random(16)))];
      const cost = framesDecoded(planDecode(targets, keyframes));
      expect(cost).toBeLessThanOrEqual(Math.min(selectCost(targets), seekCost(targets, keyframes)));
      expect(cost).toBeGreaterThanOrEqual(targets.length);
    }
  });
});

describe('frameCountOf', () => {
  it('takes the container count when the packets back it', () => {
    expect(frameCountOf(50, 50)).toEqual({ frameCount: 50, source: 'container' });
  });

  it('counts packets when the container says nothing', () => {
    expect(frameCountOf(undefined, 26)).toEqual({ frameCount: 26, source: 'counted' });
  });

  it('does not believe a container that promises more frames than it has packets (truncated, lying)', () => {
    expect(frameCountOf(80, 3)).toEqual({ frameCount: 3, source: 'counted' });
  });
});
