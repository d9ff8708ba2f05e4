import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSupervisor } from '../../src/engine/workers/supervisor.js';

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

function supervised(maxDownMs: number) {
  const starts: number[] = [];
  const gaveUp: number[] = [];
  const s = createSupervisor({
    start: () => starts.push(Date.now()),
    backoff: { initialMs: 100, maxMs: 350 },
    maxDownMs,
    onGiveUp: (ms) => gaveUp.push(ms),
    now: () => Date.now(),
  });
  return { s, starts, gaveUp };
}

describe('createSupervisor', () => {
  it('replaces a ready worker at once, backs off (doubling, capped) after failed starts, resets when one is ready', () => {
    const { s, starts } = supervised(0);
    s.launch();
    expect(s.state()).toBe('starting');
    s.ready();
    expect(s.stats()).toMatchObject({ state: 'up', alive: 1 });
    expect(s.exited()).toBe(0);
    expect(s.stats()).toMatchObject({ state: 'restarting', restarts: 1, alive: 0 });
    expect(starts).toHaveLength(2);
    expect(s.accepting()).toBe(true);
    expect([s.exited(), s.state(), s.accepting()]).toEqual([100, 'down', false]);
    vi.advanceTimersByTime(99);
    expect(starts).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(starts).toHaveLength(3);
    expect(s.exited()).toBe(200);
    vi.advanceTimersByTime(200);
    expect(s.exited()).toBe(350);
    vi.advanceTimersByTime(350);
    expect(starts).toHaveLength(5);
    s.ready();
    expect(s.stats()).toMatchObject({ state: 'up', restarts: 1, failedStarts: 3, failuresInRow: 0, downSince: undefined });
    s.exited();
    expect(s.exited()).toBe(100); // the backoff starts over
  });

  it('a worker replaced on purpose counts no restart, and a successor that dies before it is ready is a failed start with backoff', () => {
    const { s, starts } = supervised(0);
    s.launch();
    s.ready();
    s.replacing(); // the owner starts the successor itself
    expect(s.stats()).toMatchObject({ state: 'restarting', restarts: 0, failedStarts: 0 });
    expect(s.accepting()).toBe(true);
    expect(s.exited()).toBe(100);
    expect(s.stats()).toMatchObject({ state: 'down', restarts: 0, failedStarts: 1 });
    vi.advanceTimersByTime(100);
    expect(starts).toHaveLength(2);
    s.ready();
    expect(s.stats()).toMatchObject({ state: 'up', restarts: 0, failuresInRow: 0 });
  });

  it('gives up once after maxDownMs without a ready worker, and starts nothing more', () => {
    const { s, starts, gaveUp } = supervised(1000);
    s.launch();
    for (let i = 0; i < 4; i += 1) vi.advanceTimersByTime(Math.max(0, s.exited()));
    vi.advanceTimersByTime(1000);
    expect(gaveUp).toEqual([1000]);
    expect(s.state()).toBe('stopped');
    const count = starts.length;
    expect(s.exited()).toBe(-1);
    vi.advanceTimersByTime(10_000);
    expect(starts).toHaveLength(count);
    expect(gaveUp).toHaveLength(1);
  });

  it('a ready worker stops the down clock', () => {
    const { s, gaveUp } = supervised(1000);
    s.launch();
    s.exited();
    vi.advanceTimersByTime(900);
    s.ready();
    vi.advanceTimersByTime(5000);
    expect(gaveUp).toEqual([]);
    s.stop();
  });

  it('counts the down time from the first failure: a first start slower than maxDownMs is not given up on', () => {
    const { s, gaveUp } = supervised(1000);
    s.launch();
    vi.advanceTimersByTime(5000); // still loading
    expect(gaveUp).toEqual([]);
    s.ready();
    s.exited(); // the ready worker dies: the clock starts now, its replacement starts at once
    vi.advanceTimersByTime(999);
    expect(gaveUp).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(gaveUp).toEqual([1000]);
  });
});
