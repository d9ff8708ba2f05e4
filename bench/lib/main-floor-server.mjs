/**
 * One of the main-floor servers (bench/lib/main-floor.ts, used by bench/main-floor.ts and target 5g
 * of `make bench`), forked with an IPC channel; it sends `{ port }` once
 * listening. Plain JavaScript on dist/ (`make build`), so that no TypeScript loader runs in the
 * process whose CPU is measured. MODE says which:
 * - `bare`: node:http doing what the service's main process must do per upload, no more: the body
 *   to a temp file with synchronous writes, two IPC round trips to a child (main-floor-child.mjs), a
 *   1 KB JSON answer;
 * - `canned`: the service as server.ts builds it (fastify, admission, spool, queue, metrics, the
 *   answer), its engine's classify replaced by an answer it gave once for real;
 * - `service`: the same with the real engine.
 * GAP_MS: how long the child (bare) or the canned classify (canned) waits before answering, as a
 * video's decoding and inference would.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const mode = process.env.MODE ?? 'bare';
const gapMs = Number(process.env.GAP_MS ?? 0);
const send = (message) => void process.send?.(message);

if (mode === 'bare') {
  const child = fork(path.join(import.meta.dirname, 'main-floor-child.mjs'), [], { serialization: 'advanced', env: { ...process.env, GAP_MS: String(gapMs / 2) } });
  const pending = new Map();
  let next = 0;
  child.on('message', (m) => {
    pending.get(m.id)?.();
    pending.delete(m.id);
  });
  const call = (message) =>
    new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      child.send({ id, ...message });
    });
  const answer = JSON.stringify({ request_id: randomBytes(18).toString('hex'), top: Array.from({ length: 5 }, (_, i) => ({ label: `label ${i}`, index: i, probability: 0.1 * i })), tokens: { per_layer: Array(12).fill(1568), total: 18816 }, timings_s: { decode: 0.04, infer: 0.02 } });
  const server = http.createServer((req, res) => {
    const file = path.join(os.tmpdir(), `main-floor-${randomBytes(8).toString('hex')}`);
    const fd = openSync(file, 'wx', 0o600);
    req.on('data', (chunk) => {
      for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
    });
    req.on('end', async () => {
      closeSync(fd);
      await call({ stage: 'decode', file });
      await call({ stage: 'infer', file });
      unlinkSync(file);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  });
  server.listen(0, '127.0.0.1', () => send({ port: server.address().port }));
} else {
  // The service's modules only here: the bare server loads none of them.
  const { pino } = await import('pino');
  const { buildApp } = await import('../../dist/app.js');
  const { loadConfig } = await import('../../dist/config.js');
  const { createEngine } = await import('../../dist/engine/index.js');
  const { createService } = await import('../../dist/service/index.js');
  const { createRegistry } = await import('../../dist/service/metrics.js');
  const { createUploadArea } = await import('../../dist/service/uploads.js');
  // The CPU provider, as bench/lib/service.ts's servers run it: on a GPU host 5g measures the same engine.
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn', EXECUTION_PROVIDERS: 'cpu' });
  const logger = pino({ level: 'warn' });
  const real = await createEngine({ modelDir: config.modelDir, config: config.engine, logger });
  let engine = real;
  if (mode === 'canned') {
    const clip = process.env.CLIP;
    const framesFile = path.join(os.tmpdir(), `main-floor-frames-${process.pid}`);
    const canned = await real.classify(clip, real.validateKnobs({}), { framesFile, enqueuedAt: performance.now() });
    unlinkSync(framesFile);
    engine = Object.create(real);
    engine.classify = async (_file, _knobs, options) => {
      options?.onDecoded?.();
      await new Promise((resolve) => (gapMs > 0 ? setTimeout(resolve, gapMs) : setImmediate(resolve)));
      return canned;
    };
  }
  const service = createService({ config: config.service, engine, logger, registry: createRegistry(), uploads: createUploadArea(config.service.uploadDir) });
  const app = buildApp({ service, config: config.http, logger });
  await app.listen({ port: 0, host: '127.0.0.1' });
  send({ port: app.server.address().port });
}
