/**
 * A SessionHost that runs the session in the calling thread, through an injectable SessionFactory.
 * For tests only (fake sessions, failing providers): a real session here blocks the
 * event loop while it runs (docs/decisions.md), which is why the engine defaults to the child process.
 */
import { EngineError } from '../../errors.js';
import { Preprocessor } from '../preprocess.js';
import { withVideos, type SessionHost, type SessionHostOptions, type SessionInfo } from './host.js';
import { checkFeeds, openSession, type EngineSession, type SessionFactory } from './ort-session.js';

export function createInProcessHost(factory: SessionFactory): (options: SessionHostOptions) => SessionHost {
  return (options) => {
    const { now } = options;
    const preprocessor = new Preprocessor(options.init.input);
    let closed = false;
    let pending = 0;
    let tail: Promise<unknown> = Promise.resolve();
    const opening: Promise<{ session: EngineSession; info: SessionInfo }> = (async () => {
      const { init } = options;
      const session = await openSession(init.modelPath, {
        executionProviders: init.executionProviders,
        intraOpNumThreads: init.intraOpNumThreads || undefined,
        interOpNumThreads: init.interOpNumThreads || undefined,
        spinning: init.spinning,
        logger: options.logger,
        factory,
      });
      return { session, info: { executionProvider: session.executionProvider, inputs: [...session.inputs], outputs: [...session.outputs], warmupMs: 0 } };
    })();
    opening.catch(() => undefined); // reported through ready() and run()

    return {
      ready: async () => (await opening).info,
      run(job, signal) {
        if (closed) return Promise.reject(new EngineError('ENGINE_CLOSED', 'the engine is shutting down'));
        const enqueuedAt = now();
        pending += 1;
        // One run at a time, in order, like the child process host.
        const result = tail.then(async () => {
          try {
            if (signal?.aborted) throw new EngineError('ABORTED', 'the request was cancelled');
            const { session } = await opening;
            const feeds = withVideos(job, preprocessor);
            checkFeeds(session.inputs, feeds);
            const sentAt = now();
            const outputs = await session.run(feeds);
            return { outputs, queueS: (sentAt - enqueuedAt) / 1000, inferS: (now() - sentAt) / 1000 };
          } finally {
            pending -= 1;
          }
        });
        tail = result.catch(() => undefined);
        return result;
      },
      accepting: () => !closed,
      stats: () => ({
        state: closed ? 'stopped' : 'up',
        workers: closed ? 0 : 1,
        alive: closed ? 0 : 1,
        busy: Math.min(pending, 1),
        queued: Math.max(0, pending - 1),
        restarts: 0,
        retired: 0,
        failedStarts: 0,
        failuresInRow: 0,
        pids: [process.pid],
      }),
      async close() {
        closed = true;
        await tail;
        const opened = await opening.catch(() => undefined);
        await opened?.session.dispose();
      },
    };
  };
}
