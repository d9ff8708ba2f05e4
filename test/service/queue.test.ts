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
    expect(q.stats()).toEqual({ queued: 1, running: 1, inferring: 0, admitted: 0 });
    const third = q.run(async () => 'c');
    await expect(third).rejects.toSatisfy((e) => isEngineError(e, 'QUEUE_FULL'));
    expect(ran).toEqual(['a']);
    a.resolve('a');
    expect((await first).value).toBe('a');
    expect((await second).value).toBe('b');
    expect(ran).toEqual(['a', 'b']);
    expect(q.stats()).toEqual({ queued: 0, running: 0, inferring: 0, admitted: 0 });
    expect(seen.at(-1)).toEqual({ queued: 0, running: 0, inferring: 0, admitted: 0 });
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
  it('lets the next task start while it still runs, counted as inferring, once however often it releases', async () => {
    const q = createWorkQueue({ concurrency: 1, size: 4, now: () => 0 });
    const a = deferred();
    let releaseA!: () => void;
    const first = q.run((release) => {
      releaseA = release;
      return a.promise;
    });
    const b = deferred();
    let secondStarted = false;
    const second = q.run(() => {
      secondStarted = true;
      return b.promise;
    });
    expect(q.stats()).toEqual({ queued: 1, running: 1, inferring: 0, admitted: 0 });
    releaseA();
    releaseA(); // idempotent
    expect(secondStarted).toBe(true);
    expect(q.stats()).toEqual({ queued: 0, running: 1, inferring: 1, admitted: 0 });
    a.resolve();
    await first; // settling after the early release frees no slot a second time
    expect(q.stats()).toEqual({ queued: 0, running: 1, inferring: 0, admitted: 0 });
    b.resolve();
    await second;
    expect(q.stats()).toEqual({ queued: 0, running: 0, inferring: 0, admitted: 0 });
  });

  it('ignores a release once `concurrency` tasks run without their slot: the next waits in the queue', async () => {
    const q = createWorkQueue({ concurrency: 1, size: 4, now: () => 0 });
    const gates = [deferred(), deferred(), deferred()];
    const releases: Array<() => void> = [];
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      q.run((release) => {
        started.push(i);
        releases.push(release);
        return g.promise;
      }),
    );
    releases[0]!(); // the first goes on without its slot; the second starts
    expect(started).toEqual([0, 1]);
    releases[1]!(); // one already runs without its slot (concurrency 1): ignored
    expect(started).toEqual([0, 1]);
    expect(q.stats()).toEqual({ queued: 1, running: 1, inferring: 1, admitted: 0 });
    gates[0]!.resolve();
    await runs[0];
    releases[1]!(); // now there is room: the third starts
    expect(started).toEqual([0, 1, 2]);
    gates[1]!.resolve();
    gates[2]!.resolve();
    await Promise.all(runs);
    expect(q.stats()).toEqual({ queued: 0, running: 0, inferring: 0, admitted: 0 });
  });

  it('a task that fails after its early release is counted out; idle() waits for it', async () => {
    const q = createWorkQueue({ concurrency: 1, size: 4, now: () => 0 });
    const a = deferred();
    const failing = q.run(async (release) => {
      release();
      await a.promise;
      throw new Error('inference failed');
    });
    await Promise.resolve();
    expect(q.stats()).toEqual({ queued: 0, running: 0, inferring: 1, admitted: 0 });
    let idle = false;
    const idled = q.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    a.resolve();
    await expect(failing).rejects.toThrow('inference failed');
    await idled;
    expect(q.stats()).toEqual({ queued: 0, running: 0, inferring: 0, admitted: 0 });
  });
});
