import { describe, expect, it } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { createWorkQueue, type QueueStats } from '../../src/service/queue.js';

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('createWorkQueue', () => {
  it('runs up to `concurrency` tasks, queues up to `size`, refuses the rest with QUEUE_FULL', async () => {
    const seen: QueueStats[] = [];
    const q = createWorkQueue({ concurrency: 1, size: 1, now: () => 0, onChange: (s) => seen.push(s) });
    const a = deferred<string>();
    const ran: string[] = [];
    const first = q.run(async () => (ran.push('a'), a.promise));
    const second = q.run(async () => (ran.push('b'), 'b'));
    expect(q.stats()).toEqual({ queued: 1, running: 1, admitted: 0 });
    const third = q.run(async () => 'c');
    await expect(third).rejects.toSatisfy((e) => isEngineError(e, 'QUEUE_FULL'));
    expect(ran).toEqual(['a']);
    a.resolve('a');
    expect((await first).value).toBe('a');
    expect((await second).value).toBe('b');
    expect(ran).toEqual(['a', 'b']);
    expect(q.stats()).toEqual({ queued: 0, running: 0, admitted: 0 });
    expect(seen.at(-1)).toEqual({ queued: 0, running: 0, admitted: 0 });
  });

  it('drops a waiting task whose signal aborts; it never runs', async () => {
    const q = createWorkQueue({ concurrency: 1, size: 4, now: () => 0 });
    const a = deferred();
    const first = q.run(() => a.promise);
    const controller = new AbortController();
    let ran = false;
    const waiting = q.run(async () => {
      ran = true;
    }, controller.signal);
    expect(q.stats().queued).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toSatisfy((e) => isEngineError(e, 'ABORTED'));
    expect(q.stats().queued).toBe(0);
    a.resolve();
    await first;
    expect(ran).toBe(false);
    await expect(q.run(async () => 1, controller.signal)).rejects.toSatisfy((e) => isEngineError(e, 'ABORTED'));
  });

  it('measures the wait with the injected clock and frees the slot when a task fails', async () => {
    let now = 1000;
    const q = createWorkQueue({ concurrency: 1, size: 1, now: () => now });
    const a = deferred();
    const first = q.run(() => a.promise.then(() => Promise.reject(new Error('task failed'))));
    const second = q.run(async () => 'ok');
    now = 3500;
    a.resolve();
    await expect(first).rejects.toThrow('task failed');
    expect(await second).toEqual({ value: 'ok', waitedS: 2.5 });
  });

  it('admits at most size + concurrency requests before their uploads; a place is given back once', () => {
    const q = createWorkQueue({ concurrency: 2, size: 1, now: () => 0 });
    const places = [q.admit(), q.admit(), q.admit()];
    expect(() => q.admit()).toThrow(expect.objectContaining({ code: 'QUEUE_FULL' }));
    expect(q.stats().admitted).toBe(3);
    places[0]?.();
    places[0]?.();
    expect(q.stats().admitted).toBe(2);
    places.push(q.admit());
    expect(() => q.admit()).toThrow(expect.objectContaining({ code: 'QUEUE_FULL' }));
  });

  it('idle() resolves once nothing runs or waits', async () => {
    const q = createWorkQueue({ concurrency: 2, size: 2, now: () => 0 });
    await q.idle();
    const a = deferred();
    const running = q.run(() => a.promise);
    let idle = false;
    const done = q.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    a.resolve();
    await running;
    await done;
    expect(idle).toBe(true);
  });
});

describe('createWorkQueue: a task that gives its slot back early', () => {
  it('lets the next task start while it still runs, and counts the slot once', async () => {
    const q = createWorkQueue({ concurrency: 1, size: 4, now: () => 0 });
    const a = deferred();
    let giveBack!: () => void;
    const first = q.run((release) => {
      giveBack = release;
      return a.promise;
    });
    let secondRan = false;
    const second = q.run(async () => {
      secondRan = true;
    });
    expect(q.stats()).toEqual({ queued: 1, running: 1, admitted: 0 });
    giveBack();
    giveBack(); // idempotent: the second call frees nothing more
    await second;
    expect(secondRan).toBe(true);
    expect(q.stats()).toEqual({ queued: 0, running: 0, admitted: 0 });
    a.resolve();
    await first; // settling after the early release frees nothing more either
    expect(q.stats()).toEqual({ queued: 0, running: 0, admitted: 0 });
    const b = deferred();
    const third = q.run(() => b.promise);
    const fourth = q.run(async () => 'fourth');
    expect(q.stats()).toEqual({ queued: 1, running: 1, admitted: 0 });
    b.resolve();
    await third;
    expect((await fourth).value).toBe('fourth');
  });
});
