/**
 * The real server process (src/server.ts through tsx): boot with bad config, readiness, and
 * SIGTERM while a request is in flight (readiness 503, new work 503 DRAINING, the request
 * finishes, exit 0), and the grace period (exit 1 when a request never finishes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorBody } from '../../src/http/schemas.js';
import { fixture, ROOT, TINY_MODEL, until } from './helpers.js';

interface Server {
  child: ChildProcess;
  base: string;
  uploadDir: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const running: ChildProcess[] = [];
const folders: string[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

async function start(env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const uploadDir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-server-test-'));
  folders.push(uploadDir);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'server.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      GRPC_PORT: '0',
      MODEL_DIR: TINY_MODEL,
      EXECUTION_PROVIDERS: 'cpu',
      INTRA_OP_THREADS: '1',
      UPLOAD_DIR: uploadDir,
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, base: `http://127.0.0.1:${port}`, uploadDir, stdout: () => out, stderr: () => err, exited };
}

async function status(url: string): Promise<number> {
  try {
    return (await fetch(url)).status;
  } catch {
    return 0;
  }
}

/** A raw upload that sends half the video and waits for the test to send the rest. */
function halfUpload(base: string, video: Buffer): { finish: () => void; response: Promise<{ status: number; body: string }> } {
  const req = http.request(`${base}/v1/classify`, { method: 'POST', headers: { 'content-type': 'video/mp4', 'content-length': String(video.length) } });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  req.write(video.subarray(0, video.length >> 1));
  return { finish: () => req.end(video.subarray(video.length >> 1)), response };
}

async function inflight(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^haltingvt_inflight_requests (\S+)$/m.exec(text)?.[1]);
}

describe('server process', () => {
  it('refuses to start on bad config, naming the variable', async () => {
    const server = await start({ PORT: 'eighty', QUEUE_SIZE: '-3' });
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toContain('PORT="eighty"');
    expect(server.stderr()).toContain('QUEUE_SIZE="-3"');
  });

  it('exits 1 when the model cannot be loaded', async () => {
    const server = await start({ MODEL_DIR: path.join(ROOT, 'models', 'no-such-model') });
    expect(await server.exited).toBe(1);
    expect(server.stdout()).toContain('MODEL_NOT_FOUND');
  });

  it('on SIGTERM: readiness 503, new work refused, the request in flight finishes, exit 0', async () => {
    const server = await start();
    await until(async () => (await status(`${server.base}/readyz`)) === 200, 'the server to be ready', 30_000);
    const video = readFileSync(fixture('clip.mp4'));
    const upload = halfUpload(server.base, video);
    await until(async () => (await inflight(server.base)) === 1, 'the upload to be in flight');

    server.child.kill('SIGTERM');
    await until(async () => (await status(`${server.base}/readyz`)) === 503, 'readiness to fail');
    const live = await fetch(`${server.base}/healthz`);
    expect(live.status).toBe(200);
    const refused = await fetch(`${server.base}/v1/classify`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: video });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(ErrorBody.parse(await refused.json()).error.code).toBe('DRAINING');

    upload.finish();
    const answer = await upload.response;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toHaveProperty('top');
    expect(await server.exited).toBe(0);

    // JSON logs with request ids; the upload folder is gone.
    const lines = server.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.msg === 'draining')).toBe(true);
    expect(lines.some((l) => typeof l.request_id === 'string' && l.msg === 'request completed')).toBe(true);
    expect(existsSync(server.uploadDir) && readdirSync(server.uploadDir)).toEqual([]);
  });

  it('exits 1 when a request is still in flight at the end of the grace period', async () => {
    const server = await start({ SHUTDOWN_GRACE_MS: '300' });
    await until(async () => (await status(`${server.base}/readyz`)) === 200, 'the server to be ready', 30_000);
    const upload = halfUpload(server.base, readFileSync(fixture('clip.mp4')));
    upload.response.catch(() => undefined);
    await until(async () => (await inflight(server.base)) === 1, 'the upload to be in flight');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(1);
    expect(server.stdout()).toContain('grace period');
  });
});
