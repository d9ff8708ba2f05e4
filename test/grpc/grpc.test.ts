/**
 * The gRPC server in-process with a grpc-js client: health follows readiness exactly (the engine
 * is held back, so "starting" is seen for sure), the error mapping, and inference through the
 * same OipService as HTTP. Stock clients (tritonclient, grpcio-health-checking, reflection) drive
 * the real server process in test/oip.
 */
import { readFileSync } from 'node:fs';
import { credentials, loadPackageDefinition, Metadata, status as Code, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProto } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { EngineError, ERRORS, type ErrorCode } from '../../src/errors.js';
import { PROTO_FILE, type GrpcService } from '../../src/grpc/server.js';
import { grpcCode } from '../../src/grpc/status.js';
import type { EnginePort } from '../../src/service/index.js';
import { fixture, makeApp, openTinyEngine, type TestApp } from '../http/helpers.js';
import { serveGrpc } from './helpers.js';

const TOKEN = 'a-grpc-test-token-0123';
const definition = loadSync([PROTO_FILE, healthProto], { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const loaded = loadPackageDefinition(definition);
const Inference = (loaded.inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor;
const Health = ((loaded.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;

type Call = (request: object, metadata: Metadata, callback: (err: ServiceError | null, reply: Record<string, unknown>) => void) => void;
function call(client: object, method: string, request: object, metadata = new Metadata()): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => ((client as Record<string, Call>)[method] as Call).call(client, request, metadata, (err, reply) => (err ? reject(err) : resolve(reply))));
}
const failure = (promise: Promise<unknown>): Promise<ServiceError> => promise.then(() => expect.fail('the call succeeded'), (err: ServiceError) => err);

let engine: Engine;
let resolveEngine: (e: EnginePort) => void;
let t: TestApp;
let grpc: GrpcService;
let inference: InstanceType<ServiceClientConstructor>;
let health: InstanceType<ServiceClientConstructor>;

beforeAll(async () => {
  engine = await openTinyEngine();
  t = makeApp(new Promise<EnginePort>((resolve) => (resolveEngine = resolve)), { service: { authToken: TOKEN, maxUploadBytes: 1_000_000 } });
  let address: string;
  ({ grpc, address } = await serveGrpc(t));
  inference = new Inference(address, credentials.createInsecure());
  health = new (Health.Health as ServiceClientConstructor)(address, credentials.createInsecure());
});
afterAll(async () => {
  inference?.close();
  health?.close();
  await grpc?.close(1000);
  await t?.app.close();
  await engine?.close();
});

const status = async (service = ''): Promise<unknown> => (await call(health, 'Check', { service })).status;

describe('gRPC OIP server', () => {
  it('reports health from the readiness function: starting, ready, draining', async () => {
    expect(await status()).toBe('NOT_SERVING');
    expect(await call(inference, 'ServerReady', {})).toEqual({ ready: false });
    expect(await call(inference, 'ServerLive', {})).toEqual({ live: true });
    resolveEngine(engine);
    await new Promise((r) => setImmediate(r));
    grpc.syncHealth();
    expect(await status()).toBe('SERVING');
    expect(await status('inference.GRPCInferenceService')).toBe('SERVING');
    expect(await call(inference, 'ModelReady', { name: 'tiny', version: '' })).toEqual({ ready: true });
  });

  it('serves metadata and inference, with the token from metadata', async () => {
    const meta = await call(inference, 'ModelMetadata', { name: 'tiny', version: '' });
    expect(meta.inputs).toEqual([{ name: 'VIDEO', datatype: 'BYTES', shape: [-1, 1] }]);
    const video = readFileSync(fixture('clip.mp4'));
    const request = {
      model_name: 'tiny',
      id: 'x',
      parameters: { top_k: { int64_param: 2 } },
      inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [1, 1] }],
      outputs: [{ name: 'TOKENS' }, { name: 'LABELS' }],
      raw_input_contents: [Buffer.concat([Buffer.from(Uint32Array.of(video.length).buffer), video])],
    };
    const missing = await failure(call(inference, 'ModelInfer', request));
    expect(missing.code).toBe(Code.UNAUTHENTICATED);
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    const reply = await call(inference, 'ModelInfer', request, metadata);
    expect(reply.id).toBe('x');
    expect((reply.outputs as Array<{ name: string; shape: number[] }>).map((o) => [o.name, o.shape])).toEqual([
      ['TOKENS', [1, 4]],
      ['LABELS', [1, 2]],
    ]);
    expect((reply.raw_output_contents as Buffer[])[0]).toHaveLength(4 * 8);
    const unknown = await failure(call(inference, 'ModelMetadata', { name: 'other', version: '' }));
    expect(unknown.code).toBe(Code.NOT_FOUND);
    expect(unknown.details).toMatch(/^NOT_FOUND: no model named "other"/);
  });

  it('adds EXPLANATION with the explain parameter', async () => {
    const video = readFileSync(fixture('clip.mp4'));
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    const reply = await call(
      inference,
      'ModelInfer',
      {
        model_name: 'tiny',
        parameters: { explain: { bool_param: true } },
        inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [1, 1] }],
        outputs: [{ name: 'LABELS' }, { name: 'EXPLANATION' }],
        raw_input_contents: [Buffer.concat([Buffer.from(Uint32Array.of(video.length).buffer), video])],
      },
      metadata,
    );
    expect((reply.outputs as Array<{ name: string }>).map((o) => o.name)).toEqual(['LABELS', 'EXPLANATION']);
    const bytes = (reply.raw_output_contents as Buffer[])[1]!;
    const explanation = JSON.parse(bytes.subarray(4, 4 + bytes.readUInt32LE(0)).toString()) as { stop_map: number[][]; thumbnails: { data: string[] } };
    expect(explanation.stop_map).toHaveLength(4);
    expect(explanation.thumbnails.data).toHaveLength(4);
  });

  it('ends a stream without the token with UNAUTHENTICATED', async () => {
    const stream = (inference as unknown as Record<string, (m: Metadata) => NodeJS.EventEmitter & { end(): void }>).ModelStreamInfer!.call(inference, new Metadata());
    const err = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    expect(err.code).toBe(Code.UNAUTHENTICATED);
  });

  it('turns NOT_SERVING and refuses inference with UNAVAILABLE once draining', async () => {
    await t.service.lifecycle.drain();
    grpc.syncHealth();
    expect(await status()).toBe('NOT_SERVING');
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    const err = await failure(call(inference, 'ModelInfer', { model_name: 'tiny', inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.from([1, 0, 0, 0, 7])] }, metadata));
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.details).toMatch(/^DRAINING: /);
  });
});

describe('catalogue → gRPC codes', () => {
  it('maps every code by its HTTP status', () => {
    const expected: Record<number, Code> = { 400: Code.INVALID_ARGUMENT, 401: Code.UNAUTHENTICATED, 403: Code.PERMISSION_DENIED, 404: Code.NOT_FOUND, 408: Code.DEADLINE_EXCEEDED, 413: Code.RESOURCE_EXHAUSTED, 415: Code.INVALID_ARGUMENT, 422: Code.INVALID_ARGUMENT, 429: Code.RESOURCE_EXHAUSTED, 499: Code.CANCELLED, 500: Code.INTERNAL, 502: Code.UNAVAILABLE, 503: Code.UNAVAILABLE, 504: Code.DEADLINE_EXCEEDED, 507: Code.RESOURCE_EXHAUSTED };
    for (const [code, { status }] of Object.entries(ERRORS) as Array<[ErrorCode, { status: number }]>) {
      expect(grpcCode(new EngineError(code, 'x')), code).toBe(expected[status]);
    }
  });
});
