/**
 * deploy/kserve/inferenceservice.yaml says what the service does: the ports it listens on by
 * default, and probes on routes that exist (answered through inject()).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ROOT, useTinyApp } from '../http/helpers.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const manifest = parse(readFileSync(path.join(ROOT, 'deploy', 'kserve', 'inferenceservice.yaml'), 'utf8')) as Json;
const container = manifest.spec.predictor.containers[0] as Json;

const t = useTinyApp();

describe('KServe InferenceService', () => {
  it('declares the HTTP and gRPC ports the service listens on', () => {
    expect(manifest).toMatchObject({ apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService' });
    const env = Object.fromEntries((container.env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
    const config = loadConfig(env);
    expect((container.ports as Json[]).map((p) => [p.name, p.containerPort])).toEqual([
      ['http1', config.port],
      ['h2c', config.grpcPort],
    ]);
    expect(config.grpcPort).toBe(loadConfig({}).grpcPort);
    expect(container.startupProbe.grpc.port).toBe(config.grpcPort);
  });

  it('probes routes that answer', async () => {
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      const res = await t.app.inject(probe.httpGet.path as string);
      expect(res.statusCode, probe.httpGet.path).toBe(200);
    }
  });
});
