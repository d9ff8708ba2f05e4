/**
 * The restart policy for one replaceable worker process, with no process code in it: the owner
 * (session-host.ts, or one slot of a worker pool) starts the worker and reports what happens to it;
 * the supervisor decides when the next start happens, keeps the counters and says whether work
 * can run now.
 *
 * - A worker that was ready and dies is replaced at once: a one-off crash costs one request.
 * - A worker that dies before it is ready is retried after a backoff that doubles per failure in a
 *   row, capped at `backoff.maxMs`, for as long as the process lives. No jitter: it spreads a crowd
 *   of clients, and here one process retries one worker.
 * - While the last start failed (`down`), no worker can run: callers refuse work with a 503
 *   rather than let it wait an unknown time.
 * - After `maxDownMs` without a ready worker, counted from the first failure (a start that failed,
 *   or the death of the ready worker), `onGiveUp` is called once and nothing more is started: the
 *   owner fails for good and the service exits, so the orchestrator replaces the whole process.
 *   0 = never. A first start that is merely slow (a large model loading) is not a failure: the
 *   start timeout bounds it, and its kill starts the clock.
 */

/**
 * starting: the first worker is starting (never was ready) · up: a worker is ready ·
 * restarting: the ready worker died, its replacement is starting (work waits for it) ·
 * down: the last start failed; the next one comes after the backoff · stopped: closed or given up.
 */
export type WorkerState = 'starting' | 'up' | 'restarting' | 'down' | 'stopped';

export interface SupervisorOptions {
  /** Starts one worker; the owner then calls ready() or exited() about it. */
  start: () => void;
  /** Delay before the first retry after a failed start; doubled per failure in a row, up to maxMs. */
  backoff: { initialMs: number; maxMs: number };
  /** Longest time without a ready worker before giving up; 0 = never give up. */
  maxDownMs: number;
  /** Called once when maxDownMs passes without a ready worker; the supervisor is stopped by then. */
  onGiveUp: (downMs: number) => void;
  /** Milliseconds, monotonic. */
  now: () => number;
}

export interface SupervisorStats {
  state: WorkerState;
  /** 1 while a ready worker serves, else 0 (a pool sums its slots). */
  alive: number;
  /** Ready workers that died and were replaced. */
  restarts: number;
  /** Workers that died (or were killed) before they were ready. */
  failedStarts: number;
  /** Failed starts since the last ready worker. */
  failuresInRow: number;
  /** Since the first failure with no ready worker after it (monotonic ms); absent while one is ready or none failed yet. */
  downSince: number | undefined;
}

export interface Supervisor {
  /** Starts the first worker. */
  launch(): void;
  /** The current worker is ready: the backoff and the down clock reset. */
  ready(): void;
  /** The current worker exited; returns the delay before its replacement starts (-1: none, stopped). */
  exited(): number;
  /**
   * The owner replaces its ready worker on purpose (retired) and starts the successor itself: no
   * restart is counted, and a successor that dies before it is ready is a failed start (backoff).
   */
  replacing(): void;
  /** Whether work can be sent or queued now (false while down or stopped). */
  accepting(): boolean;
  state(): WorkerState;
  stats(): SupervisorStats;
  /** Starts nothing more and clears the timers. */
  stop(): void;
}

export function createSupervisor(options: SupervisorOptions): Supervisor {
  const { backoff, maxDownMs, now } = options;
  let state: WorkerState = 'starting';
  let restarts = 0;
  let failedStarts = 0;
  let failuresInRow = 0;
  let downSince: number | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let giveUpTimer: NodeJS.Timeout | undefined;

  const armGiveUp = (): void => {
    downSince ??= now();
    if (maxDownMs === 0 || giveUpTimer) return;
    giveUpTimer = setTimeout(() => {
      giveUpTimer = undefined;
      const downMs = Math.round(now() - (downSince ?? now()));
      stop();
      options.onGiveUp(downMs);
    }, maxDownMs);
  };

  const stop = (): void => {
    state = 'stopped';
    clearTimeout(retryTimer);
    clearTimeout(giveUpTimer);
    retryTimer = undefined;
    giveUpTimer = undefined;
  };

  return {
    launch() {
      options.start();
    },
    ready() {
      if (state === 'stopped') return;
      state = 'up';
      failuresInRow = 0;
      downSince = undefined;
      clearTimeout(giveUpTimer);
      giveUpTimer = undefined;
    },
    exited() {
      if (state === 'stopped') return -1;
      armGiveUp();
      if (state === 'up') {
        restarts += 1;
        state = 'restarting';
        options.start();
        return 0;
      }
      failedStarts += 1;
      failuresInRow += 1;
      state = 'down';
      const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (failuresInRow - 1));
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        if (state === 'down') options.start();
      }, delay);
      return delay;
    },
    replacing() {
      if (state === 'up') state = 'restarting';
    },
    accepting: () => state === 'starting' || state === 'up' || state === 'restarting',
    state: () => state,
    stats: () => ({ state, alive: state === 'up' ? 1 : 0, restarts, failedStarts, failuresInRow, downSince }),
    stop,
  };
}
