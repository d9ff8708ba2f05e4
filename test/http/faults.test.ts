/**
 * Faults found under load, each against the real server process: inference workers killed as
 * they start, a refusal sent before the body was read followed by SIGTERM, a full upload disk,
 * clients that go away or stall, overload, and a restart after a crash.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorBody, Readiness } from '../../src/http/schemas.js';
import { createUploadArea } from '../../src/service/uploads.js';
import { fixture, form, ROOT, until, videoPart } from './helpers.js';
import { suiteNeeds } from '../helpers/needs.js';
import { heldRequest, metric, startServer, status, tinyDiskWrapper, tmpfsMountable, workerPids, type Server } from './server-process.js';

/** NODE_OPTIONS that load test/fixtures/worker-faults.mjs into the server's inference workers. */
const workerFaults = `--import=${pathToFileURL(path.join(ROOT, 'test', 'fixtures', 'worker-faults.mjs')).href}`;

const clip = (): Buffer => readFileSync(fixture('clip.mp4'));
const ready = (server: Server): Promise<void> => until(async () => (await status(`${server.base}/readyz`)) === 200, 'the server to be ready', 30_000);
const classify = (server: Server): Promise<Response> =>
  fetch(`${server.base}/v1/classify`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: clip() });
const errorCode = async (res: Response): Promise<string> => ErrorBody.parse(await res.json()).error.code;

/** The server's inference worker once there is one that is not in `seen`; undefined if the server exits first. */
async function newWorker(server: Server, seen: Set<number>): Promise<number | undefined> {
  let found: number | undefined;
  const gone = (): boolean => server.child.exitCode !== null || server.child.signalCode !== null;
  await until(() => gone() || (found = workerPids(server.child.pid as number).find((p) => !seen.has(p))) !== undefined, 'a new inference worker', 10_000);
  if (found !== undefined) seen.add(found);
  return found;
}

function kill(pid: number | undefined): void {
  if (pid === undefined) throw new Error('the server exited');
  process.kill(pid, 'SIGKILL');
}

/** Opens a held worker's gate (worker-faults.mjs): it says ready now. */
function release(pid: number | undefined): void {
  if (pid === undefined) throw new Error('the server exited');
  process.kill(pid, 'SIGUSR2');
}

describe('inference worker killed again and again', () => {
  it('kill the worker and each replacement as it starts, three times: unready with 503 WORKER_UNAVAILABLE meanwhile, then ready again by itself', async () => {
    // Every worker holds its "ready" until SIGUSR2 (worker-faults.mjs) and says so in `held`: the
    // test kills it while it starts, however loaded the machine.
    const held = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-held-'));
    const server = await startServer({
      WORKER_RESTART_BACKOFF_MS: '300',
      WORKER_RESTART_BACKOFF_MAX_MS: '300',
      WORKER_MAX_DOWN_MS: '0',
      NODE_OPTIONS: workerFaults,
      FAULT_WORKER_HOLD_READY: held,
    });
    const seen = new Set<number>();
    const heldWorker = async (): Promise<number> => {
      let pid: number | undefined;
      await until(() => (pid = readdirSync(held).map(Number).find((p) => !seen.has(p))) !== undefined, 'a worker holding its ready', 20_000);
      seen.add(pid as number);
      return pid as number;
    };
    const first = await heldWorker();
    release(first);
    await ready(server);
    kill(first);
    for (let killed = 1; killed <= 3; killed += 1) {
      kill(await heldWorker());
      if (killed !== 1) continue;
      // No worker can run: readiness, the gauge and the answer all say so.
      await until(async () => (await status(`${server.base}/readyz`)) === 503, 'readiness to fail');
      const readiness = await fetch(`${server.base}/readyz`);
      expect(Readiness.parse(await readiness.json()).status).toBe('unavailable');
      const refused = await classify(server);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('2');
      expect(await errorCode(refused)).toBe('WORKER_UNAVAILABLE');
      expect(await metric(server.base, 'haltingvt_model_ready')).toBe(0);
      expect((await fetch(`${server.base}/v2/health/ready`)).status).toBe(503);
    }
    release(await heldWorker()); // the fourth replacement is let through
    await ready(server);
    const served = await classify(server);
    expect(served.status).toBe(200);
    expect(await metric(server.base, 'haltingvt_worker_restarts_total{pool="inference"}')).toBe(1);
    expect(await metric(server.base, 'haltingvt_worker_failed_starts_total{pool="inference"}')).toBe(3);
    expect(await metric(server.base, 'haltingvt_workers_alive{pool="inference"}')).toBe(1);
    expect(await metric(server.base, 'haltingvt_model_ready')).toBe(1);
    expect(await metric(server.base, 'haltingvt_errors_total{code="WORKER_UNAVAILABLE"}')).toBe(1);
    expect(await metric(server.base, 'haltingvt_errors_total{code="MODEL_INVALID"}')).toBeNaN();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    rmSync(held, { recursive: true, force: true });
  });

  it('past WORKER_MAX_DOWN_MS without a worker: unready, then exit 1 to be replaced', async () => {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-once-'));
    try {
      // The first worker serves; every replacement dies as it starts. The limit counts from the
      // first failure (the kill below), so however long the first start takes does not matter.
      const faults = { NODE_OPTIONS: workerFaults, FAULT_WORKER_ONCE: path.join(scratch, 'started') };
      const server = await startServer({ WORKER_RESTART_BACKOFF_MS: '100', WORKER_MAX_DOWN_MS: '3000', ...faults });
      await ready(server);
      kill(await newWorker(server, new Set()));
      await until(async () => (await status(`${server.base}/readyz`)) === 503, 'readiness to fail');
      const refused = await classify(server);
      expect(refused.status).toBe(503);
      expect(await errorCode(refused)).toBe('WORKER_UNAVAILABLE');
      expect(await server.exited).toBe(1);
      expect(server.logs().some((l) => l.msg === 'no inference worker could start within the limit; giving up')).toBe(true);
      expect(readdirSync(server.uploadDir)).toEqual([]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('refused before the body was read', () => {
  it('a two-file-part upload gets 400, its connection is closed, and SIGTERM then exits 0 without cutting anything', async () => {
    const server = await startServer({ SHUTDOWN_GRACE_MS: '20000' });
    await ready(server);
    const second = { name: 'file', filename: 'b.mp4', contentType: 'video/mp4', data: Buffer.alloc(4 * 1024 * 1024, 1) };
    const { payload, headers } = form([videoPart('a.mp4', fixture('clip.mp4')), second]);
    const held = heldRequest(server.base, '/v1/classify', { ...headers, 'content-length': String(payload.length) });
    held.req.write(payload.subarray(0, clip().length + 1024 * 1024)); // into the second file, never to the end
    const answer = await held.response;
    if (answer instanceof Error) throw answer;
    expect(answer.status).toBe(400);
    expect(answer.headers.connection).toBe('close');
    expect(ErrorBody.parse(JSON.parse(answer.body)).error.code).toBe('BAD_REQUEST');
    await held.closed; // by the server: the client never ends its body
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('cutting'))).toBe(false);
    expect(readdirSync(server.uploadDir)).toEqual([]);
  });
});

describe('full upload disk', () => {
  const check = async (server: Server): Promise<void> => {
    await ready(server);
    expect(server.uploadFolders()).toHaveLength(1); // the files below are looked for where the server writes them
    const multipart = form([videoPart('clip.mp4', fixture('clip.mp4'))]);
    for (const request of [
      { headers: { 'content-type': 'video/mp4' }, body: clip() },
      { headers: multipart.headers, body: multipart.payload },
    ]) {
      const res = await fetch(`${server.base}/v1/classify`, { method: 'POST', ...request });
      expect(res.status).toBe(507);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(await errorCode(res)).toBe('UPLOAD_STORAGE_FULL');
    }
    await until(() => server.uploadFiles().length === 0, 'the partial files to be removed');
    expect(await metric(server.base, 'haltingvt_errors_total{code="UPLOAD_STORAGE_FULL"}')).toBe(2);
    expect(await metric(server.base, 'haltingvt_upload_bytes')).toBe(0);
    // Room for a small video: the server serves again.
    const small = await fetch(`${server.base}/v1/classify`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: readFileSync(fixture('three.mp4')) });
    expect(small.status).toBe(200);
  };

  it('507 UPLOAD_STORAGE_FULL with Retry-After, no temp file left (ENOSPC injected into the server process)', async () => {
    const uploadDir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-full-disk-'));
    const nodeArgs = ['--import', path.join(ROOT, 'test', 'fixtures', 'full-disk.ts')];
    await check(await startServer({ FULL_DISK_DIR: uploadDir, FULL_DISK_BYTES: '65536' }, { uploadDir, nodeArgs }));
  });

  it.runIf(suiteNeeds({ 'a tmpfs this process may mount (root)': tmpfsMountable() }))('the same on a real 96 KiB tmpfs as UPLOAD_DIR (where this machine can mount one)', async () => {
    const uploadDir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-tmpfs-'));
    await check(await startServer({}, { uploadDir, wrap: tinyDiskWrapper(uploadDir, 96 * 1024) }));
  });
});

describe('clients that go away or stall', () => {
  it('aborted uploads count as ABORTED (499), stalled ones as REQUEST_TIMEOUT (408, in the error format), both logged at info', async () => {
    // Aborts on a server whose body deadline is far away (the default), so that a loaded machine
    // cannot turn them into timeouts; the stall on one whose deadline is short.
    const server = await startServer({});
    const stalling = await startServer({ REQUEST_TIMEOUT_MS: '1000' });
    await ready(server);
    await ready(stalling);
    const video = clip();
    // A raw upload and a multipart one, each cut by its client halfway.
    const multipart = form([videoPart('clip.mp4', fixture('clip.mp4'))]);
    for (const [headers, body] of [
      [{ 'content-type': 'video/mp4', 'content-length': String(video.length) }, video],
      [{ ...multipart.headers, 'content-length': String(multipart.payload.length) }, multipart.payload],
    ] as const) {
      const held = heldRequest(server.base, '/v1/classify', headers);
      held.req.write(body.subarray(0, body.length >> 1));
      await until(() => server.uploadFiles().length === 1, 'the upload to spool');
      held.req.destroy();
      await until(() => server.uploadFiles().length === 0, 'the temp file to be removed');
    }
    await until(async () => (await metric(server.base, 'haltingvt_errors_total{code="ABORTED"}')) === 2, 'both aborts to be counted');

    const stalled = heldRequest(stalling.base, '/v1/classify', { 'content-type': 'video/mp4', 'content-length': String(video.length) });
    stalled.req.write(video.subarray(0, 4096));
    const answer = await stalled.response;
    if (answer instanceof Error) throw answer;
    expect(answer.status).toBe(408);
    expect(answer.headers.connection).toBe('close');
    expect(ErrorBody.parse(JSON.parse(answer.body)).error).toMatchObject({ code: 'REQUEST_TIMEOUT', status: 408 });
    await until(() => stalling.uploadFiles().length === 0, 'the stalled upload to be removed');

    expect(await metric(stalling.base, 'haltingvt_errors_total{code="REQUEST_TIMEOUT"}')).toBe(1);
    expect(await metric(stalling.base, 'haltingvt_requests_total{protocol="http",route="/v1/classify",method="POST",status="408"}')).toBe(1);
    for (const s of [server, stalling]) expect(await metric(s.base, 'haltingvt_errors_total{code="INTERNAL"}')).toBeNaN();
    const refusals = [...server.logs(), ...stalling.logs()].filter((l) => l.code === 'ABORTED' || l.code === 'REQUEST_TIMEOUT');
    expect(refusals.map((l) => [l.code, l.level])).toEqual([
      ['ABORTED', 30],
      ['ABORTED', 30],
      ['REQUEST_TIMEOUT', 30],
    ]);
    expect([...server.logs(), ...stalling.logs()].filter((l) => (l.level as number) >= 50)).toEqual([]);
  });
});

describe('overload', () => {
  it('at most QUEUE_SIZE + CONCURRENCY uploads on disk; the rest get 429 before uploading and their connections closed', async () => {
    const server = await startServer({ QUEUE_SIZE: '1', CONCURRENCY: '1' });
    await ready(server);
    const video = clip();
    const half = video.length >> 1;
    const headers = { 'content-type': 'video/mp4', 'content-length': String(video.length) };
    const admitted = [heldRequest(server.base, '/v1/classify', headers), heldRequest(server.base, '/v1/classify', headers)];
    for (const a of admitted) a.req.write(video.subarray(0, half));
    await until(async () => (await metric(server.base, 'haltingvt_upload_bytes')) === 2 * half, 'both uploads to spool their first half');
    expect(await metric(server.base, 'haltingvt_uploads_in_progress')).toBe(2);

    const refused = Array.from({ length: 4 }, () => heldRequest(server.base, '/v1/classify', headers));
    for (const r of refused) r.req.write(video.subarray(0, 1024)); // the rest never comes: the answer must not wait for it
    for (const r of refused) {
      const answer = await r.response;
      if (answer instanceof Error) throw answer;
      expect(answer.status).toBe(429);
      expect(answer.headers['retry-after']).toBe('2');
      expect(answer.headers.connection).toBe('close');
      expect(ErrorBody.parse(JSON.parse(answer.body)).error.code).toBe('QUEUE_FULL');
      await r.closed;
    }
    expect(server.uploadFiles()).toHaveLength(2);
    expect(await metric(server.base, 'haltingvt_upload_files')).toBe(2);

    for (const a of admitted) a.req.end(video.subarray(half));
    for (const a of admitted) expect(await a.response).toMatchObject({ status: 200 });
    await until(async () => (await metric(server.base, 'haltingvt_uploads_in_progress')) === 0, 'the places to be given back');
    expect(await metric(server.base, 'haltingvt_upload_bytes')).toBe(0);
    expect(server.uploadFiles()).toEqual([]);
  });
});

describe('restart after a crash', () => {
  it('a start removes the upload folder a killed process left, and only folders of dead processes of this host', async () => {
    const first = await startServer();
    await ready(first);
    const video = clip();
    const held = heldRequest(first.base, '/v1/classify', { 'content-type': 'video/mp4', 'content-length': String(video.length) });
    held.req.write(video.subarray(0, video.length >> 1));
    await until(() => first.uploadFiles().length === 1, 'the upload to spool');
    first.child.kill('SIGKILL');
    await first.exited;
    const [leftover] = readdirSync(first.uploadDir);
    expect(first.uploadFiles()).toHaveLength(1);

    // Folders that are not ours to remove: another host's (same pid, it means nothing here), a live process's.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    const elsewhere = createUploadArea(first.uploadDir, { hostname: 'another-host', pid: deadPid });
    const alive = createUploadArea(first.uploadDir, { pid: process.pid });
    writeFileSync(path.join(elsewhere.dir, 'x'), 'x');
    writeFileSync(path.join(alive.dir, 'x'), 'x');

    const second = await startServer({}, { uploadDir: first.uploadDir });
    await ready(second);
    expect(existsSync(path.join(first.uploadDir, leftover as string))).toBe(false);
    expect(existsSync(elsewhere.dir)).toBe(true);
    expect(existsSync(alive.dir)).toBe(true);
    const swept = second.logs().find((l) => l.msg === 'removed upload folders left by processes that died');
    expect(swept?.folders).toEqual([path.join(first.uploadDir, leftover as string)]);
    elsewhere.dispose();
    alive.dispose();
  });
});
