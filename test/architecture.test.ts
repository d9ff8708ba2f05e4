/**
 * The layout the code promises (docs/architecture.md), checked on the import graph of src/: the
 * engine knows nothing of the service, the service and the OIP protocol nothing of any transport,
 * no transport imports another or a route file, and each native library has one importer.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

const SRC = path.join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : name.endsWith('.ts') ? [full] : [];
  });
}

/** Every file of src/ (relative, with .ts) and what it imports: relative imports resolved the same way, packages as named. */
const graph: Map<string, string[]> = new Map(
  files(SRC).map((file) => {
    const text = readFileSync(file, 'utf8');
    const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)].map((m) => (m[1] ?? m[2]) as string);
    const resolved = specifiers.map((s) => (s.startsWith('.') ? path.relative(SRC, path.resolve(path.dirname(file), s)).replace(/\.js$/, '.ts') : s));
    return [path.relative(SRC, file), resolved];
  }),
);

/** Which part of the architecture a file of src/ belongs to. */
function part(file: string): string {
  if (file === 'app.ts' || file.startsWith('http/')) return 'http';
  if (file.startsWith('grpc/')) return 'grpc';
  if (file === 'cli.ts') return 'cli';
  if (file.startsWith('service/')) return 'service';
  if (file.startsWith('oip/')) return 'oip';
  if (file.startsWith('engine/')) return 'engine';
  if (file === 'server.ts') return 'server';
  return 'shared'; // config, errors, paths, figure/ (drawn by the CLI and the demo page alike)
}

const TRANSPORTS = ['http', 'grpc', 'cli'];
const edges = [...graph].flatMap(([from, imports]) => imports.filter((to) => graph.has(to)).map((to) => ({ from, to })));
const crossing = (allowed: (from: string, to: string) => boolean): string[] =>
  edges.filter(({ from, to }) => !allowed(part(from), part(to))).map(({ from, to }) => `${from} → ${to}`);

describe('the import graph of src/', () => {
  it('is read from the sources (a check on an empty graph would pass anything)', () => {
    expect(graph.get('app.ts')).toContain('service/index.ts');
    expect(edges.length).toBeGreaterThan(100);
  });

  it('no transport imports another transport', () => {
    expect(crossing((from, to) => !(TRANSPORTS.includes(from) && TRANSPORTS.includes(to) && from !== to))).toEqual([]);
  });

  it('the service layer and the OIP protocol import no transport; the engine imports neither', () => {
    expect(crossing((from, to) => !(['service', 'oip'].includes(from) && (TRANSPORTS.includes(to) || to === 'server')))).toEqual([]);
    expect(crossing((from, to) => !(from === 'service' && to === 'oip'))).toEqual([]);
    expect(crossing((from, to) => !(from === 'engine' && !['engine', 'shared'].includes(to)))).toEqual([]);
  });

  it('route files are imported by app.ts alone', () => {
    const routeImports = edges.filter(({ to }) => to.startsWith('http/routes/')).map(({ from }) => from);
    expect(new Set(routeImports)).toEqual(new Set(['app.ts']));
  });

  it('one importer each for onnxruntime-node, node-av and child processes', () => {
    const importers = (name: string): string[] => [...graph].filter(([, imports]) => imports.some((i) => i === name || i.startsWith(`${name}/`))).map(([file]) => file);
    expect(importers('onnxruntime-node')).toEqual(['engine/inference/ort-session.ts']);
    expect(importers('node-av')).toEqual(['engine/decode/libav.ts']);
    expect(importers('node:child_process')).toEqual(['engine/workers/fork.ts']);
  });

  it('one loader each for the OpenTelemetry SDK and the fastify instrumentation, loaded only when tracing is on (dynamic imports)', () => {
    const loaders = (name: string): string[] => files(SRC).filter((file) => readFileSync(file, 'utf8').includes(`'${name}'`)).map((file) => path.relative(SRC, file));
    expect(loaders('@opentelemetry/sdk-node')).toEqual(['telemetry/tracing.ts']);
    expect(loaders('@fastify/otel')).toEqual(['http/tracing.ts']);
    for (const [file, name] of [['telemetry/tracing.ts', '@opentelemetry/sdk-node'], ['http/tracing.ts', '@fastify/otel']] as const) {
      expect(graph.get(file), `${file} imports ${name} statically`).not.toContain(name);
      expect(readFileSync(path.join(SRC, file), 'utf8')).toContain(`await import('${name}')`);
    }
  });
});
