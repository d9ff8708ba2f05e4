/**
 * Tracing end to end, against real counterparts on loopback: the server process (with its decode
 * and inference worker processes) exports spans over OTLP to Jaeger v2, and the test reads them
 * back through Jaeger's query API; Prometheus scrapes the service's OpenMetrics and keeps its
 * exemplars. What is checked: one classify request is one span tree across the three processes
 * under the parent a client's `traceparent` names; a failing request's spans carry its error; a
 * gRPC call is traced the same way; a live stream is a trace of its own with a span per window;
 * every log line of a traced request names its trace; the duration histograms' exemplars reach
 * Prometheus and point at those traces, and the classic text exposition stays `promtool` clean.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { credentials, loadPackageDefinition, Metadata, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_FILE } from '../../src/grpc/server.js';
import { fixture } from '../helpers/media.js';
import { freePort } from '../helpers/net.js';
import { suiteNeeds } from '../helpers/needs.js';
import { startServer, type Server } from '../http/server-process.js';
import { until } from '../http/helpers.js';
import { startJaeger, startPrometheus, stopAll, type Jaeger, type Prometheus, type Span } from '../../scripts/monitoring/stack.js';

const JAEGER = process.env.JAEGER ?? '';
const has = (command: string): boolean => spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
const runs = suiteNeeds({
  'Jaeger (JAEGER=$(scripts/monitoring/build-jaeger.sh); make test builds it)': JAEGER !== '' && existsSync(JAEGER),
  'prometheus and promtool (Debian\'s prometheus package; make test installs it as root)': has('prometheus') && has('promtool'),
});

const newTrace = (): { traceId: string; parentId: string; traceparent: string } => {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  return { traceId, parentId, traceparent: `00-${traceId}-${parentId}-01` };
};
const named = (spans: Span[], name: string): Span[] => spans.filter((s) => s.name === name);
const one = (spans: Span[], name: string): Span => {
  const found = named(spans, name);
  expect(found.map((s) => s.name), `one span "${name}" among ${spans.map((s) => s.name).join(', ')}`).toEqual([name]);
  return found[0] as Span;
};
/** Jaeger shows an array attribute as its JSON. */
const numbers = (value: unknown): number[] => (typeof value === 'string' ? (JSON.parse(value) as number[]) : (value as number[]));

async function classify(base: string, file: string, traceparent: string): Promise<{ status: number; body: Record<string, any> }> {
  const form = new FormData();
  form.append('file', new Blob([readFileSync(file)]), 'clip.mp4');
  const response = await fetch(`${base}/v1/classify`, { method: 'POST', body: form, headers: { traceparent } });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe.runIf(runs)('tracing with a real collector (Jaeger over OTLP) and a real Prometheus', () => {
  let jaeger: Jaeger;
  let prometheus: Prometheus;
  let server: Server;
  let grpcPort: number;
  /** The first test's request, which the exemplar test looks for. */
  let first: { traceId: string; requestSpan: string } | undefined;

  beforeAll(async () => {
    jaeger = await startJaeger(JAEGER);
    grpcPort = await freePort();
    server = await startServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpHttp,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      GRPC_PORT: String(grpcPort),
      STREAM_DECODER_NICE: '2',
    }, { forSuite: true });
    await until(async () => (await fetch(`${server.base}/readyz`).catch(() => undefined))?.status === 200, 'the server to be ready', 60_000);
    prometheus = await startPrometheus(`127.0.0.1:${server.port}`);
  }, 120_000);
  afterAll(() => stopAll());

  it('follows one classify request across the main, decode and inference processes, under the client\'s parent', async () => {
    const { traceId, parentId, traceparent } = newTrace();
    const { status, body } = await classify(server.base, fixture('clip.mp4'), traceparent);
    expect(status).toBe(200);

    const spans = await jaeger.trace(traceId, 7);
    const request = one(spans, 'POST /v1/classify');
    expect(request.parent).toBe(parentId);
    expect(request.tags['span.kind']).toBe('server');
    expect(request.tags['http.response.status_code']).toBe(200);
    const video = one(spans, 'classify video');
    // Under the request, through the route handler's span.
    const handler = spans.find((s) => s.id === video.parent);
    expect(handler?.parent).toBe(request.id);
    for (const stage of ['queue', 'decode', 'inference', 'postprocess']) expect(one(spans, stage).parent, stage).toBe(video.id);

    const processOf = (name: string): Record<string, unknown> => one(spans, name).process;
    expect(processOf('classify video')['haltingvt.process']).toBe('main');
    expect(processOf('decode')['haltingvt.process']).toBe('decode');
    expect(processOf('inference')['haltingvt.process']).toBe('inference');
    const pids = ['classify video', 'decode', 'inference'].map((name) => processOf(name)['process.pid']);
    expect(new Set(pids).size).toBe(3);
    expect(pids[0]).toBe(server.child.pid);
    expect(new Set(spans.map((s) => s.process['service.name']))).toEqual(new Set(['haltingvt']));

    // What the spans say is what the answer says.
    expect(video.tags['haltingvt.model.name']).toBe(body.model.name);
    expect(numbers(video.tags['haltingvt.tokens.per_layer'])).toEqual(body.tokens.per_layer);
    expect(numbers(one(spans, 'inference').tags['haltingvt.tokens.per_layer'])).toEqual(body.tokens.per_layer);
    expect(video.tags['haltingvt.gflops']).toBe(body.gflops);
    expect(video.tags['haltingvt.knobs.keep_ratio']).toBe(body.knobs.keep_ratio);
    expect(one(spans, 'decode').tags['haltingvt.frames.decoded']).toBe(body.video.decoded_frames);
    expect(one(spans, 'inference').tags['haltingvt.batch.size']).toBe(1);

    // Every log line of the request names its trace and the request's span.
    const lines = server.logs().filter((l) => l.request_id === body.request_id);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
    for (const line of lines) expect({ trace_id: line.trace_id, span_id: line.span_id }, String(line.msg)).toEqual({ trace_id: traceId, span_id: request.id });
    first = { traceId, requestSpan: request.id };
  });

  it('marks a failing request\'s spans with its error, in the process where it failed', async () => {
    const { traceId, traceparent } = newTrace();
    const { status, body } = await classify(server.base, fixture('garbage.mp4'), traceparent);
    expect(status).toBeGreaterThanOrEqual(400);
    const code = body.error.code as string;

    const spans = await jaeger.trace(traceId, 5);
    const request = one(spans, 'POST /v1/classify');
    expect(request.tags['http.response.status_code']).toBe(status);
    expect(request.tags['otel.status_code']).toBe('ERROR');
    for (const name of ['classify video', 'decode']) {
      const span = one(spans, name);
      expect(span.tags['otel.status_code'], name).toBe('ERROR');
      expect(span.tags['error.type'], name).toBe(code);
    }
    expect(one(spans, 'decode').process['haltingvt.process']).toBe('decode');
    expect(named(spans, 'inference')).toEqual([]);
  });

  it('traces a gRPC ModelInfer call from the traceparent in its metadata', async () => {
    const definition = loadSync([PROTO_FILE], { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    const Inference = (loadPackageDefinition(definition).inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor;
    const client = new Inference(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
    const { traceId, parentId, traceparent } = newTrace();
    const metadata = new Metadata();
    metadata.set('traceparent', traceparent);
    const video = readFileSync(fixture('clip.mp4'));
    const request = {
      model_name: 'tiny',
      inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [1, 1] }],
      raw_input_contents: [Buffer.concat([Buffer.from(Uint32Array.of(video.length).buffer), video])],
    };
    try {
      await new Promise<void>((resolve, reject) => (client as unknown as { ModelInfer: (r: object, m: Metadata, cb: (err: ServiceError | null) => void) => void }).ModelInfer(request, metadata, (err) => (err ? reject(err) : resolve())));
    } finally {
      client.close();
    }
    const spans = await jaeger.trace(traceId, 6);
    const call = one(spans, 'inference.GRPCInferenceService/ModelInfer');
    expect(call.parent).toBe(parentId);
    expect(call.tags).toMatchObject({ 'span.kind': 'server', 'rpc.system': 'grpc', 'rpc.method': 'ModelInfer', 'rpc.grpc.status_code': 0 });
    const videoSpan = one(spans, 'classify video');
    expect(videoSpan.parent).toBe(call.id);
    expect(one(spans, 'decode').parent).toBe(videoSpan.id);
    expect(one(spans, 'inference').process['haltingvt.process']).toBe('inference');
  });

  it('gives a live stream a trace of its own, linked to the request that opened it, with a span per window', async () => {
    const { traceId, traceparent } = newTrace();
    const response = await fetch(`${server.base}/v1/streams?window_s=1&stride_s=1`, {
      method: 'POST',
      headers: { 'content-type': 'video/mp2t', traceparent },
      body: readFileSync(fixture('live-small.mpegts')),
    });
    const events = (await response.text())
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { event: string; seq?: number });
    const windows = events.filter((e) => e.event === 'window');
    expect(windows.length).toBeGreaterThan(0);
    expect(events.at(-1)?.event).toBe('ended');

    // The request's trace: its span, and its handler's, which the stream's span links to.
    const opening = await jaeger.trace(traceId, 2);
    const handler = opening.find((s) => s.parent === one(opening, 'POST /v1/streams').id);
    let streamTrace = '';
    await until(
      async () => {
        for (const id of await jaeger.find('haltingvt', 'live stream')) {
          const root = (await jaeger.trace(id, 1)).find((s) => s.name === 'live stream');
          if (root?.references.some((r) => r.traceID === traceId && r.spanID === handler?.id)) streamTrace = id;
        }
        return streamTrace !== '';
      },
      'the stream\'s trace, linked to its request',
    );
    expect(streamTrace).not.toBe(traceId);
    const spans = await jaeger.trace(streamTrace, 1 + windows.length * 3);
    const stream = one(spans, 'live stream');
    expect(stream.tags).toMatchObject({ 'haltingvt.stream.kind': 'pushed', 'haltingvt.stream.end': 'end_of_stream' });
    const windowSpans = named(spans, 'stream window');
    expect(windowSpans.map((s) => s.tags['haltingvt.window.seq']).sort()).toEqual(windows.map((w) => w.seq).sort());
    for (const w of windowSpans) {
      expect(w.parent).toBe(stream.id);
      const inference = spans.filter((s) => s.name === 'inference' && s.parent === w.id);
      expect(inference.map((s) => s.process['haltingvt.process'])).toEqual(['inference']);
    }
  });

  it('puts trace ids on the duration histograms as exemplars that Prometheus keeps, and the text exposition stays promtool clean', async () => {
    expect(first, 'the first test ran').toBeDefined();
    const { traceId, requestSpan } = first!;
    await until(async () => (await prometheus.exemplars('haltingvt_request_duration_seconds_bucket')).some((e) => e.labels.trace_id === traceId), 'Prometheus to store the request\'s exemplar', 20_000);
    expect(await prometheus.up()).toBe(true);
    const requestExemplar = (await prometheus.exemplars('haltingvt_request_duration_seconds_bucket{route="/v1/classify"}')).find((e) => e.labels.trace_id === traceId);
    expect(requestExemplar?.labels.span_id).toBe(requestSpan);
    await until(async () => (await prometheus.exemplars('haltingvt_stage_duration_seconds_bucket{stage="decode"}')).length > 0, 'a stage exemplar');

    // The scrape format asked for is what comes back.
    const openMetrics = await fetch(`${server.base}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    expect(openMetrics.headers.get('content-type')).toMatch(/^application\/openmetrics-text/);
    // A stage exemplar names a video's span (the last video that fell in that bucket).
    const stage = (await openMetrics.text()).split('\n').find((l) => l.startsWith('haltingvt_stage_duration_seconds_bucket') && l.includes(' # {'));
    const [, stageTrace, stageSpan] = /trace_id="([0-9a-f]{32})",span_id="([0-9a-f]{16})"/.exec(stage ?? '') ?? [];
    expect(stageTrace, stage).toBeDefined();
    const exemplarSpan = (await jaeger.trace(stageTrace as string, 1)).find((s) => s.id === stageSpan);
    expect(exemplarSpan?.name).toBe('classify video');
    const text = await fetch(`${server.base}/metrics`);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await text.text();
    expect(body).not.toContain(' # {');
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
  });
});
