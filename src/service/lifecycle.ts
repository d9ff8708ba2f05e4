/**
 * The service's life: starting (the model loads and warms up) → ready → draining (after SIGTERM:
 * readiness fails, new inference is refused, requests already in flight finish). `failed` means
 * the engine could not start; the server exits on it, the app only reports it. `unavailable` is a
 * ready service whose engine cannot run work now (no inference worker can start; it is retrying):
 * not ready, and requests get 503 WORKER_UNAVAILABLE before their upload is read.
 */
import type { Engine } from '../engine/index.js';
import { EngineError } from '../errors.js';

/**
 * What the service needs of the engine, as a type: tests hand it the real engine, a wrapped one
 * (held at a gate), or the promise of one still warming up.
 */
export type EnginePort = Pick<Engine, 'manifest' | 'info' | 'classify' | 'classifyFrames' | 'openStream' | 'validateKnobs' | 'stats'>;

export type Status = 'starting' | 'ready' | 'unavailable' | 'draining' | 'failed';

export interface Lifecycle {
  status(): Status;
  /**
   * The one readiness answer: /readyz, /v2/health/ready and the model_ready gauge (and any other
   * health protocol) read it, so they never disagree.
   */
  ready(): boolean;
  /** The engine, or NOT_READY / DRAINING / WORKER_UNAVAILABLE for a request that should not start now. */
  engine(): EnginePort;
  /** The engine once loaded, whatever the status (model metadata stays readable while draining). */
  loaded(): EnginePort | undefined;
  /** Counts one inference request until the returned function is called. */
  enter(): () => void;
  inflight(): number;
  /** Stops new work; resolves when no inference request is in flight. */
  drain(): Promise<void>;
}

export function createLifecycle(
  engine: EnginePort | Promise<EnginePort>,
  hooks: { onReady?: (engine: EnginePort) => void; onFailed?: (err: unknown) => void; onInflight?: (delta: 1 | -1) => void } = {},
): Lifecycle {
  let status: Status = 'starting';
  let loaded: EnginePort | undefined;
  let inflight = 0;
  let drained: Array<() => void> = [];

  const settle = (): void => {
    if (inflight > 0) return;
    const waiters = drained;
    drained = [];
    for (const w of waiters) w();
  };

  const opened = (e: EnginePort): void => {
    loaded = e;
    if (status === 'starting') status = 'ready';
    hooks.onReady?.(e);
  };
  // An engine already open is ready now (the CLI's first request comes in the same tick).
  if (engine instanceof Promise) {
    engine.then(opened, (err: unknown) => {
      if (status === 'starting') status = 'failed';
      hooks.onFailed?.(err);
    });
  } else opened(engine);

  const current = (): Status => (status === 'ready' && loaded && !loaded.stats().accepting ? 'unavailable' : status);

  return {
    status: current,
    ready: () => current() === 'ready',
    engine() {
      const now = current();
      if (now === 'draining') throw new EngineError('DRAINING', 'the service is shutting down and takes no new work');
      if (now === 'unavailable') throw new EngineError('WORKER_UNAVAILABLE', 'no inference worker is running now; it is being restarted');
      if (!loaded) throw new EngineError('NOT_READY', status === 'failed' ? 'the model failed to load' : 'the model is still loading');
      return loaded;
    },
    loaded: () => loaded,
    enter() {
      inflight += 1;
      hooks.onInflight?.(1);
      let left = false;
      return () => {
        if (left) return;
        left = true;
        inflight -= 1;
        hooks.onInflight?.(-1);
        settle();
      };
    },
    inflight: () => inflight,
    drain() {
      status = 'draining';
      if (inflight === 0) return Promise.resolve();
      return new Promise((resolve) => drained.push(resolve));
    },
  };
}
