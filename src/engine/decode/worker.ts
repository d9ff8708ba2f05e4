/**
 * Entry point of a decode worker process: decodes one video at a time for the pool (pool.ts).
 * node-av's calls are synchronous and run native code, so they live here, where a stuck or
 * crashing decoder is killed and replaced without touching the service.
 */
import { writeFileSync } from 'node:fs';
import { isEngineError } from '../../errors.js';
import { thumbnails } from '../thumbnails.js';
import { serveWorker } from '../workers/child.js';
import { createFrameBuffer, decodeVideo, type DecodedVideo, type DecodeJob } from './decode-video.js';
import { createCudaDevice, libavVersion, recentLibavErrors, stopLibavLog, type DecoderOptions } from './libav.js';
import type { DecodeInit, DecodeWorkerInfo } from './pool.js';

let decoder: DecoderOptions | undefined;
// Each video's frames are written or sent before the next job starts (child.ts runs one at a time).
const frames = createFrameBuffer();

serveWorker<DecodeInit, DecodeWorkerInfo, DecodeJob, DecodedVideo>({
  init({ threads, hwaccel }) {
    let reason: string | undefined;
    let hardware: DecoderOptions['hardware'] = null;
    if (hwaccel !== 'none') {
      const cuda = createCudaDevice();
      hardware = cuda.device;
      reason = cuda.reason;
    }
    decoder = { threads, hardware };
    return { hardware: hardware ? 'cuda' : 'cpu', reason, libav: libavVersion() };
  },
  async run(job) {
    await recentLibavErrors(); // lines logged for an earlier video are not this one's
    if (!decoder) throw new Error('the decode worker was not initialised');
    const video = decodeVideo(job, decoder, frames);
    const withThumbnails = job.thumbnails ? { ...video, thumbnails: thumbnails(video.rgb, video.slotToFrame, job.size) } : video;
    if (!job.framesFile) return withThumbnails;
    // The frames go to the inference worker through the file; only its name crosses the main process.
    writeFileSync(job.framesFile, video.rgb, { mode: 0o600 });
    return { ...withThumbnails, rgb: new Uint8Array(0), framesFile: job.framesFile };
  },
  fallback: { init: 'DECODE_FAILED', run: 'DECODE_FAILED' },
  spans: {
    process: 'decode',
    name: 'decode',
    attributes: (job, video) => ({
      'haltingvt.video.width': video.info.width,
      'haltingvt.video.height': video.info.height,
      'haltingvt.frames.sampled': job.frames,
      'haltingvt.frames.decoded': video.decodedFrames,
      'haltingvt.frames.padded': video.padded,
      'haltingvt.decode.seeks': video.seeks,
      'haltingvt.decode.hardware': decoder?.hardware ? 'cuda' : 'cpu',
    }),
  },
  async describeError(err, job, error) {
    // libav's own words ("moov atom not found") say more than its error code. Its lines name the
    // temp path (as the `file:` URL): say the caller's name for the video instead.
    const said = (await recentLibavErrors()).split(`file:${job.file}`).join(job.name).split(job.file).join(job.name);
    if (said && isEngineError(err) && err.status < 500) error.message = `${error.message} (${said})`;
  },
  async close() {
    await recentLibavErrors(); // let pending log lines arrive first (see stopLibavLog)
    stopLibavLog();
  },
});
