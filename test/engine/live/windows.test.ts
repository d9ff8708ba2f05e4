import { describe, expect, it } from 'vitest';
import { createWindowSampler, type SampledWindow, type WindowSpec } from '../../../src/engine/live/windows.js';
import { segmentCentreIndices } from '../../../src/engine/sample.js';
import { golden } from '../../helpers/paths.js';

const { cases } = golden<{ cases: Array<{ n: number; frames: number; indices: number[] }> }>('sampling.json');

/** Settles `pts` in order and finishes; every window and each frame's fate. */
function run(spec: WindowSpec, pts: readonly bigint[]): { windows: SampledWindow[]; taken: Map<bigint, boolean> } {
  const sampler = createWindowSampler(spec);
  const windows: SampledWindow[] = [];
  const taken = new Map<bigint, boolean>();
  const keep = (s: ReturnType<typeof sampler.finish>): void => {
    if (s.decided) taken.set(s.decided.pts, s.decided.taken);
    windows.push(...s.completed);
  };
  for (const p of pts) {
    const settled = sampler.settle(p);
    if (settled === false) throw new Error(`refused ${p}`);
    keep(settled);
  }
  keep(sampler.finish());
  return { windows, taken };
}

const frames = (n: number, first = 0n, step = 1n): bigint[] => Array.from({ length: n }, (_, j) => first + BigInt(j) * step);

describe('windows over a stream', () => {
  it.each(cases.map((c) => [c.n, c.frames, c.indices] as const))('one window of n=%i frames at a constant rate, frames=%i: the file rule (Python golden)', (n, slots, indices) => {
    // n frames in one second, one window of one second: exactly the file of those n frames.
    const { windows } = run({ windowMs: 1000, strideMs: 1000, frames: slots, timeBase: { num: 1, den: n } }, frames(n));
    expect(windows).toHaveLength(1);
    expect(windows[0]?.slots.map(Number)).toEqual(indices);
    expect(windows[0]?.frameCount).toBe(n);
  });

  it('each window of a 25 fps MPEG-TS clock samples what its seconds cut out as a file would', () => {
    // 90 kHz ticks, 3600 per frame, starting mid-clock as a joined broadcast does.
    const first = 1_234_567n;
    const { windows } = run({ windowMs: 4000, strideMs: 2000, frames: 8, timeBase: { num: 1, den: 90_000 } }, frames(250, first, 3600n));
    // 10 s: windows start at 0, 2, 4, 6 s (the one at 8 s would end past the stream).
    expect(windows.map((w) => [w.seq, w.startS, w.endS, w.frameCount])).toEqual([
      [0, 0, 4, 100],
      [1, 2, 6, 100],
      [2, 4, 8, 100],
      [3, 6, 10, 100],
    ]);
    for (const w of windows) {
      const firstFrame = Math.round(w.startS * 25);
      const expected = segmentCentreIndices(100, 8).map((i) => first + BigInt(firstFrame + i) * 3600n);
      expect(w.slots).toEqual(expected);
    }
  });

  it('marks taken exactly the frames some slot samples, so the rest may go undecoded', () => {
    const { windows, taken } = run({ windowMs: 4000, strideMs: 2000, frames: 8, timeBase: { num: 1, den: 25 } }, frames(200));
    expect(windows.map((w) => w.startS)).toEqual([0, 2, 4]);
    const used = new Set(windows.flatMap((w) => w.slots));
    expect(taken.size).toBe(200);
    // Before 6 s exactly; after it, the window that the stream's end cut short took its frames too.
    for (const [pts, isTaken] of taken) if (pts < 150n) expect(isTaken).toBe(used.has(pts));
    for (const pts of used) expect(taken.get(pts)).toBe(true);
    expect([...taken.values()].filter(Boolean).length).toBeLessThan(200 / 4);
  });

  it('leaves the frames between windows untaken when the stride is longer than the window', () => {
    const { windows, taken } = run({ windowMs: 1000, strideMs: 3000, frames: 8, timeBase: { num: 1, den: 25 } }, frames(300));
    expect(windows.map((w) => w.startS)).toEqual([0, 3, 6, 9]);
    for (let j = 25; j < 75; j++) expect(taken.get(BigInt(j))).toBe(false);
  });

  it('follows presentation times, not counts: a variable frame rate samples by time', () => {
    // 10 frames in the first half second, then 2 frames in the second half.
    const pts = [...frames(10, 0n, 50n), 500n, 900n, 1000n]; // ms clock
    const { windows } = run({ windowMs: 1000, strideMs: 1000, frames: 4, timeBase: { num: 1, den: 1000 } }, pts);
    // Centres at 125, 375, 625, 875 ms: the last frame at or before each.
    expect(windows[0]?.slots).toEqual([100n, 350n, 500n, 500n]);
    expect(windows[0]?.frameCount).toBe(12);
  });

  it('gives a slot whose centre precedes the first frame of its window that first frame', () => {
    // Nothing in the first 400 ms of the second window (a gap in the stream).
    const pts = [...frames(10, 0n, 100n), 1400n, 1600n, 1800n, 2000n];
    const { windows } = run({ windowMs: 1000, strideMs: 1000, frames: 4, timeBase: { num: 1, den: 1000 } }, pts);
    expect(windows[1]?.slots).toEqual([1400n, 1400n, 1600n, 1800n]);
  });

  it('skips a window that held no frame at all', () => {
    const pts = [0n, 500n, 3000n, 3500n, 4000n];
    const { windows } = run({ windowMs: 1000, strideMs: 1000, frames: 2, timeBase: { num: 1, den: 1000 } }, pts);
    expect(windows.map((w) => w.seq)).toEqual([0, 3]);
  });

  it('answers a stream shorter than one window with its first window, marked partial', () => {
    const { windows } = run({ windowMs: 4000, strideMs: 2000, frames: 8, timeBase: { num: 1, den: 25 } }, frames(30));
    expect(windows).toHaveLength(1);
    expect(windows[0]).toMatchObject({ seq: 0, partial: true, frameCount: 30 });
    // Slots whose centre lies past the last frame take the last frame.
    expect(windows[0]?.slots.map(Number)).toEqual([6, 18, 29, 29, 29, 29, 29, 29]);
  });

  it('refuses a frame that does not come after the last one and goes on', () => {
    const sampler = createWindowSampler({ windowMs: 1000, strideMs: 1000, frames: 2, timeBase: { num: 1, den: 1000 } });
    expect(sampler.settle(100n)).not.toBe(false);
    expect(sampler.settle(100n)).toBe(false);
    expect(sampler.settle(50n)).toBe(false);
    expect(sampler.settle(600n)).toMatchObject({ decided: { pts: 100n, taken: true } });
  });

  it('refuses a window or stride that is not whole milliseconds', () => {
    expect(() => createWindowSampler({ windowMs: 0, strideMs: 1, frames: 8, timeBase: { num: 1, den: 25 } })).toThrow(/whole positive milliseconds/);
    expect(() => createWindowSampler({ windowMs: 1000, strideMs: 0.5, frames: 8, timeBase: { num: 1, den: 25 } })).toThrow(/whole positive/);
  });
});
