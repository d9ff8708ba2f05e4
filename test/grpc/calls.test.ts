/**
 * A gRPC call's life as the service sees it, on gates the test holds: a deadline or a cancel
 * aborts the call's work (a queued video leaves the queue without reaching the engine, one in the
 * engine is told to stop), close(grace) cancels the calls still running at the end of the grace,
 * and health turns NOT_SERVING while no inference worker can run.
 */
import { readFileSync } from 'node:fs';
import { credentials, loadPackageDefinition, Metadata, status as Code, type Client, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProto } from 'grpc-health-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, EngineStats } from '../../src/engine/index.js';
import { PROTO_FILE, type GrpcService } from '../../src/grpc/server.js';
import type { EnginePort } from '../../src/service/index.js';
import { engineWith, fixture, gate, makeApp, openTinyEngine, until, type TestApp } from '../http/helpers.js';
import { serveGrpc } from './helpers.js';
import { familyText } from '../helpers/metrics.js';

const definition = loadSync([PROTO_FILE, healthProto], { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const loaded = loadPackageDefinition(definition);
const Inference = (loaded.inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor;
const Health = (((loaded.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health as ServiceClientConstructor;

let engine: Engine;
beforeAll(async () => {
  engine = await openTinyEngine();
});
afterAll(async () => {
  await engine?.close();
});

/**
 * The real engine behind a gate that also hears the call's abort signal: `entered` counts videos
 * that reached the engine, `aborted` those whose signal fired there. `accepting` can be turned off
 * to stand for an inference worker that cannot start.
 */
function abortableEngine() {
  let held = gate();
  let entered = 0;
  let aborted = 0;
  let accepting = true;
  const port: EnginePort = engineWith(engine, {
    stats: (): EngineStats => ({ ...engine.stats(), accepting }),
    classify: async (file, knobs, options) => {
      entered += 1;
      await new Promise<void>((resolve, reject) => {
        const signal = options?.signal;
        const onAbort = (): void => {
          aborted += 1;
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        void held.promise.then(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      });
      return engine.classify(file, knobs, options);
    },
  });
  return {
    port,
    entered: () => entered,
    aborted: () => aborted,
    open: () => held.open(),
    reset: () => {
      held = gate();
      entered = 0;
      aborted = 0;
    },
    setAccepting: (value: boolean) => (accepting = value),
  };
}

interface Running {
  t: TestApp;
  grpc: GrpcService;
  inference: Client;
  health: Client;
  /** Closes the gRPC server once, whoever asks first (a test or the clean-up). */
  close: (graceMs: number) => Promise<void>;
}
const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.inference.close();
    r.health.close();
    await r.close(0);
    await r.t.app.close();
  }
});

async function serve(port: EnginePort): Promise<Running> {
  const t = makeApp(port, { service: { concurrency: 1, queueSize: 4 } });
  const { grpc, address } = await serveGrpc(t);
  let closing: Promise<void> | undefined;
  const r: Running = {
    t,
    grpc,
    inference: new Inference(address, credentials.createInsecure()),
    health: new Health(address, credentials.createInsecure()),
    close: (graceMs) => (closing ??= grpc.close(graceMs)),
  };
  running.push(r);
  return r;
}

const video = readFileSync(fixture('clip.mp4'));
const inferRequest = {
  model_name: 'tiny',
  inputs: [{ name: 'VIDEO', datatype: 'BYTES', shape: [1, 1] }],
  outputs: [{ name: 'LABELS' }],
  raw_input_contents: [Buffer.concat([Buffer.from(Uint32Array.of(video.length).buffer), video])],
};

type Unary = (request: object, metadata: Metadata, options: { deadline?: number }, callback: (err: ServiceError | null, reply: unknown) => void) => { cancel(): void };
/** A ModelInfer call: its outcome (the reply or the error) and a handle to cancel it. */
function infer(client: Client, deadline?: number): { outcome: Promise<ServiceError | unknown>; cancel: () => void } {
  let call: { cancel(): void } | undefined;
  const outcome = new Promise<ServiceError | unknown>((resolve) => {
    call = ((client as unknown as Record<string, Unary>).ModelInfer as Unary).call(client, inferRequest, new Metadata(), deadline ? { deadline } : {}, (err, reply) => resolve(err ?? reply));
  });
  return { outcome, cancel: () => call?.cancel() };
}

type Check = (request: object, callback: (err: ServiceError | null, reply: { status: string }) => void) => void;
const healthStatus = (client: Client): Promise<string> =>
  new Promise((resolve, reject) => ((client as unknown as Record<string, Check>).Check as Check).call(client, { service: '' }, (err, reply) => (err ? reject(err) : resolve(reply.status))));

describe('gRPC calls and the work behind them', () => {
  it('a deadline takes a queued video out of the queue before it reaches the engine; a cancel stops the one in the engine', async () => {
    const held = abortableEngine();
    const { t, inference } = await serve(held.port);
    const first = infer(inference, Date.now() + 60_000);
    await until(() => held.entered() === 1, 'the first call to reach the engine');
    // Queued behind the first (CONCURRENCY 1), with a deadline it cannot meet while the gate is shut.
    const late = infer(inference, Date.now() + 400);
    const outcome = (await late.outcome) as ServiceError;
    expect(outcome.code).toBe(Code.DEADLINE_EXCEEDED);
    await until(() => t.service.lifecycle.inflight() === 1, 'the late call to leave the service');
    expect(held.entered()).toBe(1); // it never reached the engine
    expect(await familyText(t.registry, 'haltingvt_queue_depth')).toContain('haltingvt_queue_depth 0');
    // The first call's own deadline is far away: cancelling it aborts the video inside the engine.
    first.cancel();
    expect(((await first.outcome) as ServiceError).code).toBe(Code.CANCELLED);
    await until(() => held.aborted() === 1, 'the engine to hear the cancel');
    await until(() => t.service.lifecycle.inflight() === 0, 'the first call to leave the service');
  });

  it('close(grace) waits for calls in flight, then cancels them at the end of the grace; their work is aborted', async () => {
    const held = abortableEngine();
    const r = await serve(held.port);
    const call = infer(r.inference);
    await until(() => held.entered() === 1, 'the call to reach the engine');
    const closing = r.close(300);
    // Within the grace the call is still running: nothing cancelled yet.
    expect(held.aborted()).toBe(0);
    await closing;
    const outcome = (await call.outcome) as ServiceError;
    expect([Code.CANCELLED, Code.UNAVAILABLE]).toContain(outcome.code);
    await until(() => held.aborted() === 1, 'the engine to hear the cancel');
    await until(() => r.t.service.lifecycle.inflight() === 0, 'the call to leave the service');
  });

  it('close(grace) lets a call that finishes within the grace answer', async () => {
    const held = abortableEngine();
    const r = await serve(held.port);
    const call = infer(r.inference);
    await until(() => held.entered() === 1, 'the call to reach the engine');
    const closing = r.close(20_000);
    held.open();
    await closing;
    expect((await call.outcome) as { outputs: unknown[] }).toMatchObject({ outputs: [{ name: 'LABELS' }] });
    expect(held.aborted()).toBe(0);
  });

  it('health is NOT_SERVING while no inference worker can run, SERVING again when one can; inference meanwhile is UNAVAILABLE', async () => {
    const held = abortableEngine();
    const r = await serve(held.port);
    r.grpc.syncHealth();
    expect(await healthStatus(r.health)).toBe('SERVING');
    held.setAccepting(false);
    r.grpc.syncHealth();
    expect(await healthStatus(r.health)).toBe('NOT_SERVING');
    const refused = (await infer(r.inference).outcome) as ServiceError;
    expect(refused.code).toBe(Code.UNAVAILABLE);
    expect(refused.details).toMatch(/^WORKER_UNAVAILABLE: /);
    held.setAccepting(true);
    r.grpc.syncHealth();
    expect(await healthStatus(r.health)).toBe('SERVING');
  });
});
