/**
 * Shared set-up for the HTTP tests: the real engine on the tiny fixture model, apps built with
 * buildApp() over it, a pino logger whose lines the test can read, and a multipart body builder
 * for inject(). Videos come from test/helpers/media.ts (generated with ffmpeg into test/.cache).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import type { MetricsRegistry as Registry } from '../../src/service/metrics.js';
import { buildApp } from '../../src/app.js';
import type { AppConfig, HttpConfig, ServiceConfig } from '../../src/config.js';
import { createEngine, type Engine } from '../../src/engine/index.js';
import type { EngineConfigInput } from '../../src/engine/config.js';
import { CONNECT_GUARD } from '../../src/paths.js';
import { createService, type EnginePort, type Service } from '../../src/service/index.js';
import { createRegistry } from '../../src/service/metrics.js';
import type { UploadArea } from '../../src/service/uploads.js';
import type { Resolve } from '../../src/service/sources/policy.js';
import { ffmpeg } from '../helpers/media.js';
import { ROOT, TINY_MODEL } from '../helpers/paths.js';

export { fixture } from '../helpers/media.js';
export { ROOT, TINY_MODEL };

const SCRATCH = path.join(ROOT, 'test', '.cache', 'http');

/** The engine as server.ts opens it from a loaded configuration. */
export function engineFromConfig(config: AppConfig, logger: Logger): Promise<Engine> {
  return createEngine({ modelDir: config.modelDir, config: config.engine, logger });
}

/**
 * Stream decoders a little below the service, not the production default (19): tests bound windows'
 * lag, and vitest runs other test files beside them, whose work a decoder at 19 would wait behind.
 */
export const TEST_DECODER_NICE = 2;

export function openTinyEngine(config: EngineConfigInput = {}): Promise<Engine> {
  return createEngine({ modelDir: TINY_MODEL, config: { executionProviders: ['cpu'], intraOpNumThreads: 1, streamDecoderNice: TEST_DECODER_NICE, ...config } });
}

/**
 * For one test file: the tiny engine behind an app, opened before its tests and closed after them;
 * the default settings unless `engine` (the engine's) or `overrides` (the app's) say otherwise, and
 * the engine as it is unless `wrap` puts something in front of it (engineWith, heldEngine). The
 * fields read through to what beforeAll made. A file's own beforeAll, registered after, runs after
 * it, and its afterAll before this one's (vitest's default `sequence.hooks: 'stack'`).
 */
export function useTinyApp(options: { engine?: EngineConfigInput; wrap?: (engine: Engine) => EnginePort; overrides?: AppOverrides } = {}): TestApp & { readonly engine: Engine } {
  let engine: Engine | undefined;
  let t: TestApp | undefined;
  beforeAll(async () => {
    engine = await openTinyEngine(options.engine);
    t = makeApp(options.wrap ? options.wrap(engine) : engine, options.overrides);
  });
  afterAll(async () => {
    await t?.app.close();
    await engine?.close();
  });
  const made = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useTinyApp(): read it inside a test, after beforeAll');
    return value;
  };
  return {
    get engine() {
      return made(engine);
    },
    get app() {
      return made(t).app;
    },
    get service() {
      return made(t).service;
    },
    get registry() {
      return made(t).registry;
    },
    get uploadRoot() {
      return made(t).uploadRoot;
    },
    get logs() {
      return made(t).logs;
    },
    tempFiles: () => made(t).tempFiles(),
  };
}

export interface LogLine {
  level: number;
  msg: string;
  request_id?: string;
  err?: { type: string; message: string; stack: string };
  [key: string]: unknown;
}

export interface TestApp {
  app: FastifyInstance;
  service: Service;
  registry: Registry;
  uploadRoot: string;
  logs: LogLine[];
  /** Files left in the app's upload folder. */
  tempFiles(): string[];
}

export const DEFAULT_PULL: ServiceConfig['streams']['pull'] = { backoffMinS: 0.2, backoffMaxS: 1, connectTimeoutS: 10, events: 64, keepEnded: 8 };
export const DEFAULT_SERVICE: Omit<ServiceConfig, 'uploadDir'> = {
  maxUploadBytes: 8 * 1024 * 1024,
  maxBatchItems: 8,
  queueSize: 16,
  concurrency: 2,
  authToken: undefined,
  streams: { max: 4, idleTimeoutMs: 5000, maxDurationS: 600, routing: undefined, pull: DEFAULT_PULL },
  sources: { schemes: [], allow: [], guard: CONNECT_GUARD },
};
export const DEFAULT_HTTP: HttpConfig = { requestTimeoutMs: 300_000, retryAfterS: 2, servedBy: undefined };

export interface AppOverrides {
  /** `streams` without `pull` takes DEFAULT_PULL. */
  service?: Partial<Omit<ServiceConfig, 'streams' | 'sources'>> & {
    streams?: Omit<ServiceConfig['streams'], 'pull'> & { pull?: ServiceConfig['streams']['pull'] };
    /** Without `guard`: the one `make build` compiles. */
    sources?: Omit<ServiceConfig['sources'], 'guard'> & { guard?: string };
  };
  /** Name resolution for pulled sources (tests name hosts that resolve where they like). */
  resolve?: Resolve;
  http?: Partial<HttpConfig>;
  defaultMetrics?: boolean;
  /** Where uploads go instead of a fresh folder (a full disk). */
  uploads?: (uploadRoot: string) => UploadArea;
}

/** The service over `engine` and the HTTP app over the service, as server.ts wires them; closing the app disposes the uploads. */
export function makeApp(engine: EnginePort | Promise<EnginePort>, overrides: AppOverrides = {}): TestApp {
  mkdirSync(SCRATCH, { recursive: true });
  const uploadRoot = mkdtempSync(path.join(SCRATCH, 'up-'));
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const registry = createRegistry({ defaultMetrics: overrides.defaultMetrics ?? false });
  const service = createService({
    config: { ...DEFAULT_SERVICE, uploadDir: uploadRoot, ...overrides.service, streams: { ...DEFAULT_SERVICE.streams, ...overrides.service?.streams, pull: overrides.service?.streams?.pull ?? DEFAULT_PULL }, sources: { ...DEFAULT_SERVICE.sources, ...overrides.service?.sources } },
    engine,
    logger,
    registry,
    uploads: overrides.uploads?.(uploadRoot),
    resolve: overrides.resolve,
  });
  const app = buildApp({ service, config: { ...DEFAULT_HTTP, ...overrides.http }, logger });
  app.addHook('onClose', async () => service.close());
  const tempFiles = (): string[] => readdirSync(uploadRoot).flatMap((d) => readdirSync(path.join(uploadRoot, d)));
  return { app, service, registry, uploadRoot, logs, tempFiles };
}

export interface Part {
  name: string;
  /** A file part when set. */
  filename?: string;
  contentType?: string;
  data: Buffer | string;
}

/** A multipart/form-data body and its content type, for inject(). */
export function form(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----haltingvt${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename !== undefined ? `; filename="${part.filename}"` : ''}`;
    const type = part.contentType ?? (part.filename !== undefined ? 'application/octet-stream' : undefined);
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(part.data) ? part.data : Buffer.from(part.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

export function videoPart(name: string, file: string, fieldName = 'file'): Part {
  return { name: fieldName, filename: name, contentType: 'video/mp4', data: readFileSync(file) };
}

/** A promise that a test resolves by hand, to hold a request inside the engine. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Waits for `check` to hold, polling; fails the test after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A small (96x72) but 3 s long video, for the duration limit. Made once into test/.cache/http. */
export function longSmallVideo(): string {
  const file = path.join(SCRATCH, 'long-small.mp4');
  if (existsSync(file)) return file;
  mkdirSync(SCRATCH, { recursive: true });
  const tmp = path.join(SCRATCH, `.${process.pid}.long-small.mp4`);
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=96x72:rate=10:duration=3', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', tmp]);
  renameSync(tmp, file);
  return file;
}

/** The real engine behind a port whose classify() first waits for `before(file)`, e.g. a gate the test holds. */
export function heldEngine(engine: Engine, before: (file: string) => Promise<void>): EnginePort {
  return engineWith(engine, {
    classify: async (file, knobs, options) => {
      await before(file);
      return engine.classify(file, knobs, options);
    },
  });
}

/** The real engine as a port, with some of its calls replaced (a delay, a gate, a count). */
export function engineWith(engine: Engine, replaced: Partial<EnginePort>): EnginePort {
  return {
    manifest: engine.manifest,
    info: engine.info,
    validateKnobs: (k) => engine.validateKnobs(k),
    stats: () => engine.stats(),
    classify: (file, knobs, options) => engine.classify(file, knobs, options),
    classifyFrames: (frames, knobs, options) => engine.classifyFrames(frames, knobs, options),
    openStream: (stream, handlers) => engine.openStream(stream, handlers),
    ...replaced,
  };
}

/**
 * The real engine behind a port whose classify() waits at a gate the test opens; rearm() closes a
 * fresh gate and zeroes the count, for tests that share one app.
 */
export function gatedEngine(engine: Engine): {
  port: EnginePort;
  entered: () => number;
  open: () => void;
  /** Lets the videos waiting now through, and holds the ones that come after at a fresh gate. */
  openOne: () => void;
  rearm: () => void;
} {
  let g = gate();
  let calls = 0;
  const port = heldEngine(engine, () => {
    calls += 1;
    return g.promise;
  });
  const rearm = (): void => {
    g = gate();
    calls = 0;
  };
  const openOne = (): void => {
    const current = g;
    g = gate();
    current.open();
  };
  return { port, entered: () => calls, open: () => g.open(), openOne, rearm };
}
