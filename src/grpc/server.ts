/**
 * The Open Inference Protocol over gRPC (package `inference`, service GRPCInferenceService), on its
 * own port: plaintext HTTP/2 cannot share a port with HTTP/1.1 in Node. Beside it, grpc.health.v1
 * (SERVING exactly when /readyz says ready) and server reflection, so grpcurl needs no .proto.
 * Every call goes through the Open Inference Protocol over the service layer (src/oip/protocol.ts),
 * as /v2 over HTTP does; inference needs the bearer token in `authorization` metadata when
 * AUTH_TOKEN is set. Calls are counted in the service's request metrics (protocol "grpc") and
 * their failures in its error metrics. A message larger than MAX_UPLOAD_BYTES (plus room for the
 * header) is refused by grpc-js itself with RESOURCE_EXHAUSTED before it is read. Live streams
 * have their own service beside it (haltingvt.v1.Streams, streams.ts).
 */
import path from 'node:path';
import {
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type GrpcObject,
  type Metadata,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceClientConstructor,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProto } from 'grpc-health-check';
import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import { EngineError } from '../errors.js';
import { createOipProtocol } from '../oip/protocol.js';
import { PACKAGE_ROOT } from '../paths.js';
import { asServiceError, logFailure, oneLine } from '../service/errors.js';
import type { Service } from '../service/index.js';
import { toGrpcError } from './status.js';
import { handleStreamCall, handleWatchCall, STREAMS_SERVICE, type StreamCall, type StreamCallDeps, type WatchCall } from './streams.js';
import { fromWire, toWire, type WireInferRequest, type WireInferResponse } from './wire.js';
import { startCallSpan, type CallSpan } from './tracing.js';
import type { Tracer } from '../telemetry/spans.js';
import type { Exemplar } from '../service/metrics.js';

export const PROTO_FILE = path.join(PACKAGE_ROOT, 'proto', 'inference.proto');
export const STREAMS_PROTO_FILE = path.join(PACKAGE_ROOT, 'proto', 'streams.proto');
export const SERVICE_NAME = 'inference.GRPCInferenceService';
/** Room for the protobuf framing and the request's other fields around the videos. */
const HEADER_ROOM = 64 * 1024;
/**
 * How often health follows readiness: the lifecycle has no change events, so it is polled. Draining
 * is pushed at once (server.ts calls syncHealth); what the poll catches late, by up to a second, is
 * an inference worker that cannot start or comes back. Every poll wakes an idle process: at 200 ms
 * (with prom-client's 100 ms loop sampler) the idle server's main process burnt ~10 ms of CPU a second.
 */
const HEALTH_POLL_MS = 1000;

export interface GrpcDeps {
  service: Service;
  /** The server version OIP's ServerMetadata reports. */
  serverVersion: string;
  logger: Logger;
  /** Only when tracing is on: a span per call (tracing.ts). */
  tracer?: Tracer | undefined;
}

export interface GrpcService {
  /** Binds and starts; resolves with the port (useful with port 0 in tests). */
  listen(host: string, port: number): Promise<number>;
  /** Sets health from readiness now (server.ts calls it on SIGTERM, not waiting for the poll). */
  syncHealth(): void;
  /** Stops taking calls and waits for those in flight; cancels them after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

export function createGrpcService(deps: GrpcDeps): GrpcService {
  const { service, logger } = deps;
  const { metrics } = service;
  const oip = createOipProtocol(service, deps.serverVersion);
  const definition = loadSync([PROTO_FILE, STREAMS_PROTO_FILE, healthProto], { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const loaded = loadPackageDefinition(definition);
  const inference = (loaded.inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor;
  const streams = ((loaded.haltingvt as GrpcObject).v1 as GrpcObject).Streams as ServiceClientConstructor;
  // grpc-js takes a 32-bit signed limit, and protobuf caps a message at 2 GiB anyway.
  const server = new Server({ 'grpc.max_receive_message_length': Math.min(service.limits.maxUploadBytes + HEADER_ROOM, 2 ** 31 - 1) });
  const checkToken = (metadata: Metadata): void => service.authorize(metadata.get('authorization')[0]);
  const { tracer } = deps;
  // Every call answered is counted with HTTP's requests (status: its error's, 200 when OK).
  const observe = (rpc: string, startedAt: number, status: number, exemplar: Exemplar): void =>
    metrics.observeRequest('grpc', `/${SERVICE_NAME}/${rpc}`, 'POST', status, (performance.now() - startedAt) / 1000, exemplar);
  const succeeded = (rpc: string, startedAt: number, span?: CallSpan): void => {
    span?.ok();
    observe(rpc, startedAt, 200, span?.ids);
  };
  /** A failed call: counted, logged as its status deserves, and returned as the catalogue error to answer. */
  const failed = (rpc: string, startedAt: number, err: unknown, span?: CallSpan): EngineError => {
    const error = asServiceError(err);
    metrics.error(error);
    logFailure(span?.ids ? logger.child(span.ids) : logger, error, { rpc }, 'gRPC call');
    span?.failed(error);
    observe(rpc, startedAt, error.status, span?.ids);
    return error;
  };
  /** The call's span when tracing is on and the method is worth a trace (inference, not probes). */
  const callSpan = (rpc: string, metadata: Metadata): CallSpan | undefined => (tracer ? startCallSpan(tracer, SERVICE_NAME, rpc, metadata) : undefined);

  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING', [STREAMS_SERVICE]: 'NOT_SERVING' });
  const syncHealth = (): void => {
    const status = oip.ready() ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', status);
    health.setStatus(SERVICE_NAME, status);
    health.setStatus(STREAMS_SERVICE, status);
  };
  const poll = setInterval(syncHealth, HEALTH_POLL_MS);
  poll.unref();

  /** A unary handler whose thrown errors become gRPC statuses; `traced`: a span per call when tracing is on. */
  const unary =
    <Req, Res>(name: string, handler: (request: Req, call: ServerUnaryCall<Req, Res>, span: CallSpan | undefined) => Res | Promise<Res>, traced = false) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const startedAt = performance.now();
      const span = traced ? callSpan(name, call.metadata) : undefined;
      const run = (): Promise<Res> => Promise.resolve().then(() => handler(call.request, call, span));
      (span ? span.within(run) : run()).then(
        (response) => {
          succeeded(name, startedAt, span);
          callback(null, response);
        },
        (err: unknown) => callback(toGrpcError(failed(name, startedAt, err, span)) as Parameters<sendUnaryData<Res>>[0]),
      );
    };

  const infer = async (request: WireInferRequest, signal: AbortSignal, span?: CallSpan): Promise<WireInferResponse> =>
    toWire(await oip.infer(fromWire(request), signal, span?.ids ? logger.child(span.ids) : logger));

  const implementation: UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', () => ({ live: oip.live() })),
    ServerReady: unary('ServerReady', () => ({ ready: oip.ready() })),
    ModelReady: unary('ModelReady', (r: { name: string; version: string }) => ({ ready: oip.modelReady(r.name, r.version || undefined) })),
    ServerMetadata: unary('ServerMetadata', () => oip.serverMetadata()),
    ModelMetadata: unary('ModelMetadata', (r: { name: string; version: string }) => oip.modelMetadata(r.name, r.version || undefined)),
    ModelInfer: unary(
      'ModelInfer',
      (request: WireInferRequest, call, span) => {
        checkToken(call.metadata);
        return infer(request, cancelled(call), span);
      },
      true,
    ),
    ModelStreamInfer: (call: ServerDuplexStream<WireInferRequest, unknown>) => {
      try {
        checkToken(call.metadata);
      } catch (err) {
        call.emit('error', toGrpcError(failed('ModelStreamInfer', performance.now(), err)));
        return;
      }
      const signal = cancelled(call);
      // Requests on one stream run concurrently (through the same queue as everything else) and
      // are answered as they finish; `id` tells them apart, as with Triton.
      const pending = new Set<Promise<void>>();
      // Each request of the stream is counted as one call.
      call.on('data', (request: WireInferRequest) => {
        const startedAt = performance.now();
        const span = callSpan('ModelStreamInfer', call.metadata);
        const run = (): Promise<WireInferResponse> => infer(request, signal, span);
        const done = (span ? span.within(run) : run()).then(
          (response) => {
            succeeded('ModelStreamInfer', startedAt, span);
            call.write({ error_message: '', infer_response: response });
          },
          (err: unknown) => {
            const error = failed('ModelStreamInfer', startedAt, err, span);
            if (!signal.aborted) call.write({ error_message: oneLine(error), infer_response: { id: request.id, model_name: request.model_name } });
          },
        );
        pending.add(done);
        void done.finally(() => pending.delete(done));
      });
      call.on('end', () => {
        void Promise.all(pending).then(() => call.end());
      });
    },
  };
  server.addService(inference.service, implementation);
  /** A Streams call's ends: a refusal (counted, logged, the call's status) or its finish, counted. */
  const streamCallEnds = (rpc: string): Pick<StreamCallDeps, 'refuse' | 'done'> => {
    const path = `/${STREAMS_SERVICE}/${rpc}`;
    const startedAt = performance.now();
    return {
      refuse: (refused, err) => {
        const error = asServiceError(err);
        metrics.error(error);
        logFailure(logger, error, { rpc: path }, 'gRPC call');
        metrics.observeRequest('grpc', path, 'POST', error.status, (performance.now() - startedAt) / 1000);
        refused.emit('error', toGrpcError(error));
      },
      done: (status) => metrics.observeRequest('grpc', path, 'POST', status, (performance.now() - startedAt) / 1000),
    };
  };
  const streamImplementation: UntypedServiceImplementation = {
    Classify: (call: StreamCall) => handleStreamCall(call, { service, logger, ...streamCallEnds('Classify') }),
    Watch: (call: WatchCall) => handleWatchCall(call, { service, ...streamCallEnds('Watch') }),
  };
  server.addService(streams.service, streamImplementation);
  health.addToServer(server);
  new ReflectionService(definition).addToServer(server);

  return {
    async listen(host, port) {
      const bound = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      syncHealth();
      return bound;
    },
    syncHealth,
    async close(graceMs) {
      clearInterval(poll);
      syncHealth();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          logger.warn({ graceMs }, 'gRPC calls did not finish in time; cancelling them');
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

/** Aborts when the client cancels the call or goes away. */
function cancelled(call: { on(event: 'cancelled', listener: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort(new EngineError('ABORTED', 'the client cancelled the call')));
  return controller.signal;
}
