/**
 * Windows over a live stream, decided online (docs/contracts.md, "Windows over a stream").
 *
 * Window k covers [origin + k·stride, origin + k·stride + window) of stream time, where origin is
 * the first frame's presentation time. Slot i of a window takes the last frame whose presentation
 * time is at or before the centre of the i-th of `frames` equal time segments,
 * start + (2i + 1)·window / (2·frames); a slot whose centre comes before the window's first frame
 * takes that frame. For frames at a constant rate this is the file rule of sample.ts
 * (floor((2i + 1)·n / (2·frames)) of the window's n frames) written in time, so a window and the
 * same seconds cut out as a file sample the same frames (test/engine/live/windows.test.ts).
 *
 * Written in time rather than in frame counts so that a frame's fate is known as soon as the next
 * frame's time is: n is never needed, a window is complete the moment a frame at or past its end
 * is known, and the decoder can leave undecoded the non-reference frames that no slot takes.
 *
 * All arithmetic is exact: times are bigint ticks of the stream's time base scaled by
 * 1000·num (so that millisecond windows are whole), and centres are compared multiplied by
 * 2·frames.
 */

export interface WindowSpec {
  windowMs: number;
  strideMs: number;
  /** Slots per window: the model's frame count. */
  frames: number;
  /** The stream's time base (seconds per tick = num / den). */
  timeBase: { num: number; den: number };
}

/** A window whose every slot is decided. */
export interface SampledWindow {
  seq: number;
  /** Start and end (exclusive) in seconds of stream time from the stream's first frame. */
  startS: number;
  endS: number;
  /** The presentation time (ticks) of the frame each slot takes. */
  slots: bigint[];
  /** Frames of the stream inside the window. */
  frameCount: number;
  /** Cut short by the end of the stream (only the first window of a stream shorter than one). */
  partial: boolean;
}

/** What settling one frame decided. */
export interface Settled {
  /** The previous frame, now decided: whether any slot of any window takes it. */
  decided: { pts: bigint; taken: boolean } | undefined;
  /** Windows completed by this frame, in order. */
  completed: SampledWindow[];
}

interface OpenWindow {
  seq: number;
  start: bigint; // scaled
  slots: Array<bigint | undefined>;
  frameCount: number;
}

export interface WindowSampler {
  /**
   * The next frame in presentation order (each frame once, times strictly increasing; a frame at or
   * before the last one is refused with false and changes nothing).
   */
  settle(pts: bigint): Settled | false;
  /** The stream ended: decides the last frame; returns its fate and the first window if none completed. */
  finish(): Settled;
  /** Windows completed so far. */
  readonly completedCount: number;
}

export function createWindowSampler(spec: WindowSpec): WindowSampler {
  const { frames } = spec;
  if (!(spec.windowMs > 0 && spec.strideMs > 0 && Number.isInteger(spec.windowMs) && Number.isInteger(spec.strideMs))) {
    throw new RangeError(`window and stride must be whole positive milliseconds, got ${spec.windowMs} and ${spec.strideMs}`);
  }
  const scale = 1000n * BigInt(spec.timeBase.num);
  const window = BigInt(spec.windowMs) * BigInt(spec.timeBase.den);
  const stride = BigInt(spec.strideMs) * BigInt(spec.timeBase.den);
  const twiceFrames = 2n * BigInt(frames);
  const toSeconds = (scaled: bigint): number => Number(scaled) / (1000 * spec.timeBase.den);

  let origin: bigint | undefined;
  let previous: bigint | undefined; // the last settled frame (its pts), not yet decided
  let beforePrevious: bigint | undefined; // scaled
  const open = new Map<number, OpenWindow>();
  let nextSeq = 0; // windows before it were completed or skipped
  let completedCount = 0;

  const startOf = (k: number): bigint => (origin as bigint) + BigInt(k) * stride;
  /** 2·frames × the centre of slot i of a window starting at `start`. */
  const centre = (start: bigint, i: number): bigint => twiceFrames * start + BigInt(2 * i + 1) * window;

  /** Windows k ≥ 0 with start ≤ t < start + window. */
  const windowsHolding = (t: bigint): [number, number] => {
    const offset = t - (origin as bigint);
    const last = offset / stride; // offset ≥ 0
    const beyond = offset - window;
    const first = beyond < 0n ? 0n : beyond / stride + 1n;
    return [Number(first), Number(last)];
  };

  const windowAt = (k: number): OpenWindow => {
    let w = open.get(k);
    if (!w) {
      w = { seq: k, start: startOf(k), slots: new Array<bigint | undefined>(frames).fill(undefined), frameCount: 0 };
      open.set(k, w);
    }
    return w;
  };

  /** Gives frame `pts` its slots, knowing the frames around it (scaled; `next` undefined: the end). */
  const decide = (pts: bigint, before: bigint | undefined, next: bigint | undefined): boolean => {
    const p = pts * scale;
    let taken = false;
    const [first, last] = windowsHolding(p);
    for (let k = first; k <= last; k++) {
      const w = windowAt(k);
      const firstInWindow = before === undefined || before < w.start;
      for (let i = 0; i < frames; i++) {
        const c = centre(w.start, i);
        const atOrAfter = twiceFrames * p <= c;
        const beforeNext = next === undefined || twiceFrames * next > c;
        if ((atOrAfter && beforeNext) || (firstInWindow && !atOrAfter)) {
          w.slots[i] = pts;
          taken = true;
        }
      }
    }
    return taken;
  };

  const sampled = (w: OpenWindow, partial: boolean): SampledWindow => ({
    seq: w.seq,
    startS: toSeconds(w.start - (origin as bigint)),
    endS: toSeconds(w.start + window - (origin as bigint)),
    slots: w.slots as bigint[],
    frameCount: w.frameCount,
    partial,
  });

  /** Windows that end at or before `t` (scaled) are complete; those that held no frame are skipped. */
  const completeBefore = (t: bigint): SampledWindow[] => {
    const done: SampledWindow[] = [];
    while (startOf(nextSeq) + window <= t) {
      const w = open.get(nextSeq);
      open.delete(nextSeq);
      if (w && w.frameCount > 0) {
        done.push(sampled(w, false));
        completedCount++;
      }
      nextSeq++;
    }
    return done;
  };

  const count = (p: bigint): void => {
    const [first, last] = windowsHolding(p);
    for (let k = first; k <= last; k++) windowAt(k).frameCount++;
  };

  return {
    settle(pts) {
      const p = pts * scale;
      if (previous !== undefined && pts <= previous) return false;
      origin ??= p;
      count(p);
      let decided: Settled['decided'];
      if (previous !== undefined) {
        decided = { pts: previous, taken: decide(previous, beforePrevious, p) };
        beforePrevious = previous * scale;
      }
      previous = pts;
      return { decided, completed: completeBefore(p) };
    },
    finish() {
      if (previous === undefined) return { decided: undefined, completed: [] };
      const last = previous * scale;
      const decided = { pts: previous, taken: decide(previous, beforePrevious, undefined) };
      // The last frame lasts as long as the one before it did: a window that ends there is whole.
      const completed = completeBefore(last + (beforePrevious === undefined ? 1n : last - beforePrevious));
      // A stream shorter than one window still gets an answer: its first window, cut short.
      if (completedCount === 0 && completed.length === 0) {
        const w = open.get(0);
        if (w) {
          completed.push(sampled(w, true));
          completedCount++;
        }
      }
      open.clear();
      previous = undefined;
      return { decided, completed };
    },
    get completedCount() {
      return completedCount;
    },
  };
}
