/**
 * The gRPC transport over a test app's service, as server.ts starts it: on a free loopback port.
 */
import { pino } from 'pino';
import { createGrpcService, type GrpcService } from '../../src/grpc/server.js';
import type { TestApp } from '../http/helpers.js';

export async function serveGrpc(t: TestApp): Promise<{ grpc: GrpcService; address: string }> {
  await t.app.ready();
  const grpc = createGrpcService({ service: t.service, serverVersion: 'test', logger: pino({ level: 'silent' }) });
  const port = await grpc.listen('127.0.0.1', 0);
  return { grpc, address: `127.0.0.1:${port}` };
}
