/**
 * haltingvt.v1.Streams/Classify with a stock gRPC client (grpc-js over proto-loader, as any Node
 * client would load proto/streams.proto): config, then the stream's bytes as ffmpeg writes them; events
 * back as windows complete; refusals as gRPC statuses.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { credentials, loadPackageDefinition, status as Code, type ClientDuplexStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { STREAMS_PROTO_FILE, type GrpcService } from '../../src/grpc/server.js';
import { StreamEvent } from '../../src/service/stream-events.js';
import { fixture, makeApp, openTinyEngine, type TestApp } from '../http/helpers.js';
import { serveGrpc } from './helpers.js';
import { familyText } from '../helpers/metrics.js';

const definition = loadSync(STREAMS_PROTO_FILE, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const Streams = ((loadPackageDefinition(definition).haltingvt as GrpcObject).v1 as GrpcObject).Streams as ServiceClientConstructor;

let engine: Engine;
let t: TestApp;
let grpc: GrpcService;
let client: InstanceType<ServiceClientConstructor>;

beforeAll(async () => {
  engine = await openTinyEngine();
  t = makeApp(engine, { service: { streams: { max: 1, idleTimeoutMs: 2000, maxDurationS: 600 } } });
  let address: string;
  ({ grpc, address } = await serveGrpc(t));
  client = new Streams(address, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await grpc?.close(1000);
  await t?.app.close();
  await engine?.close();
});

interface WireEvent {
  event: string;
  seq: number;
  start_s: number;
  end_s: number;
  lag_s: number;
  top: Array<{ label: string; index: number; probability: number }>;
  gflops: number;
  tokens_per_layer: number[];
  json: string;
}

function classify(): { call: ClientDuplexStream<unknown, WireEvent>; events: WireEvent[]; done: Promise<ServiceError | undefined> } {
  const call = (client as unknown as { Classify(): ClientDuplexStream<unknown, WireEvent> }).Classify();
  const events: WireEvent[] = [];
  call.on('data', (e: WireEvent) => events.push(e));
  const done = new Promise<ServiceError | undefined>((resolve) => {
    call.on('error', (err: ServiceError) => resolve(err));
    call.on('end', () => resolve(undefined));
  });
  return { call, events, done };
}

/** ffmpeg as the publisher: its MPEG-TS output, chunk by chunk as it comes, into the call (held back when the call is). */
async function publishWithFfmpeg(call: ClientDuplexStream<unknown, WireEvent>, file: string): Promise<void> {
  const ffmpeg = spawn('ffmpeg', ['-v', 'error', '-i', file, '-c', 'copy', '-f', 'mpegts', '-']);
  for await (const chunk of ffmpeg.stdout) {
    if (!call.write({ chunk })) await new Promise((r) => call.once('drain', r));
  }
  call.end();
}

describe('haltingvt.v1.Streams/Classify', () => {
  it('answers each window of a pushed MPEG-TS with typed fields and the whole event, then ends', async () => {
    const { call, events, done } = classify();
    call.write({ config: { window_s: 2, top_k: 3, format: 'mpegts' } });
    await publishWithFfmpeg(call, fixture('live.mpegts'));
    expect(await done).toBeUndefined();
    const parsed = events.map((e) => StreamEvent.parse(JSON.parse(e.json)));
    expect(parsed.map((e) => e.event)).toEqual(['started', 'window', 'window', 'window', 'window', 'window', 'ended']);
    const windows = events.filter((e) => e.event === 'window');
    expect(windows.map((w) => [w.seq, w.start_s, w.end_s])).toEqual([0, 1, 2, 3, 4].map((k) => [k, k, k + 2]));
    for (const [i, w] of windows.entries()) {
      const whole = parsed[i + 1];
      if (whole?.event !== 'window') throw new Error('not a window');
      expect(w.top).toEqual(whole.top);
      expect(w.top).toHaveLength(3);
      expect(w.tokens_per_layer).toEqual(whole.tokens.per_layer);
      expect(w.gflops).toBe(whole.gflops);
    }
    expect(parsed[parsed.length - 1]).toMatchObject({ event: 'ended', reason: 'end_of_stream', summary: { windows: 5 } });
    expect(await familyText(t.registry, 'haltingvt_requests_total')).toMatch(/protocol="grpc",route="\/haltingvt.v1.Streams\/Classify",method="POST",status="200"} 1/);
  }, 30_000);

  it('refuses a call whose first message is not its config, and bad settings, with INVALID_ARGUMENT', async () => {
    const first = classify();
    first.call.write({ chunk: Buffer.from('abc') });
    const refused = await first.done;
    expect(refused?.code).toBe(Code.INVALID_ARGUMENT);
    expect(refused?.details).toMatch(/first message of a stream must be its config/);

    const bad = classify();
    bad.call.write({ config: { window_s: 100 } });
    expect((await bad.done)?.details).toMatch(/window_s/);
  });

  it('refuses a stream past MAX_STREAMS with RESOURCE_EXHAUSTED, and ends the open one with an error event when the sender goes quiet', async () => {
    const held = classify();
    held.call.write({ config: { window_s: 1 } });
    held.call.write({ chunk: readFileSync(fixture('live.mpegts')).subarray(0, 100_000) });
    while (t.service.streams.active() === 0) await new Promise((r) => setTimeout(r, 20));
    const second = classify();
    second.call.write({ config: {} });
    expect((await second.done)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    // No more bytes: the idle limit (2 s here) ends it.
    expect(await held.done).toBeUndefined();
    const parsed = held.events.map((e) => StreamEvent.parse(JSON.parse(e.json)));
    expect(parsed.find((e) => e.event === 'error')).toMatchObject({ code: 'STREAM_IDLE' });
    expect(parsed[parsed.length - 1]).toMatchObject({ event: 'ended', reason: 'idle' });
    held.call.end();
  }, 30_000);
});
