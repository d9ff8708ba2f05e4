/**
 * Entry point of a decode worker process: decodes one video at a time for the pool (pool.ts). node-av's
 * calls are synchronous and run native code, so they live here, where a stuck or crashing decoder is
 * killed and replaced without touching the service.
 */
import { isEngineError } from '../../errors.js';
import { decodeVideo } from './decode-video.js';
import { createCudaDevice, libavVersion, recentLibavErrors, stopLibavLog, type DecoderOptions } from './libav.js';
import type { FromDecodeWorker, SerializedError, ToDecodeWorker } from './protocol.js';

const send = (message: FromDecodeWorker): void => {
  process.send?.(message);
};

let decoder: DecoderOptions | undefined;

process.on('message', (message: ToDecodeWorker) => {
  if (message.type === 'init') init(message.threads, message.hwaccel);
  else if (message.type === 'decode') void decode(message.id, message.job);
  else void exit();
});
process.on('disconnect', () => void exit());

async function exit(): Promise<void> {
  await recentLibavErrors(); // let pending log lines arrive first (see stopLibavLog)
  stopLibavLog();
  process.exit(0);
}

function init(threads: number, hwaccel: 'auto' | 'cuda' | 'none'): void {
  try {
    let reason: string | undefined;
    let hardware: DecoderOptions['hardware'] = null;
    if (hwaccel !== 'none') {
      const cuda = createCudaDevice();
      hardware = cuda.device;
      reason = cuda.reason;
    }
    decoder = { threads, hardware };
    send({ type: 'ready', hardware: hardware ? 'cuda' : 'cpu', reason, libav: libavVersion() });
  } catch (err) {
    send({ type: 'init-failed', error: serialize(err, 'DECODE_FAILED') });
  }
}

async function decode(id: number, job: Parameters<typeof decodeVideo>[0]): Promise<void> {
  await recentLibavErrors(); // lines logged for an earlier video are not this one's
  try {
    if (!decoder) throw new Error('the decode worker was not initialised');
    send({ type: 'result', id, result: decodeVideo(job, decoder) });
  } catch (err) {
    // libav's own words ("moov atom not found") say more than its error code.
    // Its lines name the temp path (as the `file:` URL): say the caller's name for the video instead.
    const said = (await recentLibavErrors()).split(`file:${job.file}`).join(job.name).split(job.file).join(job.name);
    const error = serialize(err, 'DECODE_FAILED');
    if (said && isEngineError(err) && err.status < 500) error.message = `${error.message} (${said})`;
    send({ type: 'error', id, error });
  }
}

function serialize(err: unknown, fallback: SerializedError['code']): SerializedError {
  if (isEngineError(err)) return { code: err.code, message: err.message, details: err.details };
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}
