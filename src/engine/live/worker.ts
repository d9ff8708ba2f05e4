/**
 * Entry point of a live stream's worker process: one per stream (per connection of a pulled one),
 * for its life. The bytes come on stdin (`pipe:0`) or from the source's URL, which libav reads
 * synchronously: while no byte comes, the process sleeps in the read, burning nothing. Windows go
 * back over IPC as small messages naming their frames file. A stream that hangs or crashes libav
 * takes only its own process with it.
 *
 *   parent → child   init (once) · ack … (paced: one per window, when the service took it)
 *   child → parent   started · progress … · window … · ended, or failed
 */
import { isEngineError } from '../../errors.js';
import { openLiveInput, recentLibavErrors, stopLibavLog } from '../decode/libav.js';
import { serializeError, type SerializedError } from '../workers/protocol.js';
import { decodeLive, type LiveInfo, type LiveSettings, type LiveSummary, type LiveWindow } from './decode-stream.js';

/** Where a stream's bytes come from: its worker's stdin, or a URL libav opens with `options`. */
export type LiveSource =
  | { kind: 'pipe'; format: string | undefined }
  | { kind: 'url'; url: string; format: string | undefined; options: Record<string, string> };

export interface LiveInit extends LiveSettings {
  source: LiveSource;
  /**
   * Read no further than one window ahead of the service: each window waits for its ack. What
   * holds back a pulled source that must not drop (a file, a finished playlist); pushed bytes are
   * held back by their pipe instead.
   */
  paced: boolean;
  /** Send `progress` messages (a pulled source's stall detector reads them; a pushed stream has none). */
  progress: boolean;
}

export type FromLiveWorker =
  | { type: 'started'; info: LiveInfo }
  /** Packets arrive (at most one a second): what tells a stalled source from a slow one. */
  | { type: 'progress'; packets: number; at: number }
  | { type: 'window'; window: LiveWindow }
  | { type: 'ended'; summary: LiveSummary }
  | { type: 'failed'; error: SerializedError };

const send = (message: FromLiveWorker): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });

const wallClock = (): number => performance.timeOrigin + performance.now();

export type ToLiveWorker = { type: 'init'; init: LiveInit } | { type: 'ack' };

/** Acks come before their window is waited for when the service is quick: counted, not lost. */
let acks = 0;
let acked: (() => void) | undefined;
const nextAck = (): Promise<void> =>
  acks > 0 ? Promise.resolve(void acks--) : new Promise((resolve) => (acked = () => resolve(void acks--)));

process.on('message', (message: ToLiveWorker) => {
  if (message.type === 'ack') {
    acks++;
    acked?.();
    acked = undefined;
    return;
  }
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
    const { source } = init;
    const input = source.kind === 'pipe' ? openLiveInput('pipe:0', init.name, source.format) : openLiveInput(source.url, init.name, source.format, source.options);
    try {
      const summary = await decodeLive(
        input,
        init,
        {
          started: (info: LiveInfo) => void send({ type: 'started', info }),
          progress: (packets: number) => {
            if (init.progress) void send({ type: 'progress', packets, at: wallClock() });
          },
          window: async (window: LiveWindow) => {
            await send({ type: 'window', window });
            if (init.paced) await nextAck();
          },
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
