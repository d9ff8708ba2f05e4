/**
 * `make bench-oip`: what batches and the Open Inference Protocol cost, on the real server process
 * with the embedded model and held-out clips. A short run (about two minutes on 2 cores):
 *
 *   1. a batch of 8 clips through each batch route (/v1/classify:batch, OIP HTTP, OIP gRPC) vs the
 *      same 8 sent one by one on the same route, same server: ratio of wall times (median of rounds);
 *   2. per-request time of one clip over /v1 (raw body), OIP HTTP (binary) and OIP gRPC, and the
 *      bare protocol round trip (server metadata: GET /v2 vs the ServerMetadata RPC);
 *   3. dynamic batching off vs on at CONCURRENCY 2 (the default) and 8, with 8 closed-loop clients:
 *      throughput and p50/p99.
 *
 * Prints a markdown table; figures are ratios and medians, never pass/fail.
 *   node --import tsx bench/oip.ts [--model DIR] [--rounds N] [--seconds S]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { credentials, loadPackageDefinition, Metadata, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { defaultModelDir } from '../src/paths.js';
import { PROTO_FILE } from '../src/grpc/server.js';
import { heldOutClips, log, ROOT } from './lib/env.js';
import { freePort, startServer, type ServerHandle } from './lib/service.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '10' } } });
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const modelDir = values.model ? path.resolve(values.model) : defaultModelDir([ROOT]);
const modelName = (JSON.parse(readFileSync(path.join(modelDir, 'manifest.json'), 'utf8')) as { name: string }).name;

const Inference = ((loadPackageDefinition(loadSync(PROTO_FILE, { keepCase: true, longs: Number, defaults: true, oneofs: true })).inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor);

const bytesTensor = (videos: Buffer[]): Buffer => Buffer.concat(videos.flatMap((v) => [Buffer.from(Uint32Array.of(v.length).buffer), v]));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;

interface Route {
  name: string;
  one(video: Buffer): Promise<void>;
  batch(videos: Buffer[]): Promise<void>;
  metadata(): Promise<void>;
}

function routes(server: ServerHandle, grpcPort: number): { list: Route[]; close: () => void } {
  const ok = async (res: Response): Promise<void> => {
    const body = await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${res.status}: ${Buffer.from(body).toString().slice(0, 200)}`);
  };
  const oipHttp = async (videos: Buffer[]): Promise<void> => {
    const raw = bytesTensor(videos);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'VIDEO', shape: [videos.length, 1], datatype: 'BYTES', parameters: { binary_data_size: raw.length } }], outputs: [{ name: 'LABELS' }, { name: 'ERROR' }] }));
    await ok(await fetch(`${server.url}/v2/models/${modelName}/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, raw]) }));
  };
  const client = new Inference(`127.0.0.1:${grpcPort}`, credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  const rpc = (method: string, request: object): Promise<void> =>
    new Promise((resolve, reject) =>
      (client as unknown as Record<string, (r: object, m: Metadata, cb: (e: ServiceError | null) => void) => void>)[method]!.call(client, request, new Metadata(), (err) => (err ? reject(err) : resolve())),
    );
  const grpc = (videos: Buffer[]): Promise<void> =>
    new Promise((resolve, reject) =>
      (client as unknown as Record<string, (r: object, m: Metadata, cb: (e: ServiceError | null) => void) => void>).ModelInfer!.call(
        client,
        { model_name: modelName, inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [videos.length, 1] }], outputs: [{ name: 'LABELS' }, { name: 'ERROR' }], raw_input_contents: [bytesTensor(videos)] },
        new Metadata(),
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  const form = (videos: Buffer[], field: string): FormData => {
    const f = new FormData();
    videos.forEach((v, i) => f.append(field, new Blob([v], { type: 'video/mp4' }), `${i}.mp4`));
    return f;
  };
  return {
    list: [
      {
        name: '/v1/classify(:batch)',
        one: async (v) => ok(await fetch(`${server.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: v })),
        batch: async (vs) => ok(await fetch(`${server.url}/v1/classify:batch`, { method: 'POST', body: form(vs, 'files') })),
        metadata: async () => ok(await fetch(`${server.url}/v1/models`)),
      },
      { name: 'OIP HTTP', one: (v) => oipHttp([v]), batch: oipHttp, metadata: async () => ok(await fetch(`${server.url}/v2`)) },
      { name: 'OIP gRPC', one: (v) => grpc([v]), batch: grpc, metadata: () => rpc('ServerMetadata', {}) },
    ],
    close: () => client.close(),
  };
}

async function timed(work: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await work();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const clipFiles = await heldOutClips(path.join(ROOT, 'bench', 'out', 'heldout'), 8);
  const clips = clipFiles.map((f) => readFileSync(f));
  const lines: string[] = [`model: ${path.relative(ROOT, modelDir)}, 8 held-out clips, ${rounds} rounds (median), CONCURRENCY 2, 2 ORT threads`, ''];

  // 1 and 2: one server, batching off (the default).
  const grpcPort = await freePort();
  let server = await startServer({ modelDir, threads: 2, concurrency: 2, queueSize: 64, grpcPort });
  let r = routes(server, grpcPort);
  lines.push('| route | 8 one by one (ms) | batch of 8 (ms) | batch ÷ one-by-one | one clip (ms, median) | metadata round trip (ms, median of 200) |', '|---|---|---|---|---|---|');
  for (const route of r.list) {
    await route.one(clips[0]!); // warm the connection
    const single: number[] = [];
    const batched: number[] = [];
    const one: number[] = [];
    for (let i = 0; i < rounds; i++) {
      single.push(await timed(async () => { for (const c of clips) await route.one(c); }));
      batched.push(await timed(() => route.batch(clips)));
      for (const c of clips) one.push(await timed(() => route.one(c)));
    }
    const trips: number[] = [];
    for (let i = 0; i < 200; i++) trips.push(await timed(() => route.metadata()));
    const s = median(single);
    const b = median(batched);
    lines.push(`| ${route.name} | ${s.toFixed(0)} | ${b.toFixed(0)} | ${(b / s).toFixed(2)} | ${median(one).toFixed(1)} | ${median(trips).toFixed(2)} |`);
    log(lines[lines.length - 1]!);
  }
  r.close();
  await server.stop();

  // 3: dynamic batching off vs on, 8 closed-loop clients over OIP HTTP with one clip each.
  lines.push('', `| dynamic batching (8 clients, ${seconds} s, OIP HTTP) | videos/s | p50 (ms) | p99 (ms) |`, '|---|---|---|---|');
  for (const [label, concurrency, env] of [
    ['CONCURRENCY 2, off (the defaults)', 2, { BATCH_MAX_SIZE: '1' }],
    ['CONCURRENCY 2, BATCH_MAX_SIZE 8, delay 0', 2, { BATCH_MAX_SIZE: '8', BATCH_MAX_DELAY_MS: '0' }],
    ['CONCURRENCY 8, off', 8, { BATCH_MAX_SIZE: '1' }],
    ['CONCURRENCY 8, BATCH_MAX_SIZE 8, delay 0', 8, { BATCH_MAX_SIZE: '8', BATCH_MAX_DELAY_MS: '0' }],
    ['CONCURRENCY 8, BATCH_MAX_SIZE 8, delay 5 ms', 8, { BATCH_MAX_SIZE: '8', BATCH_MAX_DELAY_MS: '5' }],
  ] as const) {
    const port = await freePort();
    server = await startServer({ modelDir, threads: 2, concurrency, queueSize: 64, grpcPort: port, env });
    r = routes(server, port);
    const oip = r.list[1]!;
    await oip.one(clips[0]!);
    const latencies: number[] = [];
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      clips.map(async (clip) => {
        while (performance.now() < end) latencies.push(await timed(() => oip.one(clip)));
      }),
    );
    lines.push(`| ${label} | ${(latencies.length / seconds).toFixed(2)} | ${quantile(latencies, 0.5).toFixed(0)} | ${quantile(latencies, 0.99).toFixed(0)} |`);
    log(lines[lines.length - 1]!);
    r.close();
    await server.stop();
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-oip: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
