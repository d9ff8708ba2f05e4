/**
 * One path for every transport: the same video through /v1, the OIP over HTTP and the OIP over
 * gRPC gets the same answer and moves the service's metrics by the same amounts (each call one
 * request, counted under its protocol).
 */
import { readFileSync } from 'node:fs';
import { credentials, loadPackageDefinition, Metadata, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_FILE, type GrpcService } from '../../src/grpc/server.js';
import { V2InferResponse } from '../../src/http/oip-schemas.js';
import { ClassifyResponse } from '../../src/http/schemas.js';
import { fixture, form, useTinyApp, videoPart } from '../http/helpers.js';
import { serveGrpc } from '../grpc/helpers.js';

const Inference = (loadPackageDefinition(loadSync(PROTO_FILE, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true })).inference as GrpcObject)
  .GRPCInferenceService as ServiceClientConstructor;

const t = useTinyApp();
let grpc: GrpcService;
let client: InstanceType<ServiceClientConstructor>;

beforeAll(async () => {
  let address: string;
  ({ grpc, address } = await serveGrpc(t));
  client = new Inference(address, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await grpc?.close(1000);
});

/** Every sample of the exposition, by series (name and labels), for before/after differences. */
async function samples(): Promise<Map<string, number>> {
  const text = await t.registry.metrics();
  return new Map(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]),
  );
}

/** What one call moved: series that changed, and by how much (timings excluded: they differ by nature). */
async function moved(call: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await samples();
  await call();
  const after = await samples();
  const out: Record<string, number> = {};
  for (const [series, value] of after) {
    if (/duration_seconds_(sum|bucket)|process_|nodejs_|upload_/.test(series)) continue;
    const delta = value - (before.get(series) ?? 0);
    if (delta !== 0) out[series] = Number(delta.toPrecision(12));
  }
  return out;
}

const video = readFileSync(fixture('clip.mp4'));
const KNOBS = { top_k: 3, keep_ratio: 0.4, halt_threshold: 0.95 };

interface Answer {
  labels: string[];
  probabilities: number[];
  gflops: number;
  tokens: number[];
}

async function viaV1(): Promise<Answer> {
  const query = new URLSearchParams(Object.fromEntries(Object.entries(KNOBS).map(([k, v]) => [k, String(v)])));
  const res = await t.app.inject({ method: 'POST', url: `/v1/classify?${query}`, ...form([videoPart('clip.mp4', fixture('clip.mp4'))]) });
  expect(res.statusCode, res.body).toBe(200);
  const r = ClassifyResponse.parse(res.json());
  return { labels: r.top.map((p) => p.label), probabilities: r.top.map((p) => p.probability), gflops: r.gflops, tokens: r.tokens.per_layer };
}

/** LABELS rows are "probability:index:label" (the classification extension). */
function fromLabels(rows: string[], gflops: number, tokens: number[]): Answer {
  const split = rows.map((row) => row.split(':'));
  return { labels: split.map((s) => s.slice(2).join(':')), probabilities: split.map((s) => Number(s[0])), gflops, tokens };
}

async function viaOipHttp(): Promise<Answer> {
  const payload = {
    parameters: KNOBS,
    inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [1, 1], data: [] as string[], parameters: { binary_data_size: 4 + video.length } }],
    outputs: [{ name: 'LABELS' }, { name: 'GFLOPS' }, { name: 'TOKENS' }],
  };
  const { data: _json, ...input } = payload.inputs[0]!;
  const header = Buffer.from(JSON.stringify({ ...payload, inputs: [input] }));
  const res = await t.app.inject({
    method: 'POST',
    url: '/v2/models/tiny/infer',
    headers: { 'inference-header-content-length': String(header.length) },
    payload: Buffer.concat([header, Buffer.from(Uint32Array.of(video.length).buffer), video]),
  });
  expect(res.statusCode, res.body).toBe(200);
  const json = V2InferResponse.parse(res.json());
  const out = (name: string) => json.outputs.find((o) => o.name === name)?.data as Array<string | number>;
  return fromLabels(out('LABELS') as string[], out('GFLOPS')[0] as number, out('TOKENS') as number[]);
}

async function viaOipGrpc(): Promise<Answer> {
  const request = {
    model_name: 'tiny',
    parameters: { top_k: { int64_param: KNOBS.top_k }, keep_ratio: { double_param: KNOBS.keep_ratio }, halt_threshold: { double_param: KNOBS.halt_threshold } },
    inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [1, 1] }],
    outputs: [{ name: 'LABELS' }, { name: 'GFLOPS' }, { name: 'TOKENS' }],
    raw_input_contents: [Buffer.concat([Buffer.from(Uint32Array.of(video.length).buffer), video])],
  };
  const reply = await new Promise<{ raw_output_contents: Buffer[] }>((resolve, reject) =>
    (client as unknown as Record<string, (r: object, m: Metadata, cb: (e: ServiceError | null, r: { raw_output_contents: Buffer[] }) => void) => void>).ModelInfer!.call(
      client,
      request,
      new Metadata(),
      (err, r) => (err ? reject(err) : resolve(r)),
    ),
  );
  const [labels, gflops, tokens] = reply.raw_output_contents as [Buffer, Buffer, Buffer];
  const rows: string[] = [];
  for (let at = 0; at < labels.length; ) {
    const n = labels.readUInt32LE(at);
    rows.push(labels.subarray(at + 4, at + 4 + n).toString());
    at += 4 + n;
  }
  return fromLabels(rows, gflops.readFloatLE(0), Array.from(new BigInt64Array(tokens.buffer.slice(tokens.byteOffset, tokens.byteOffset + tokens.length)), Number));
}

describe('one path through the service for every transport', () => {
  it('/v1, OIP over HTTP and OIP over gRPC: equal answers, equal metrics increments', async () => {
    const answers: Answer[] = [];
    const increments: Array<Record<string, number>> = [];
    for (const [protocol, run] of [
      ['http', viaV1],
      ['http', viaOipHttp],
      ['grpc', viaOipGrpc],
    ] as const) {
      let answer: Answer | undefined;
      const delta = await moved(async () => (answer = await run()));
      answers.push(answer as Answer);
      // The one request, under its protocol: the rest of its labels differ by transport (route, method).
      const requests = Object.entries(delta).filter(([series]) => series.startsWith('haltingvt_requests_total') || series.startsWith('haltingvt_request_duration_seconds_count'));
      expect(requests.map(([series, n]) => [series.includes(`protocol="${protocol}"`), n])).toEqual([
        [true, 1],
        [true, 1],
      ]);
      increments.push(Object.fromEntries(Object.entries(delta).filter(([series]) => !series.startsWith('haltingvt_request'))));
    }
    const [v1, http, grpcAnswer] = answers as [Answer, Answer, Answer];
    expect(v1.labels).toHaveLength(3);
    for (const other of [http, grpcAnswer]) {
      expect(other.labels).toEqual(v1.labels);
      other.probabilities.forEach((p, i) => expect(p).toBeCloseTo(v1.probabilities[i] as number, 5));
      expect(other.gflops).toBeCloseTo(v1.gflops, 5);
      expect(other.tokens).toEqual(v1.tokens);
    }
    // The per-video series moved by the same amounts whichever way the video came.
    expect(increments[0]).toMatchObject({ 'haltingvt_videos_total{outcome="ok"}': 1, 'haltingvt_stage_duration_seconds_count{stage="infer"}': 1 });
    expect(increments[1]).toEqual(increments[0]);
    expect(increments[2]).toEqual(increments[0]);
  });
});
