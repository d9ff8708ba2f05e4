/**
 * Receiving an upload: the body's deadline, a client that goes away, multipart parts spooled to
 * the request's temp files one by one, a raw body spooled whole, and what a request may not send.
 */
import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { EngineError } from '../errors.js';
import type { TempFiles, VideoInput } from '../service/index.js';
import { tooLarge } from '../service/uploads.js';
import { toServiceError } from './errors.js';

/** Room for the multipart boundaries and knob fields around one file. */
export const MULTIPART_OVERHEAD = 64 * 1024;
export const RAW_TYPES = /^(video\/[a-z0-9.+-]+|application\/octet-stream)$/;

export interface Received {
  /** On disk, or refused alone (too large, empty): one per file part, in order. */
  items: VideoInput[];
  fields: Record<string, unknown>;
}

/**
 * Reads every part: files are spooled in order (a too-large one is recorded as that item's error
 * and the next part is read), fields are collected. Field order does not matter.
 */
export async function receiveMultipart(request: FastifyRequest, temps: TempFiles, options: { maxFiles: number }): Promise<Received> {
  const received: Received = { items: [], fields: {} };
  const single = options.maxFiles === 1;
  for await (const part of request.parts() as AsyncIterableIterator<Multipart>) {
    if (part.type === 'field') {
      if (part.fieldname in received.fields) throw new EngineError('BAD_REQUEST', `field "${part.fieldname}" appears twice`);
      received.fields[part.fieldname] = part.value;
      continue;
    }
    const expected = single ? ['file'] : ['files', 'file'];
    if (!expected.includes(part.fieldname)) {
      throw new EngineError('BAD_REQUEST', `unexpected file part "${part.fieldname}"; videos go in ${single ? '"file"' : '"files" parts'}`);
    }
    if (received.items.length >= options.maxFiles) {
      if (single) throw new EngineError('BAD_REQUEST', 'send exactly one "file" part; use /v1/classify:batch for several videos');
      throw new EngineError('BATCH_TOO_LARGE', `a batch holds at most ${options.maxFiles} videos`, { maxItems: options.maxFiles });
    }
    received.items.push(await receiveFile(part, temps));
  }
  return received;
}

async function receiveFile(part: MultipartFile, temps: TempFiles): Promise<VideoInput> {
  const filename = part.filename ? part.filename : null;
  const file = temps.path(filename ?? undefined);
  try {
    const bytes = await temps.spool(part.file, file, Number.POSITIVE_INFINITY);
    // busboy stops writing at the fileSize limit and flags the stream; the rest of the part is skipped.
    if (part.file.truncated) return { filename, error: tooLarge(Number((part.file as { bytesRead?: number }).bytesRead ?? bytes)) };
    if (bytes === 0) return { filename, error: new EngineError('BAD_REQUEST', `${filename ? JSON.stringify(filename) : 'the video'} is empty`) };
    return { filename, path: file };
  } catch (err) {
    // A source error means the request itself broke: nothing more can be read.
    if (part.file.destroyed || part.file.errored) throw err;
    part.file.resume(); // skip the rest of this part so the next one can be read
    return { filename, error: toServiceError(err) };
  }
}

/** Aborts when the client closes the connection before the response is written. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new EngineError('ABORTED', 'the client went away'));
  });
  return controller.signal;
}

/**
 * REQUEST_TIMEOUT_MS counted from the request's arrival, enforced here rather than only by Node's
 * own timer, which fires outside fastify: the handler would see a cut stream and the request would
 * be counted as an abort. The reading left behind ends when the 408 closes the connection; its
 * files go with the session's.
 */
export function bodyDeadline(reply: FastifyReply, limitMs: number): { within<T>(reading: Promise<T>): Promise<T>; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    within(reading) {
      if (limitMs === 0) return reading;
      const expired = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new EngineError('REQUEST_TIMEOUT', `the request was not received in full within ${limitMs} ms`, { limitMs })),
          Math.max(0, limitMs - reply.elapsedTime),
        );
      });
      return Promise.race([reading, expired]).finally(() => clearTimeout(timer));
    },
    clear: () => clearTimeout(timer),
  };
}

/** A raw request body (the video itself) into one temp file; BAD_REQUEST when empty. */
export async function receiveRaw(request: FastifyRequest, temps: TempFiles, maxBytes: number): Promise<VideoInput> {
  refuseLongBody(request, maxBytes);
  const file = temps.path();
  const bytes = await temps.spool(request.body as Readable, file, maxBytes);
  if (bytes === 0) throw new EngineError('BAD_REQUEST', 'the request body is empty');
  return { filename: null, path: file };
}

export function refuseLongBody(request: FastifyRequest, maxBytes: number): void {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
}

export function mediaType(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

export function unsupported(request: FastifyRequest, hint = 'send multipart/form-data with a "file" part, or the video itself as video/* or application/octet-stream'): EngineError {
  const type = mediaType(request);
  return new EngineError('UNSUPPORTED_MEDIA_TYPE', `content type ${type ? JSON.stringify(type) : '(none)'} is not accepted; ${hint}`, { contentType: type || null });
}
