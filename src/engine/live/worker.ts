/**
 * Entry point of a live stream's worker process: one per stream, for the stream's life. The bytes
 * come on stdin, which libav reads synchronously (`pipe:0`): while no byte comes, the process sleeps
 * in read(2), burning nothing. Windows go back over IPC as small messages naming their frames
 * file. A stream that hangs or crashes libav takes only its own process with it.
 *
 *   parent → child   init (once)
 *   child → parent   started · window … · ended, or failed
 */
import { isEngineError } from '../../errors.js';
import { openLiveInput, recentLibavErrors, stopLibavLog } from '../decode/libav.js';
import { serializeError, type SerializedError } from '../workers/protocol.js';
import { decodeLive, type LiveInfo, type LiveSettings, type LiveSummary, type LiveWindow } from './decode-stream.js';

export interface LiveInit extends LiveSettings {
  /** libav's demuxer name when the client said which container it sends; probed otherwise. */
  format: string | undefined;
}

export type FromLiveWorker =
  | { type: 'started'; info: LiveInfo }
  | { type: 'window'; window: LiveWindow }
  | { type: 'ended'; summary: LiveSummary }
  | { type: 'failed'; error: SerializedError };

const send = (message: FromLiveWorker): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });

const wallClock = (): number => performance.timeOrigin + performance.now();

process.once('message', (message: { type: 'init'; init: LiveInit }) => {
  void run(message.init).finally(async () => {
    await recentLibavErrors();
    stopLibavLog();
    process.disconnect?.();
  });
});

const cpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

async function run(init: LiveInit): Promise<void> {
  const startupCpuS = cpuSeconds(); // Node and libav loaded: what any stream pays before its first byte
  try {
    const input = openLiveInput('pipe:0', init.name, init.format);
    try {
      const summary = await decodeLive(
        input,
        init,
        {
          started: (info: LiveInfo) => void send({ type: 'started', info }),
          window: (window: LiveWindow) => send({ type: 'window', window }),
        },
        wallClock,
      );
      await send({ type: 'ended', summary: { ...summary, cpuS: cpuSeconds(), startupCpuS } });
    } finally {
      input.close();
    }
  } catch (err) {
    const error = serializeError(err, 'DECODE_FAILED');
    const said = await recentLibavErrors();
    if (said && isEngineError(err) && err.status < 500) error.message = `${error.message} (${said})`;
    await send({ type: 'failed', error });
  }
}
