/**
 * Uploads are streamed to temp files, never buffered whole: a video can be hundreds of MB, and an
 * MP4 with its moov atom at the end cannot be decoded from a pipe, only from a seekable file.
 * Each request gets a `TempFiles` set whose `removeAll()` runs in the handler's `finally`, so a
 * file is removed whatever ends the request (client abort, decode failure, timeout, success).
 *
 * Each process spools into its own folder, named after the host and pid that own it. A process
 * killed before it could clean up (SIGKILL, OOM) leaves its folder behind; the next start in the
 * same UPLOAD_DIR removes the folders of processes of this host that are gone (`sweepLeftovers`).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { EngineError } from '../errors.js';

export interface UploadArea {
  /** The private folder every temp file goes to. */
  dir: string;
  session(): TempFiles;
  /** Bytes spooled and files holding them, summed over requests not finished yet (metrics). */
  usage(): { files: number; bytes: number };
  /** Removes the folder and anything left in it (at app close). */
  dispose(): void;
}

export interface TempFiles {
  /** A fresh path in the upload folder; the extension of `filename` is kept when it is plain. */
  path(filename?: string | undefined): string;
  /** A new folder, removed with everything in it by removeAll() (a live stream's windows). */
  folder(): string;
  /** Removes one file early (a window answered); never throws. */
  remove(file: string): Promise<void>;
  /**
   * Writes `source` to `file` (from path()), failing with UPLOAD_TOO_LARGE past `maxBytes`,
   * UPLOAD_STORAGE_FULL when the disk is full, ABORTED when the client goes away. Returns the byte count.
   */
  spool(source: Readable, file: string, maxBytes: number): Promise<number>;
  /** Writes a video already in memory (an OIP request's element) to `file`, counted like a spooled one. */
  write(data: Uint8Array, file: string): Promise<void>;
  removeAll(): Promise<void>;
}

/** A temp file open for writing; both calls are synchronous and throw what the file system says. */
export interface FileSink {
  write(chunk: Uint8Array): void;
  close(): void;
}

export interface UploadAreaOptions {
  /** Creates a temp file for writing (`wx`, 0600); injected by tests (a disk that fills up). */
  openFile?: ((file: string) => FileSink) | undefined;
  /** Whether a process id is alive on this host; defaults to signal 0. */
  isAlive?: ((pid: number) => boolean) | undefined;
  hostname?: string | undefined;
  pid?: number | undefined;
}

const PREFIX = 'haltingvt-uploads-';

export function createUploadArea(parent: string, options: UploadAreaOptions = {}): UploadArea {
  const open = options.openFile ?? openFileSink;
  const owner = { hostname: options.hostname ?? os.hostname(), pid: options.pid ?? process.pid };
  mkdirSync(parent, { recursive: true });
  const dir = path.join(parent, `${PREFIX}${folderOwner(owner.hostname)}.${owner.pid}.${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  const total = { files: 0, bytes: 0 };
  return {
    dir,
    session() {
      const files: string[] = [];
      const folders: string[] = [];
      const mine = { files: 0, bytes: 0 };
      // A reading abandoned at a timeout may still be writing when the request ends: it opens no
      // new file after that, its bytes are no longer counted, and its file is removed when it stops.
      let ended = false;
      return {
        path(filename) {
          // libav probes content, not names, but a plain extension (.ts, .mkv) is a useful hint.
          const ext = path.extname(filename ?? '').toLowerCase();
          const file = path.join(dir, `${randomBytes(12).toString('hex')}${/^\.[a-z0-9]{1,8}$/.test(ext) ? ext : ''}`);
          files.push(file);
          return file;
        },
        folder() {
          const folder = path.join(dir, randomBytes(12).toString('hex'));
          folders.push(folder);
          mkdirSync(folder, { mode: 0o700 });
          return folder;
        },
        async remove(file) {
          removeFile(file);
        },
        async spool(source, file, maxBytes) {
          if (ended) throw new EngineError('ABORTED', 'the request has already ended');
          mine.files += 1;
          total.files += 1;
          try {
            return await spool(source, () => open(file), maxBytes, (n) => {
              if (ended) return;
              mine.bytes += n;
              total.bytes += n;
            });
          } finally {
            if (ended) removeFile(file);
          }
        },
        async write(data, file) {
          if (ended) throw new EngineError('ABORTED', 'the request has already ended');
          mine.files += 1;
          total.files += 1;
          try {
            await writeFile(file, data, { flag: 'wx', mode: 0o600 });
          } catch (err) {
            throw storageFull(err) ?? err;
          }
          mine.bytes += data.length;
          total.bytes += data.length;
        },
        async removeAll() {
          ended = true;
          // A file is one unlink (removeFile); rm() would lstat first and go through the thread pool.
          for (const file of files.splice(0)) removeFile(file);
          await Promise.all(folders.splice(0).map((f) => rm(f, { force: true, recursive: true })));
          total.files -= mine.files;
          total.bytes -= mine.bytes;
          mine.files = 0;
          mine.bytes = 0;
        },
      };
    },
    usage: () => ({ ...total }),
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Removes the upload folders under `parent` that earlier processes of this host left behind: ours
 * by name, owned by a pid that is no longer alive (or by our own pid: a restarted container gets
 * the same pid in a fresh namespace). Folders of other hosts sharing UPLOAD_DIR are never touched,
 * since their pids mean nothing here. Returns the folders removed.
 */
export function sweepLeftovers(parent: string, options: Pick<UploadAreaOptions, 'isAlive' | 'hostname' | 'pid'> & { keep?: string } = {}): string[] {
  const isAlive = options.isAlive ?? pidAlive;
  const host = folderOwner(options.hostname ?? os.hostname());
  const self = options.pid ?? process.pid;
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(`${PREFIX}${host}.`)) continue;
    const pid = Number(/^\.(\d+)\.[0-9a-f]+$/.exec(name.slice(PREFIX.length + host.length))?.[1]);
    const dir = path.join(parent, name);
    if (!Number.isInteger(pid) || dir === options.keep) continue;
    if (pid !== self && isAlive(pid)) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** The host name as it may appear in a folder name (no dots: they separate the fields). */
function folderOwner(hostname: string): string {
  return hostname.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 64) || 'host';
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, but another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes `source` to the file `open` creates, failing with UPLOAD_TOO_LARGE past `maxBytes`; returns
 * the byte count. Each chunk is written as it arrives, synchronously (openFileSink says why), from the
 * source's own 'data' events: a Transform to count bytes and stream.pipeline to a Writable cost the
 * main process 100-200 µs more per 384 KiB upload than this (same file writes, 2,000 uploads each,
 * alternated, 2-core AMD EPYC, 2026-12-07). `source` is never destroyed here: a failed spool leaves it
 * paused, since the socket goes with it and the client would never see its 413.
 */
function spool(source: Readable, open: () => FileSink, maxBytes: number, onBytes: (n: number) => void): Promise<number> {
  if (source.destroyed && !source.readableEnded) return Promise.reject(clientLeft());
  return new Promise((resolve, reject) => {
    let sink: FileSink;
    try {
      sink = open();
      // A source that has already ended sends no more events: its file is empty.
      if (source.readableEnded) {
        sink.close();
        resolve(0);
        return;
      }
    } catch (err) {
      reject(storageFull(err) ?? err);
      return;
    }
    let bytes = 0;
    const finish = (failure?: unknown): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      try {
        sink.close();
      } catch (err) {
        failure ??= err;
      }
      if (failure === undefined) return resolve(bytes);
      source.pause();
      reject(storageFull(failure) ?? failure);
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes > maxBytes) return finish(tooLarge(maxBytes));
      try {
        sink.write(chunk);
      } catch (err) {
        return finish(err);
      }
      onBytes(chunk.length);
    };
    const onEnd = (): void => finish();
    const onError = (err: Error): void => finish(asClientAbort(err));
    const onClose = (): void => {
      if (!source.readableEnded) finish(clientLeft());
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
    source.resume(); // a 'data' listener does not restart a source paused before
  });
}

/**
 * Removes a file that may never have been created (a path handed out but not written). Synchronous,
 * as openFileSink writes: an unlink is tens of microseconds, and the thread pool's round trip costs more.
 */
function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone, or never written
  }
}

/**
 * A new temp file (`wx`, 0600) written with synchronous calls, one per chunk the request delivers
 * (at most 64 KiB, tens of microseconds each). fs.createWriteStream sends every chunk, the open and
 * the close through libuv's thread pool, and waking a pool thread for each costs the main process
 * more than the write itself: spooling 6 × 64 KiB and removing the file took 0.85-1.13 CPU ms that
 * way against 0.19-0.27 ms with sync calls (400 files each, alternated, 2-core Xeon, 2026-12-07).
 */
export function openFileSink(file: string): FileSink {
  let fd: number | undefined = openSync(file, 'wx', 0o600);
  return {
    write(chunk) {
      for (let at = 0; at < chunk.length; ) at += writeSync(fd as number, chunk, at, chunk.length - at);
    },
    close() {
      if (fd === undefined) return;
      const open = fd;
      fd = undefined;
      closeSync(open);
    },
  };
}

export function tooLarge(maxBytes: number): EngineError {
  return new EngineError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes`, { maxBytes });
}

/** A full disk (or quota) is a capacity problem of this server, not the client's: 507 + Retry-After. */
function storageFull(err: unknown): EngineError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  return new EngineError('UPLOAD_STORAGE_FULL', 'no space left to store the upload', { errno: code }, { cause: err });
}

const clientLeft = (): EngineError => new EngineError('ABORTED', 'the client went away during the upload');

/** An error on the request stream is the client's connection breaking (reset, "aborted"). */
function asClientAbort(err: Error): Error {
  if (err instanceof EngineError) return err;
  return new EngineError('ABORTED', `the client went away during the upload (${err.message})`, undefined, { cause: err });
}
