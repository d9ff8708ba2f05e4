/**
 * POST /v1/streams with real publishers: ffmpeg writing a live MPEG-TS into curl's chunked upload
 * (the README's command), and Node's own HTTP client for the faults (a sender that stops, one that
 * leaves). Every event is checked against the zod schema the route is documented by.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { StreamEvent } from '../../src/service/stream-events.js';
import { fixture } from '../helpers/media.js';
import { makeApp, openTinyEngine, TEST_DECODER_NICE, type TestApp } from './helpers.js';
import { familyText } from '../helpers/metrics.js';

let engine: Engine;
let t: TestApp;
let base: string;

beforeAll(async () => {
  engine = await openTinyEngine();
  t = makeApp(engine, { service: { streams: { max: 2, idleTimeoutMs: 1500, maxDurationS: 600 } } });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await t.app.close();
  await engine.close();
});

/** `ffmpeg … -f mpegts - | curl -T - …` as the README has it; the events curl printed, parsed. */
async function publish(file: string, query: string, options: { realTime?: boolean; copy?: boolean; accept?: string } = {}): Promise<string> {
  const input = options.copy === false ? `cat '${file}'` : `ffmpeg -v error ${options.realTime ? '-re ' : ''}-i '${file}' -c copy -f mpegts -`;
  const contentType = options.copy === false ? 'application/octet-stream' : 'video/mp2t';
  const accept = options.accept ? `-H 'accept: ${options.accept}'` : '';
  const child = spawn('sh', ['-c', `${input} | curl -sS -N -X POST -T - -H 'content-type: ${contentType}' ${accept} '${base}/v1/streams?${query}'`]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`publisher exited ${code}: ${err}`);
  return out;
}

const ndjson = (text: string): StreamEvent[] => text.trim().split('\n').map((line) => StreamEvent.parse(JSON.parse(line)));

function sse(text: string): StreamEvent[] {
  return text
    .trim()
    .split('\n\n')
    .map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      const event = StreamEvent.parse(JSON.parse((dataLine as string).replace(/^data: /, '')));
      expect(eventLine).toBe(`event: ${event.event}`);
      return event;
    });
}

const windows = (events: StreamEvent[]) => events.filter((e): e is Extract<StreamEvent, { event: 'window' }> => e.event === 'window');

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Live stream workers that this test process started and that still run. */
function liveWorkerPids(): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid,ppid,args'], { encoding: 'utf8' }).stdout;
  return ps
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, ...args]) => ppid === String(process.pid) && /live\/worker\.(ts|js)/.test(args.join(' ')))
    .map(([pid]) => Number(pid));
}
const liveWorkers = (): number => liveWorkerPids().length;

describe('POST /v1/streams', () => {
  it('answers a live MPEG-TS from ffmpeg through curl window by window while it is sent, then ends with a summary', async () => {
    const events = ndjson(await publish(fixture('live.mpegts'), 'window_s=2&top_k=2', { realTime: true }));
    const uploadEnded = Date.now();
    expect(events[0]).toMatchObject({ event: 'started', window_s: 2, stride_s: 1, policy: 'block', video: { codec: 'h264', width: 640, height: 360, fps: 25 } });
    const ws = windows(events);
    // 6 s of stream, windows of 2 s every second: starts at 0..4 s.
    expect(ws.map((w) => [w.seq, w.start_s, w.end_s])).toEqual([0, 1, 2, 3, 4].map((k) => [k, k, k + 2]));
    for (const w of ws) {
      expect(w.frames.count).toBe(50);
      expect(w.frames.sampled_s.every((s) => s >= w.start_s && s < w.end_s)).toBe(true);
      expect(w.top).toHaveLength(2);
      expect(w.tokens.per_layer.length).toBeGreaterThan(0);
      expect(w.gflops).toBeGreaterThan(0);
      // The window was answered soon after its last frame arrived, not at the end of the upload.
      expect(w.lag_s).toBeLessThan(1);
    }
    // The first window (2 s of a 6 s stream sent in real time) was out long before the upload ended.
    expect(Date.parse(ws[0]?.emitted_at as string)).toBeLessThan(uploadEnded - 2500);
    const ended = events[events.length - 1];
    expect(ended).toMatchObject({ event: 'ended', reason: 'end_of_stream', summary: { windows: 5, dropped: 0, stream_s: 6 } });
    if (ended?.event !== 'ended') throw new Error('no ended event');
    expect(ended.summary.gflops).toBeCloseTo(ws.reduce((s, w) => s + w.gflops, 0), 5);
    expect(ended.summary.timeline[0]).toEqual({ from_s: 0, label: ws[0]?.top[0]?.label });
    // Non-reference frames no window takes were never decoded.
    expect(ended.summary.decoded_frames).toBeLessThan(150);
    await until(() => t.service.streams.active() === 0 && t.tempFiles().length === 0, 'the stream to be cleaned up');
    const metrics = await t.registry.metrics();
    expect(metrics).toMatch(/haltingvt_stream_windows_total\{outcome="classified"\} [5-9]/);
    expect(metrics).toContain('haltingvt_streams_active 0');
    expect(metrics).toMatch(/haltingvt_stream_window_lag_seconds_count [5-9]/);
  }, 30_000);

  it('speaks server-sent events to a client that accepts them, with emit=changes and averaging', async () => {
    const events = sse(await publish(fixture('live.mpegts'), 'window_s=1&stride_s=1&emit=changes&average=3', { accept: 'text/event-stream' }));
    const ws = windows(events);
    expect(ws.length).toBeGreaterThan(0);
    for (const w of ws) expect(w.averaged?.windows).toBeGreaterThan(0);
    // Only changes of the averaged top label are sent.
    const labels = ws.map((w) => w.averaged?.top[0]?.label);
    for (let i = 1; i < labels.length; i++) expect(labels[i]).not.toBe(labels[i - 1]);
    const ended = events[events.length - 1];
    expect(ended).toMatchObject({ event: 'ended', reason: 'end_of_stream', summary: { windows: 6 } });
  }, 30_000);

  it.each([['live-fragmented.mp4'], ['live.webm']])('takes %s pushed as it is', async (name) => {
    const events = ndjson(await publish(fixture(name), 'window_s=1', { copy: false }));
    expect(windows(events).length).toBeGreaterThanOrEqual(5);
    expect(events[events.length - 1]).toMatchObject({ event: 'ended', reason: 'end_of_stream' });
  }, 30_000);

  it('refuses before reading: a non-video body, bad settings, a bad knob', async () => {
    const text = await t.app.inject({ method: 'POST', url: '/v1/streams', headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    expect(text.statusCode).toBe(415);
    const window = await t.app.inject({ method: 'POST', url: '/v1/streams?window_s=0.1', headers: { 'content-type': 'video/mp2t' }, payload: 'x' });
    expect(window.statusCode).toBe(400);
    expect(window.json().error.message).toMatch(/window_s/);
    const knob = await t.app.inject({ method: 'POST', url: '/v1/streams?keep_ratio=7', headers: { 'content-type': 'video/mp2t' }, payload: 'x' });
    expect(knob.json().error).toMatchObject({ code: 'BAD_KNOB', status: 400 });
    const unknown = await t.app.inject({ method: 'POST', url: '/v1/streams?policy=wait', headers: { 'content-type': 'video/mp2t' }, payload: 'x' });
    expect(unknown.statusCode).toBe(400);
  });

  it('answers garbage with an error event and a clean end, and the next stream is fine', async () => {
    const garbage = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));
    const response = await fetch(`${base}/v1/streams`, { method: 'POST', headers: { 'content-type': 'video/mp2t' }, body: garbage });
    expect(response.status).toBe(200);
    const events = ndjson(await response.text());
    expect(events.map((e) => e.event)).toEqual(['error', 'ended']);
    expect(events[0]).toMatchObject({ event: 'error', status: 422 });
    expect(events[1]).toMatchObject({ event: 'ended', reason: 'error' });
    const after = ndjson(await publish(fixture('live.mpegts'), 'window_s=2'));
    expect(after[after.length - 1]).toMatchObject({ event: 'ended', reason: 'end_of_stream', summary: { windows: 5 } });
  }, 30_000);

  it('ends a stream whose frame size changes with STREAM_CHANGED after the windows before it', async () => {
    const body = Buffer.concat([readFileSync(fixture('live.mpegts')), readFileSync(fixture('live-small.mpegts'))]);
    const events = ndjson(await (await fetch(`${base}/v1/streams?window_s=1&stride_s=1`, { method: 'POST', headers: { 'content-type': 'video/mp2t' }, body })).text());
    expect(windows(events).length).toBeGreaterThanOrEqual(4);
    expect(events.find((e) => e.event === 'error')).toMatchObject({ code: 'STREAM_CHANGED', status: 422 });
    expect(events[events.length - 1]).toMatchObject({ event: 'ended', reason: 'error' });
    await until(() => t.service.streams.active() === 0, 'the stream to end');
  }, 30_000);

  it('goes on past REQUEST_TIMEOUT_MS, which bounds file uploads, not live ones', async () => {
    const short = makeApp(engine, { http: { requestTimeoutMs: 1500, retryAfterS: 2, servedBy: undefined } });
    try {
      await short.app.listen({ host: '127.0.0.1', port: 0 });
      const url = `http://127.0.0.1:${(short.app.server.address() as AddressInfo).port}`;
      const child = spawn('sh', ['-c', `ffmpeg -v error -re -i '${fixture('live.mpegts')}' -c copy -f mpegts - | curl -sS -N -T - -X POST -H 'content-type: video/mp2t' '${url}/v1/streams?window_s=2'`]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((resolve) => child.on('close', resolve));
      const events = ndjson(out);
      expect(windows(events)).toHaveLength(5);
      expect(events[events.length - 1]).toMatchObject({ event: 'ended', reason: 'end_of_stream' });
    } finally {
      await short.app.close();
    }
  }, 30_000);

  it('ends cleanly when the container switches mid-stream (MPEG-TS, then WebM bytes)', async () => {
    const body = Buffer.concat([readFileSync(fixture('live.mpegts')), readFileSync(fixture('live.webm'))]);
    const response = await fetch(`${base}/v1/streams?window_s=1&stride_s=1`, { method: 'POST', headers: { 'content-type': 'video/mp2t' }, body });
    const events = ndjson(await response.text());
    // The MPEG-TS part is answered; what follows is not MPEG-TS and ends the stream one way or the other.
    expect(windows(events).length).toBeGreaterThanOrEqual(5);
    expect(events[events.length - 1]?.event).toBe('ended');
    await until(() => t.service.streams.active() === 0 && liveWorkers() === 0, 'the stream and its worker to go');
  }, 30_000);

  it('ends a sender that stops sending at the idle limit, and one that leaves at once, leaving no worker behind', async () => {
    const clip = readFileSync(fixture('live.mpegts'));
    const url = `${base}/v1/streams?window_s=1`;
    // Stops after two seconds of stream: idle.
    const idle = http.request(url, { method: 'POST', headers: { 'content-type': 'video/mp2t' } });
    let text = '';
    const answered = new Promise<void>((resolve) => idle.on('response', (res) => res.on('data', (d: Buffer) => (text += d.toString())).on('end', resolve)));
    idle.write(clip.subarray(0, Math.floor(clip.length / 3)));
    await answered;
    const events = ndjson(text);
    expect(events.find((e) => e.event === 'error')).toMatchObject({ code: 'STREAM_IDLE', status: 408 });
    expect(events[events.length - 1]).toMatchObject({ event: 'ended', reason: 'idle' });
    idle.destroy();

    // Leaves mid-stream.
    const leaving = http.request(url, { method: 'POST', headers: { 'content-type': 'video/mp2t' } });
    leaving.on('error', () => undefined);
    leaving.write(clip.subarray(0, 100_000));
    await until(() => t.service.streams.active() === 1 && liveWorkers() === 1, 'the stream to start');
    // Below the service by STREAM_DECODER_NICE: the shared inference goes first.
    expect(os.getPriority(liveWorkerPids()[0])).toBe(Math.min(19, os.getPriority() + TEST_DECODER_NICE));
    leaving.destroy();
    await until(() => t.service.streams.active() === 0 && liveWorkers() === 0 && t.tempFiles().length === 0, 'the stream, its worker and its files to go');
    expect(await familyText(t.registry, 'haltingvt_streams_total')).toMatch(/end="client_gone"\} 1/);
  }, 30_000);

  it('refuses a stream past MAX_STREAMS with 429 before reading it, and ends every stream at shutdown', async () => {
    const clip = readFileSync(fixture('live.mpegts'));
    const open = (): { request: http.ClientRequest; text: () => string; done: Promise<void> } => {
      const request = http.request(`${base}/v1/streams?window_s=1`, { method: 'POST', headers: { 'content-type': 'video/mp2t' } });
      request.on('error', () => undefined);
      let text = '';
      const done = new Promise<void>((resolve) => request.on('response', (res) => res.on('data', (d: Buffer) => (text += d.toString())).on('end', resolve)));
      request.write(clip.subarray(0, clip.length / 2));
      return { request, text: () => text, done };
    };
    const a = open();
    const b = open();
    await until(() => t.service.streams.active() === 2, 'two streams');
    const refused = await fetch(`${base}/v1/streams`, { method: 'POST', headers: { 'content-type': 'video/mp2t' }, body: 'x' });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('STREAMS_FULL');
    expect(refused.headers.get('retry-after')).toBe('2');

    await t.service.streams.endAll();
    await Promise.all([a.done, b.done]);
    for (const s of [a, b]) {
      const events = ndjson(s.text());
      expect(events[events.length - 1]).toMatchObject({ event: 'ended', reason: 'shutdown' });
      s.request.destroy();
    }
    await until(() => liveWorkers() === 0, 'the workers to go');
  }, 30_000);
});
