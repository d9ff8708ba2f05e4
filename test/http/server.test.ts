/**
 * The real server process (src/server.ts through tsx): boot with bad config, readiness, and
 * SIGTERM while a request is in flight (readiness 503, new work 503 DRAINING, the request
 * finishes, exit 0), the grace period (a request that never finishes is cut, exit 0), and a
 * second signal (exit 1 at once, upload folder removed). Faults under load: faults.test.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorBody } from '../../src/http/schemas.js';
import { fixture, ROOT, until } from './helpers.js';
import { startServer as start, status } from './server-process.js';

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

  it('cuts a request still in flight at the end of the grace period and exits 0, its upload folder removed', async () => {
    const server = await start({ SHUTDOWN_GRACE_MS: '4000' }); // cut at 2 s; closing then has 2 s
    await until(async () => (await status(`${server.base}/readyz`)) === 200, 'the server to be ready', 30_000);
    const upload = halfUpload(server.base, readFileSync(fixture('clip.mp4')));
    upload.response.catch(() => undefined);
    await until(async () => (await inflight(server.base)) === 1, 'the upload to be in flight');
    expect(server.uploadFiles()).toHaveLength(1);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.logs().some((l) => l.msg === 'cutting the requests still in flight at the end of the grace period' && l.inflight === 1)).toBe(true);
    expect(readdirSync(server.uploadDir)).toEqual([]);
  });

  it('a second signal exits 1 at once and still removes the upload folder', async () => {
    const server = await start();
    await until(async () => (await status(`${server.base}/readyz`)) === 200, 'the server to be ready', 30_000);
    const upload = halfUpload(server.base, readFileSync(fixture('clip.mp4')));
    upload.response.catch(() => undefined);
    await until(async () => (await inflight(server.base)) === 1, 'the upload to be in flight');
    server.child.kill('SIGTERM');
    await until(() => server.logs().some((l) => l.msg === 'draining'), 'the drain to start');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(1);
    expect(server.logs().some((l) => l.msg === 'second signal (SIGTERM): exiting now')).toBe(true);
    expect(readdirSync(server.uploadDir)).toEqual([]);
  });
});
