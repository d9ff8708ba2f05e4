/**
 * A pulled stream's events, numbered from 1, the last `capacity` kept: a watcher that reconnects
 * says the last id it saw (SSE's Last-Event-ID) and gets what it missed, if it is still kept, then
 * every new one. Watchers are called synchronously in order; a slow one is its transport's business.
 */
import type { StreamEvent } from './stream-events.js';

export interface LoggedEvent {
  id: number;
  event: StreamEvent;
}

export type Watcher = (logged: LoggedEvent) => void;

export interface EventLog {
  append(event: StreamEvent): void;
  /**
   * The kept events after `after` (all kept when undefined), and from then on every new one to
   * `watcher`, until the returned function is called or the log is closed (`closed` then called).
   * `missed`: events after `after` that are no longer kept.
   */
  watch(after: number | undefined, watcher: Watcher, closed: () => void): { replay: LoggedEvent[]; missed: number; stop: () => void };
  /** No event comes any more: watchers are told. */
  close(): void;
  readonly closed: boolean;
  lastId(): number;
}

export function createEventLog(capacity: number): EventLog {
  const kept: LoggedEvent[] = [];
  const watchers = new Map<Watcher, () => void>();
  let next = 1;
  let closed = false;
  return {
    append(event) {
      if (closed) return;
      const logged = { id: next++, event };
      kept.push(logged);
      if (kept.length > capacity) kept.shift();
      for (const watcher of [...watchers.keys()]) watcher(logged);
    },
    watch(after, watcher, onClosed) {
      const from = after ?? 0;
      const replay = kept.filter((e) => e.id > from);
      const oldest = kept[0]?.id ?? next;
      const missed = after === undefined ? 0 : Math.max(0, oldest - from - 1);
      if (closed) {
        queueMicrotask(onClosed);
        return { replay, missed, stop: () => undefined };
      }
      watchers.set(watcher, onClosed);
      return { replay, missed, stop: () => void watchers.delete(watcher) };
    },
    close() {
      if (closed) return;
      closed = true;
      const told = [...watchers.values()];
      watchers.clear();
      for (const onClosed of told) onClosed();
    },
    get closed() {
      return closed;
    },
    lastId: () => next - 1,
  };
}
