/**
 * Uploads are streamed to temp files, never buffered whole: a video can be hundreds of MB, and an
 * MP4 with its moov atom at the end cannot be decoded from a pipe, only from a seekable file.
 * Each request gets a `TempFiles` set whose `removeAll()` runs in the handler's `finally`, so a
 * file is removed whatever ends the request (client abort, decode failure, timeout, success).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EngineError } from '../errors.js';

export interface UploadArea {
  /** The private folder every temp file goes to. */
  dir: string;
  session(): TempFiles;
  /** Removes the folder and anything left in it (at app close). */
  dispose(): void;
}

export interface TempFiles {
  /** A fresh path in the upload folder; the extension of `filename` is kept when it is plain. */
  path(filename?: string | undefined): string;
  removeAll(): Promise<void>;
}

export function createUploadArea(parent: string): UploadArea {
  const dir = mkdtempSync(path.join(parent, 'haltingvt-uploads-'));
  return {
    dir,
    session() {
      const files: string[] = [];
      return {
        path(filename) {
          // libav probes content, not names, but a plain extension (.ts, .mkv) is a useful hint.
          const ext = path.extname(filename ?? '').toLowerCase();
          const file = path.join(dir, `${randomBytes(12).toString('hex')}${/^\.[a-z0-9]{1,8}$/.test(ext) ? ext : ''}`);
          files.push(file);
          return file;
        },
        async removeAll() {
          await Promise.all(files.splice(0).map((f) => rm(f, { force: true })));
        },
      };
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Writes `source` to `file`, failing with UPLOAD_TOO_LARGE past `maxBytes`. Returns the byte count.
 * `source` is piped, not handed to pipeline(): a failed spool must not destroy the request stream,
 * or the socket goes with it and the client never sees the 413.
 */
export async function spool(source: Readable, file: string, maxBytes: number): Promise<number> {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) callback(tooLarge(maxBytes));
      else callback(null, chunk);
    },
  });
  const onError = (err: Error): void => void counter.destroy(err);
  const onClose = (): void => {
    if (!source.readableEnded) counter.destroy(new EngineError('ABORTED', 'the client went away during the upload'));
  };
  source.once('error', onError);
  source.once('close', onClose);
  source.pipe(counter);
  try {
    await pipeline(counter, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  } finally {
    source.unpipe(counter);
    source.off('error', onError);
    source.off('close', onClose);
  }
  return bytes;
}

export function tooLarge(maxBytes: number): EngineError {
  return new EngineError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes`, { maxBytes });
}
