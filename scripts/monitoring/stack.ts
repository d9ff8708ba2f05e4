/**
 * A trace backend and a metrics store beside the service, as real processes on loopback: Jaeger v2
 * (built from the Go module proxy by scripts/monitoring/build-jaeger.sh) receiving OTLP and answering
 * its query API, and Debian's Prometheus scraping the service's OpenMetrics with exemplar storage
 * on. The tracing test (test/tracing) checks the service against them; the screenshots script
 * (screenshots.ts) draws from them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Polls `check` every 50 ms until it holds; throws after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Array<{ refType: string; traceID: string; spanID: string }>;
  startTime: number;
  duration: number;
  tags: Array<{ key: string; value: unknown }>;
  processID: string;
}

/** A span as the test reads it: its tags as an object, and its process's resource attributes. */
export interface Span {
  traceId: string;
  id: string;
  name: string;
  /** Microseconds: since the epoch, and long. */
  start: number;
  duration: number;
  parent: string | undefined;
  /** Span links and follows-from references (Jaeger lists links as references too). */
  references: Array<{ traceID: string; spanID: string }>;
  tags: Record<string, unknown>;
  process: Record<string, unknown>;
}

export interface Jaeger {
  otlpHttp: string;
  /** The spans of a trace once at least `count` have arrived (the workers export on their own schedule). */
  trace(traceId: string, count: number): Promise<Span[]>;
  /** Trace ids of a service's traces with an operation. */
  find(service: string, operation: string): Promise<string[]>;
  stop(): void;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
export function stopAll(): void {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export async function startJaeger(binary: string): Promise<Jaeger> {
  const ports = { health: await freePort(), query: await freePort(), queryGrpc: await freePort(), otlpGrpc: await freePort(), otlpHttp: await freePort() };
  const child = spawn(binary, ['--config', fileURLToPath(new URL('./jaeger.yaml', import.meta.url))], {
    env: {
      PATH: process.env.PATH,
      JAEGER_HEALTH_PORT: String(ports.health),
      JAEGER_QUERY_PORT: String(ports.query),
      JAEGER_QUERY_GRPC_PORT: String(ports.queryGrpc),
      JAEGER_OTLP_GRPC_PORT: String(ports.otlpGrpc),
      JAEGER_OTLP_HTTP_PORT: String(ports.otlpHttp),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const api = `http://127.0.0.1:${ports.query}/api`;
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`Jaeger exited: ${stderr.slice(-2000)}`);
      return (await fetch(`http://127.0.0.1:${ports.health}/status`).catch(() => undefined))?.ok === true;
    },
    'Jaeger to start',
    30_000,
  );

  const read = async (traceId: string): Promise<Span[]> => {
    const response = await fetch(`${api}/traces/${traceId}`);
    if (response.status === 404) return [];
    const { data } = (await response.json()) as { data: Array<{ spans: JaegerSpan[]; processes: Record<string, { serviceName: string; tags: Array<{ key: string; value: unknown }> }> }> };
    const found = data[0];
    if (!found) return [];
    return found.spans.map((s) => ({
      traceId: s.traceID,
      id: s.spanID,
      name: s.operationName,
      start: s.startTime,
      duration: s.duration,
      parent: s.references.find((r) => r.refType === 'CHILD_OF')?.spanID,
      references: s.references.filter((r) => r.refType !== 'CHILD_OF'),
      tags: Object.fromEntries(s.tags.map((t) => [t.key, t.value])),
      process: { 'service.name': found.processes[s.processID]?.serviceName, ...Object.fromEntries((found.processes[s.processID]?.tags ?? []).map((t) => [t.key, t.value])) },
    }));
  };

  return {
    otlpHttp: `http://127.0.0.1:${ports.otlpHttp}`,
    async trace(traceId, count) {
      let spans: Span[] = [];
      await until(async () => (spans = await read(traceId)).length >= count, `${count} spans of trace ${traceId} in Jaeger`, 20_000);
      return spans;
    },
    async find(service, operation) {
      const response = await fetch(`${api}/traces?service=${encodeURIComponent(service)}&operation=${encodeURIComponent(operation)}&lookback=1h&limit=100`);
      const { data } = (await response.json()) as { data: Array<{ traceID: string }> | null };
      return (data ?? []).map((t) => t.traceID);
    },
    stop: () => child.kill('SIGKILL'),
  };
}

export interface Prometheus {
  /** The exemplars Prometheus stored for a series selector. */
  exemplars(selector: string): Promise<Array<{ labels: Record<string, string>; value: string }>>;
  /** Whether its last scrape of the target succeeded. */
  up(): Promise<boolean>;
  /** A range query: each series' labels and [unix seconds, value] points. */
  range(expr: string, startS: number, endS: number, stepS: number): Promise<Array<{ metric: Record<string, string>; values: Array<[number, string]> }>>;
}

/** Prometheus scraping `target` (host:port) every 500 ms, exemplars stored. */
export async function startPrometheus(target: string): Promise<Prometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-prometheus-'));
  dirs.push(dir);
  const port = await freePort();
  writeFileSync(path.join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: haltingvt\n    static_configs:\n      - targets: ['${target}']\n`);
  const child = spawn('prometheus', [`--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=127.0.0.1:${port}`, '--enable-feature=exemplar-storage', '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const api = `http://127.0.0.1:${port}/api/v1`;
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`Prometheus exited: ${stderr.slice(-2000)}`);
      return (await fetch(`http://127.0.0.1:${port}/-/ready`).catch(() => undefined))?.ok === true;
    },
    'Prometheus to start',
    30_000,
  );
  return {
    async exemplars(selector) {
      const now = Date.now() / 1000;
      const response = await fetch(`${api}/query_exemplars?query=${encodeURIComponent(selector)}&start=${now - 3600}&end=${now + 60}`);
      const { data } = (await response.json()) as { data: Array<{ exemplars: Array<{ labels: Record<string, string>; value: string }> }> };
      return data.flatMap((series) => series.exemplars);
    },
    async range(expr, startS, endS, stepS) {
      const response = await fetch(`${api}/query_range?query=${encodeURIComponent(expr)}&start=${startS}&end=${endS}&step=${stepS}`);
      const body = (await response.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> } };
      if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? body.status}`);
      return body.data.result;
    },
    async up() {
      const response = await fetch(`${api}/query?query=${encodeURIComponent('up{job="haltingvt"}')}`);
      const { data } = (await response.json()) as { data: { result: Array<{ value: [number, string] }> } };
      return data.result[0]?.value[1] === '1';
    },
  };
}
