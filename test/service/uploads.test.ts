import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { isEngineError } from '../../src/errors.js';
import { createUploadArea, sweepLeftovers } from '../../src/service/uploads.js';
import { fullDiskFile } from '../fixtures/full-disk.js';

const roots: string[] = [];
const root = (): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-upload-test-'));
  roots.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of roots.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('upload area', () => {
  it('counts the files and bytes of unfinished requests, and forgets them when a request ends', async () => {
    const area = createUploadArea(root());
    const a = area.session();
    const b = area.session();
    await a.spool(Readable.from([Buffer.alloc(1000)]), a.path('x.mp4'), 10_000);
    await b.spool(Readable.from([Buffer.alloc(300), Buffer.alloc(200)]), b.path(), 10_000);
    expect(area.usage()).toEqual({ files: 2, bytes: 1500 });
    await a.removeAll();
    expect(area.usage()).toEqual({ files: 1, bytes: 500 });
    await b.removeAll();
    expect(area.usage()).toEqual({ files: 0, bytes: 0 });
    expect(readdirSync(area.dir)).toEqual([]);
    // A session that has ended opens nothing more.
    await expect(a.spool(Readable.from([Buffer.alloc(1)]), a.path(), 10)).rejects.toSatisfy((e) => isEngineError(e, 'ABORTED'));
    expect(readdirSync(area.dir)).toEqual([]);
  });

  it('a full disk fails the spool with UPLOAD_STORAGE_FULL; the partial file goes with the request', async () => {
    const area = createUploadArea(root(), { openFile: (file) => fullDiskFile(file, 4096) });
    const temps = area.session();
    const error = await temps.spool(Readable.from([Buffer.alloc(4096), Buffer.alloc(4096)]), temps.path(), 1e6).catch((e: unknown) => e);
    expect(isEngineError(error, 'UPLOAD_STORAGE_FULL')).toBe(true);
    expect(readdirSync(area.dir)).toHaveLength(1);
    await temps.removeAll();
    expect(readdirSync(area.dir)).toEqual([]);
    expect(area.usage()).toEqual({ files: 0, bytes: 0 });
  });
});

describe('spooling a request stream', () => {
  it('is ABORTED when the source closes before its end or was destroyed before the spool, and leaves no listener behind', async () => {
    const temps = createUploadArea(root()).session();
    const cut = new PassThrough();
    const spooling = temps.spool(cut, temps.path(), 1e6);
    cut.write(Buffer.alloc(100));
    cut.destroy();
    await expect(spooling).rejects.toSatisfy((e) => isEngineError(e, 'ABORTED'));
    expect(cut.listenerCount('data') + cut.listenerCount('end')).toBe(0);
    const gone = new PassThrough();
    gone.destroy();
    await expect(temps.spool(gone, temps.path(), 1e6)).rejects.toSatisfy((e) => isEngineError(e, 'ABORTED'));
    await temps.removeAll();
  });

  it('stops at the limit with UPLOAD_TOO_LARGE and leaves the source paused, not destroyed (the 413 still reaches the client)', async () => {
    const temps = createUploadArea(root()).session();
    const source = new PassThrough();
    const spooling = temps.spool(source, temps.path(), 1000);
    source.write(Buffer.alloc(600));
    source.write(Buffer.alloc(600));
    await expect(spooling).rejects.toSatisfy((e) => isEngineError(e, 'UPLOAD_TOO_LARGE'));
    expect(source.destroyed).toBe(false);
    expect(source.isPaused()).toBe(true);
    await temps.removeAll();
  });

  it('reads a source paused before the spool, and writes an empty file for one that has already ended', async () => {
    const temps = createUploadArea(root()).session();
    const paused = new PassThrough();
    paused.pause();
    paused.end(Buffer.alloc(300));
    expect(await temps.spool(paused, temps.path(), 1e6)).toBe(300);
    const ended = Readable.from([]);
    ended.resume();
    await new Promise((resolve) => ended.once('end', resolve));
    const file = temps.path();
    expect(await temps.spool(ended, file, 1e6)).toBe(0);
    expect(existsSync(file)).toBe(true);
    await temps.removeAll();
  });
});

describe('sweepLeftovers', () => {
  it('removes the folders of dead processes of this host (and of our own pid: a restarted container), nothing else', () => {
    const parent = root();
    const alive = new Set([100, 200]);
    const folder = (hostname: string, pid: number): string => createUploadArea(parent, { hostname, pid }).dir;
    const dead = folder('web-1', 300);
    const previousSelf = folder('web-1', 100);
    const live = folder('web-1', 200);
    const otherHost = folder('web-2', 300);
    const current = folder('web-1', 100);
    const unrelated = path.join(parent, 'haltingvt-uploads-web-1.notapid.abc');
    mkdirSync(unrelated);
    writeFileSync(path.join(parent, 'someone-elses-file'), '');
    writeFileSync(path.join(dead, 'upload.mp4'), 'x');

    const removed = sweepLeftovers(parent, { hostname: 'web-1', pid: 100, isAlive: (pid) => alive.has(pid), keep: current });
    expect(removed.sort()).toEqual([dead, previousSelf].sort());
    for (const kept of [live, otherHost, current, unrelated, path.join(parent, 'someone-elses-file')]) expect(existsSync(kept)).toBe(true);
    expect(sweepLeftovers(path.join(parent, 'missing'))).toEqual([]);
  });
});
