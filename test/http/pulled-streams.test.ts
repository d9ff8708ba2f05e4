/**
 * Pulled streams against real publishers on loopback, each made here: ffmpeg as an HTTP and an
 * SRT listener, a live HLS folder (ffmpeg's muxer) and a finished playlist served over HTTP, and
 * GStreamer's RTSP server. The management API, events as SSE with Last-Event-ID, reconnection
 * after the publisher is killed and restarted, a stall (SIGSTOP), and each way around the source
 * policy: a playlist and a redirect pointing at a refused address, a name that resolves to one,
 * DNS rebinding, file: and concat: URLs. 127.0.0.1 is allowed; 127.0.0.2, loopback too, is not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { credentials, loadPackageDefinition, status as Code, type ClientReadableStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import type { PulledStatus } from '../../src/service/pulled.js';
import { StreamEvent } from '../../src/service/stream-events.js';
import { STREAMS_PROTO_FILE } from '../../src/grpc/server.js';
import { serveGrpc } from '../grpc/helpers.js';
import { fixture } from '../helpers/media.js';
import { freePort, listen } from '../helpers/net.js';
import { makeApp, openTinyEngine, type TestApp } from './helpers.js';

const SECRET = 'hunter2-camera-password';
let engine: Engine;
let t: TestApp;
let base: string;
const lookups: string[] = [];
let rebindAnswers = 0;
const children: ChildProcess[] = [];
const servers: http.Server[] = [];
const scratch = mkdtempSync(path.join(os.tmpdir(), 'pulled-'));

/** Requests that reached the refused address (must stay empty). */
const leaked: string[] = [];

beforeAll(async () => {
  engine = await openTinyEngine();
  t = makeApp(engine, {
    service: { streams: { max: 4, idleTimeoutMs: 5000, maxDurationS: 600 }, sources: { schemes: ['http', 'srt', 'rtsp'], allow: ['127.0.0.1/32'] } },
    resolve: async (host) => {
      lookups.push(host);
      if (host === 'inside.test') return ['127.0.0.2'];
      // Answers the allowed address to the first two lookups (admission, connection), then the refused one.
      if (host === 'rebind.test') return rebindAnswers++ < 2 ? ['127.0.0.1'] : ['127.0.0.2'];
      throw new Error('no such host');
    },
  });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  const secret = http.createServer((req, res) => {
    leaked.push(req.url ?? '');
    res.end('secret');
  });
  // Any connection at all, HTTP or not (an RTSP client's), is a leak.
  secret.on('connection', (socket: Socket) => leaked.push(`a connection from port ${socket.remotePort}`));
  await listen(secret, '127.0.0.2');
  servers.push(secret);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await t.app.close();
  await engine.close();
  for (const s of servers) s.close();
  rmSync(scratch, { recursive: true, force: true });
});

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore' });
  children.push(child);
  return child;
}

const loopClip = (): string[] => ['-v', 'error', '-re', '-stream_loop', '-1', '-i', fixture('live-small.mpegts'), '-c', 'copy'];
const httpPublisher = (port: number): ChildProcess => start('ffmpeg', [...loopClip(), '-f', 'mpegts', '-listen', '1', `http://127.0.0.1:${port}/live.ts`]);

/** A static file server over `dir` on 127.0.0.1, with extra routes. */
async function serve(dir: string, routes: Record<string, (res: http.ServerResponse) => void> = {}): Promise<number> {
  const server = http.createServer((req, res) => {
    const route = routes[req.url ?? ''];
    if (route) return route(res);
    try {
      res.end(readFileSync(path.join(dir, path.basename(req.url ?? ''))));
    } catch {
      res.writeHead(404).end();
    }
  });
  servers.push(server);
  return listen(server);
}

async function pull(body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/v1/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const status = async (id: string): Promise<PulledStatus> => (await (await fetch(`${base}/v1/streams/${id}`)).json()) as PulledStatus;

/** The stream's events from the service's log, once `until` holds (or the deadline passes). */
async function eventsUntil(id: string, until: (events: StreamEvent[]) => boolean, seconds = 20): Promise<StreamEvent[]> {
  const stream = t.service.streams.get(id);
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const { replay, stop } = stream.events.watch(undefined, () => undefined, () => undefined);
    stop();
    const events = replay.map((e) => StreamEvent.parse(e.event));
    if (until(events) || Date.now() > deadline) return events;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const count = (events: StreamEvent[], kind: StreamEvent['event']): number => events.filter((e) => e.event === kind).length;
const ended = (events: StreamEvent[]) => events.find((e): e is Extract<StreamEvent, { event: 'ended' }> => e.event === 'ended');

describe('pulled streams', () => {
  it('pull an HTTP MPEG-TS source: 201, windows, status, SSE with Last-Event-ID, reconnect after the publisher dies, delete', async () => {
    const port = await freePort();
    let publisher = httpPublisher(port);
    await new Promise((r) => setTimeout(r, 500));
    const created = await pull({ source: { url: `http://viewer:${SECRET}@127.0.0.1:${port}/live.ts` }, window_s: 1, stall_s: 3 });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect(created.json).toMatchObject({ state: 'connecting', source: `http://redacted:redacted@127.0.0.1:${port}/live.ts` });

    let events = await eventsUntil(id, (e) => count(e, 'window') >= 3);
    expect(events[0]).toMatchObject({ event: 'started', live: true, video: { codec: 'h264', width: 320, height: 240 } });
    expect(count(events, 'window')).toBeGreaterThanOrEqual(3);
    const now = await status(id);
    expect(now).toMatchObject({ state: 'live', live: true, reconnects: 0 });
    expect(now.windows).toBeGreaterThanOrEqual(3);
    const list = (await (await fetch(`${base}/v1/streams`)).json()) as { streams: PulledStatus[] };
    expect(list.streams.map((s) => s.id)).toContain(id);

    // SSE from event 2 on: the replay starts at id 3, then new events come as they happen.
    const controller = new AbortController();
    const sse = await fetch(`${base}/v1/streams/${id}/events`, { headers: { 'last-event-id': '2' }, signal: controller.signal });
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = sse.body!.getReader();
    let text = '';
    while ((text.match(/\n\n/g) ?? []).length < 4) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const blocks = text.split('\n\n').filter(Boolean);
    expect(blocks[0]).toMatch(/^id: 3\nevent: \w+\ndata: \{/);
    for (const block of blocks.slice(0, 4)) StreamEvent.parse(JSON.parse((/data: (.*)/.exec(block) as RegExpExecArray)[1] as string));

    // The publisher dies and comes back: reconnecting, then resumed with the time lost.
    publisher.kill('SIGKILL');
    await eventsUntil(id, (e) => count(e, 'reconnecting') >= 1);
    await new Promise((r) => setTimeout(r, 1000));
    publisher = httpPublisher(port);
    events = await eventsUntil(id, (e) => count(e, 'resumed') >= 1, 30);
    const resumed = events.find((e) => e.event === 'resumed');
    expect(resumed).toMatchObject({ event: 'resumed' });
    expect((resumed as { gap_s: number }).gap_s).toBeGreaterThan(0.5);
    const windowsBefore = count(events, 'window');
    events = await eventsUntil(id, (e) => count(e, 'window') > windowsBefore);
    expect(count(events, 'window')).toBeGreaterThan(windowsBefore);

    // Stopped publisher: no packet for stall_s, a `stalled` reconnection.
    // (Only a stall from here: on a loaded machine the kill above may itself have been seen as one.)
    const stoppedAt = Date.now();
    const stalled = (e: StreamEvent[]): boolean => e.some((x) => x.event === 'reconnecting' && x.reason === 'stalled' && Date.parse(x.at) >= stoppedAt);
    publisher.kill('SIGSTOP');
    events = await eventsUntil(id, stalled, 15);
    expect(stalled(events)).toBe(true);
    publisher.kill('SIGKILL');
    const after = await status(id);
    expect(after.reconnects).toBeGreaterThanOrEqual(2);
    expect(after.gap_s).toBeGreaterThan(0);

    expect((await fetch(`${base}/v1/streams/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${base}/v1/streams/${id}`)).status).toBe(404);
    // The password appears nowhere: not in logs, events or status.
    expect(JSON.stringify(t.logs)).not.toContain(SECRET);
    expect(JSON.stringify(events)).not.toContain(SECRET);
    expect(JSON.stringify(after)).not.toContain(SECRET);
  }, 120_000);

  it('read a finished playlist whole, without drops, and end cleanly; follow a live HLS folder from its live edge', async () => {
    const dir = mkdtempSync(path.join(scratch, 'hls-'));
    start('ffmpeg', ['-v', 'error', '-i', fixture('live-small.mpegts'), '-c', 'copy', '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', path.join(dir, 'vod.m3u8')]);
    await new Promise((r) => setTimeout(r, 1500));
    const port = await serve(dir);
    const vod = await pull({ source: { url: `http://127.0.0.1:${port}/vod.m3u8` }, window_s: 1, stride_s: 0.5 });
    expect(vod.status).toBe(201);
    const events = await eventsUntil(vod.json.id as string, (e) => ended(e) !== undefined, 60);
    expect(events[0]).toMatchObject({ event: 'started', live: false, policy: 'block' });
    expect(ended(events)).toMatchObject({ reason: 'end_of_stream', summary: { dropped: 0 } });
    // A 3 s clip, windows of 1 s every 0.5 s: starts 0, 0.5 … 2.5 (the last ones partial or not), none lost.
    expect(count(events, 'window')).toBeGreaterThanOrEqual(5);
    expect(count(events, 'dropped')).toBe(0);

    const live = mkdtempSync(path.join(scratch, 'live-'));
    start('ffmpeg', [...loopClip(), '-f', 'hls', '-hls_time', '1', '-hls_list_size', '4', '-hls_flags', 'delete_segments', path.join(live, 'live.m3u8')]);
    await new Promise((r) => setTimeout(r, 3000));
    const livePort = await serve(live);
    const hls = await pull({ source: { url: `http://127.0.0.1:${livePort}/live.m3u8` }, window_s: 1 });
    const liveEvents = await eventsUntil(hls.json.id as string, (e) => count(e, 'window') >= 2, 30);
    expect(liveEvents[0]).toMatchObject({ event: 'started', live: true, policy: 'drop_oldest' });
    expect(count(liveEvents, 'window')).toBeGreaterThanOrEqual(2);
    await t.service.streams.remove(hls.json.id as string);
  }, 120_000);

  it('pull SRT (ffmpeg as listener) and RTSP (GStreamer\'s server, TCP and UDP)', async () => {
    const srtPort = await freePort();
    start('ffmpeg', [...loopClip(), '-f', 'mpegts', `srt://127.0.0.1:${srtPort}?mode=listener`]);
    await new Promise((r) => setTimeout(r, 500));
    const srt = await pull({ source: { url: `srt://127.0.0.1:${srtPort}` }, window_s: 1 });
    expect(srt.status).toBe(201);
    const srtEvents = await eventsUntil(srt.json.id as string, (e) => count(e, 'window') >= 2, 30);
    expect(count(srtEvents, 'window')).toBeGreaterThanOrEqual(2);
    await t.service.streams.remove(srt.json.id as string);

    const rtspPort = await freePort();
    const server = start('/usr/bin/python3', [path.join(import.meta.dirname, '..', 'fixtures', 'rtsp-server.py'), String(rtspPort), fixture('live-small.mpegts')]);
    void server;
    await new Promise((r) => setTimeout(r, 1500));
    for (const transport of ['tcp', 'udp'] as const) {
      const rtsp = await pull({ source: { url: `rtsp://127.0.0.1:${rtspPort}/live`, rtsp_transport: transport }, window_s: 1 });
      expect(rtsp.status).toBe(201);
      const events = await eventsUntil(rtsp.json.id as string, (e) => count(e, 'window') >= 2, 30);
      expect(events[0]).toMatchObject({ event: 'started', video: { codec: 'h264' } });
      expect(count(events, 'window')).toBeGreaterThanOrEqual(2);
      await t.service.streams.remove(rtsp.json.id as string);
    }
  }, 120_000);
});

describe('haltingvt.v1.Streams/Watch (grpc-js as the client)', () => {
  it('sends a pulled stream\'s events after after_id, then each new one, and ends after `ended`; NOT_FOUND for an unknown id', async () => {
    const definition = loadSync(STREAMS_PROTO_FILE, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    const Streams = ((loadPackageDefinition(definition).haltingvt as GrpcObject).v1 as GrpcObject).Streams as ServiceClientConstructor;
    const { grpc, address } = await serveGrpc(t);
    const client = new Streams(address, credentials.createInsecure());
    const watch = (request: { id: string; after_id?: number }): ClientReadableStream<{ id: number; json: string }> =>
      (client as unknown as { Watch(r: typeof request): ClientReadableStream<{ id: number; json: string }> }).Watch(request);
    try {
      const port = await freePort();
      httpPublisher(port);
      await new Promise((r) => setTimeout(r, 500));
      const id = (await pull({ source: { url: `http://127.0.0.1:${port}/live.ts` }, window_s: 1 })).json.id as string;
      await eventsUntil(id, (e) => count(e, 'window') >= 1);
      const call = watch({ id, after_id: 1 });
      const got: Array<{ id: number; event: StreamEvent }> = [];
      let deleting: Promise<void> | undefined;
      const finished = new Promise<void>((resolve, reject) => {
        call.on('data', (m) => {
          got.push({ id: m.id, event: StreamEvent.parse(JSON.parse(m.json)) });
          if (got.filter((g) => g.event.event === 'window').length === 3 && !deleting) deleting = t.service.streams.remove(id);
        });
        call.on('end', resolve);
        call.on('error', reject);
      });
      await finished;
      await deleting;
      expect(got[0]?.id).toBe(2);
      expect(got.map((g) => g.id)).toEqual(got.map((_, i) => i + 2));
      expect(got.at(-1)?.event).toMatchObject({ event: 'ended', reason: 'deleted' });
      const missing = await new Promise<ServiceError>((resolve) => {
        const c = watch({ id: '0123456789abcdef' });
        c.on('data', () => undefined);
        c.on('error', resolve);
      });
      expect(missing.code).toBe(Code.NOT_FOUND);
    } finally {
      client.close();
      await grpc.close(1000);
    }
  }, 60_000);
});

describe('the source policy holds below the decoder', () => {
  it('refuses schemes and addresses before connecting: file:, concat:, a refused address, a name that resolves to one', async () => {
    for (const url of ['file:///etc/passwd', 'concat:http://127.0.0.1/a.ts|http://127.0.0.1/b.ts', 'gopher://127.0.0.1/x', 'http://127.0.0.2:80/x.ts', 'http://[::ffff:127.0.0.2]/x.ts', 'http://inside.test/x.ts', 'rtsp://169.254.169.254/x']) {
      const refused = await pull({ source: { url } });
      expect(refused.status, url).toBe(403);
      expect(refused.json).toMatchObject({ error: { code: 'SOURCE_NOT_ALLOWED' } });
    }
    expect((await pull({ source: { url: 'http://nowhere.test/x.ts' } })).json).toMatchObject({ error: { code: 'SOURCE_UNREACHABLE' } });
    expect(leaked).toEqual([]);
  });

  it('refuses what the decoder opens later: a playlist\'s segment, an HTTP and an RTSP redirect to a refused address, and a name rebound to one', async () => {
    const secretPort = (servers[0]?.address() as AddressInfo).port;
    const target = `http://127.0.0.2:${secretPort}/secret.ts`;
    const port = await serve(scratch, {
      '/evil.m3u8': (res) => res.end(`#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n${target}\n#EXT-X-ENDLIST\n`),
      '/redirect.ts': (res) => res.writeHead(302, { location: target }).end(),
    });
    for (const url of [`http://127.0.0.1:${port}/evil.m3u8`, `http://127.0.0.1:${port}/redirect.ts`, `http://rebind.test:${port}/redirect.ts`]) {
      const created = await pull({ source: { url }, give_up_s: 5 });
      expect(created.status, url).toBe(201);
      const events = await eventsUntil(created.json.id as string, (e) => ended(e) !== undefined, 30);
      expect(events.find((e) => e.event === 'error'), url).toMatchObject({ code: 'SOURCE_NOT_ALLOWED' });
      expect(ended(events)?.reason).toBe('error');
    }
    // An RTSP server that redirects: libav follows it on its own, below any proxy; the connect guard refuses it.
    const rtsp = net.createServer((socket) =>
      socket.on('data', (data) => {
        const cseq = /CSeq: *(\d+)/i.exec(data.toString())?.[1] ?? '1';
        socket.write(`RTSP/1.0 302 Moved Temporarily\r\nCSeq: ${cseq}\r\nLocation: rtsp://127.0.0.2:${secretPort}/secret\r\n\r\n`);
      }),
    );
    const rtspPort = await new Promise<number>((resolve) => rtsp.listen(0, '127.0.0.1', () => resolve((rtsp.address() as AddressInfo).port)));
    const redirected = await pull({ source: { url: `rtsp://127.0.0.1:${rtspPort}/live` }, give_up_s: 5 });
    expect(redirected.status).toBe(201);
    const rtspEvents = await eventsUntil(redirected.json.id as string, (e) => ended(e) !== undefined, 30);
    expect(rtspEvents.find((e) => e.event === 'error')).toMatchObject({ code: 'SOURCE_NOT_ALLOWED' });
    expect(ended(rtspEvents)?.reason).toBe('error');
    rtsp.close();
    // The rebound name was looked up again by the proxy itself, which connected to what it checked.
    expect(lookups.filter((h) => h === 'rebind.test').length).toBeGreaterThanOrEqual(3);
    expect(leaked).toEqual([]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/haltingvt_source_refusals_total\{stage="egress"\} [1-9]/);
  }, 120_000);

  it('is off unless the operator lists schemes', async () => {
    const off = makeApp(engine);
    const res = await off.app.inject({ method: 'POST', url: '/v1/streams', headers: { 'content-type': 'application/json' }, payload: { source: { url: 'http://127.0.0.1/x.ts' } } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: { code: 'SOURCE_NOT_ALLOWED', message: expect.stringMatching(/PULL_SCHEMES/) } });
    await off.app.close();
  });
});
