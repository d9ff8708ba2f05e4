import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configTable, withConfigTable } from '../../src/config-docs.js';
import { ConfigError, EnvSchema, loadConfig } from '../../src/config.js';
import { engineConfig } from '../../src/engine/config.js';
import { ROOT } from './helpers.js';

const root = '/srv/haltingvt';
const none = (): boolean => false;

describe('loadConfig', () => {
  it('has defaults for everything', () => {
    const c = loadConfig({}, { root, exists: none, tmpdir: '/scratch' });
    expect(c).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      grpcPort: 8081,
      logLevel: 'info',
      shutdown: { delayMs: 5_000, graceMs: 25_000 },
    });
    expect(c.service).toEqual({
      maxUploadBytes: 256 * 1024 * 1024,
      maxBatchItems: 16,
      queueSize: 16,
      concurrency: 2,
      uploadDir: '/scratch',
      authToken: undefined,
      streams: { max: 8, idleTimeoutMs: 10_000, maxDurationS: 4 * 3600, pull: { backoffMinS: 0.5, backoffMaxS: 30, connectTimeoutS: 15, events: 256, keepEnded: 32 } },
      sources: { schemes: [], allow: [], guard: path.join(root, 'dist/native/connect-guard.so') },
    });
    expect(c.http).toEqual({ requestTimeoutMs: 300_000, retryAfterS: 2, servedBy: undefined });
    // The engine's part is the engine's own config with its own defaults, but one decode worker per queue slot.
    expect(c.engine).toEqual(engineConfig({ decodeWorkers: 2 }));
    expect(c.engine).toMatchObject({ executionProviders: ['cuda', 'cpu'], intraOpNumThreads: 0, intraOpSpinning: false, decodeThreads: 0, decodeHwaccel: 'auto', batchMaxSize: 1, batchMaxDelayMs: 0, workerRestartBackoffMs: 500, workerRestartBackoffMaxMs: 30_000, workerMaxDownMs: 60_000, maxDurationS: 600, maxPixels: 3840 * 2160, decodeTimeoutMs: 60_000 });
  });

  it('serves models/default once it exists, the tiny fixture until then, MODEL_DIR when set', () => {
    expect(loadConfig({}, { root, exists: none }).modelDir).toBe(path.join(root, 'models/default'));
    expect(loadConfig({}, { root, exists: (f) => f === path.join(root, 'models/fixtures/tiny/manifest.json') }).modelDir).toBe(path.join(root, 'models/fixtures/tiny'));
    expect(loadConfig({}, { root, exists: (f) => f === path.join(root, 'models/default/manifest.json') }).modelDir).toBe(path.join(root, 'models/default'));
    expect(loadConfig({ MODEL_DIR: '/models/x' }, { root, exists: none }).modelDir).toBe('/models/x');
  });

  it('parses every variable', () => {
    const c = loadConfig(
      {
        PORT: '9000',
        HOST: '127.0.0.1',
        EXECUTION_PROVIDERS: 'cpu',
        INTRA_OP_THREADS: '3',
        INTRA_OP_SPINNING: 'true',
        MAX_UPLOAD_BYTES: '1000',
        MAX_DURATION_S: '2.5',
        MAX_PIXELS: '640',
        MAX_BATCH_ITEMS: '4',
        DECODE_TIMEOUT_MS: '500',
        DECODE_THREADS: '2',
        DECODE_HWACCEL: 'none',
        REQUEST_TIMEOUT_MS: '0',
        QUEUE_SIZE: '0',
        CONCURRENCY: '1',
        RETRY_AFTER_S: '9',
        SERVED_BY_HEADER: 'true',
        LOG_LEVEL: 'warn',
        AUTH_TOKEN: 'sixteen-chars-at-least',
        UPLOAD_DIR: '/var/tmp',
        SHUTDOWN_DELAY_MS: '100',
        SHUTDOWN_GRACE_MS: '200',
        WORKER_RESTART_BACKOFF_MS: '10',
        WORKER_RESTART_BACKOFF_MAX_MS: '40',
        WORKER_MAX_DOWN_MS: '0',
        MAX_STREAMS: '3',
        STREAM_IDLE_TIMEOUT_MS: '700',
        STREAM_MAX_DURATION_S: '60',
        STREAM_BATCH_MAX_SIZE: '4',
        STREAM_DECODER_NICE: '0',
        PULL_SCHEMES: 'rtsp, SRT',
        PULL_ALLOW: '10.20.0.0/16,cam.example.com,*.cams.example.org',
        UNRELATED: 'ignored',
      },
      { root, exists: (f) => f === path.join(root, 'dist/native/connect-guard.so'), hostname: 'pod-a' },
    );
    expect(c).toMatchObject({
      port: 9000,
      host: '127.0.0.1',
      engine: {
        executionProviders: ['cpu'],
        intraOpNumThreads: 3,
        intraOpSpinning: true,
        maxDurationS: 2.5,
        maxPixels: 640,
        decodeTimeoutMs: 500,
        decodeWorkers: 1,
        decodeThreads: 2,
        decodeHwaccel: 'none',
        workerRestartBackoffMs: 10,
        workerRestartBackoffMaxMs: 40,
        workerMaxDownMs: 0,
        streamBatchMaxSize: 4,
        streamDecoderNice: 0,
      },
      service: {
        maxUploadBytes: 1000,
        maxBatchItems: 4,
        queueSize: 0,
        concurrency: 1,
        uploadDir: '/var/tmp',
        authToken: 'sixteen-chars-at-least',
        streams: { max: 3, idleTimeoutMs: 700, maxDurationS: 60 },
        sources: { schemes: ['rtsp', 'srt'], allow: ['10.20.0.0/16', 'cam.example.com', '*.cams.example.org'] },
      },
      http: { requestTimeoutMs: 0, retryAfterS: 9, servedBy: 'pod-a' },
      logLevel: 'warn',
      shutdown: { delayMs: 100, graceMs: 200 },
    });
  });

  it('accepts webgpu among the execution providers and refuses unknown or repeated names', () => {
    expect(loadConfig({ EXECUTION_PROVIDERS: 'cuda,webgpu,cpu' }, { root, exists: none }).engine.executionProviders).toEqual(['cuda', 'webgpu', 'cpu']);
    expect(() => loadConfig({ EXECUTION_PROVIDERS: 'gpu,cpu' }, { root, exists: none })).toThrow(/EXECUTION_PROVIDERS="gpu,cpu": unknown execution provider "gpu" \(known: cuda, webgpu, cpu\)/);
    expect(() => loadConfig({ EXECUTION_PROVIDERS: 'cpu,webgpu,cpu' }, { root, exists: none })).toThrow(/names a provider twice/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', AUTH_TOKEN: '' }, { root, exists: none })).toMatchObject({ port: 8080, service: { authToken: undefined } });
  });

  it('refuses bad values with a message naming each variable', () => {
    const bad = { PORT: 'eighty', QUEUE_SIZE: '-1', LOG_LEVEL: 'loud', AUTH_TOKEN: 'short', EXECUTION_PROVIDERS: 'cuda;cpu', MAX_DURATION_S: '0', DECODE_HWACCEL: 'vaapi' };
    let error: unknown;
    try {
      loadConfig(bad, { root, exists: none });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const [name, value] of Object.entries(bad)) expect(message).toContain(`${name}=${JSON.stringify(value)}`);
    expect(() => loadConfig({ PORT: '70000' }, { root, exists: none })).toThrow(/PORT="70000"/);
    expect(() => loadConfig({ PULL_SCHEMES: 'rtsp,file' }, { root, exists: none })).toThrow(/PULL_SCHEMES="rtsp,file": unknown scheme\(s\) file/);
    expect(() => loadConfig({ PULL_SCHEMES: 'rtsp' }, { root, exists: none })).toThrow(/PULL_SCHEMES="rtsp": pulling needs the connect guard .*connect-guard.so, which is missing/);
    expect(() => loadConfig({ PULL_ALLOW: '10.0.0.0/8,bad host!' }, { root, exists: none })).toThrow(/PULL_ALLOW=.*not a host name, address or CIDR range: bad host!/);
    expect(() => loadConfig({ CONCURRENCY: '1.5' }, { root, exists: none })).toThrow(/CONCURRENCY/);
    expect(() => loadConfig({ STREAM_ROUTING_KEY: 'short' }, { root, exists: none })).toThrow(/STREAM_ROUTING_KEY=.*at least 32 characters/);
    expect(() => loadConfig({ STREAM_ROUTING_KEY: 'k'.repeat(32) }, { root, exists: none })).toThrow(/INSTANCE_URL.*is needed with STREAM_ROUTING_KEY/);
    expect(() => loadConfig({ INSTANCE_URL: 'ftp://10.0.0.1' }, { root, exists: none })).toThrow(/INSTANCE_URL=.*an http URL/);
    expect(() => loadConfig({ INSTANCE_URL: 'https://10.0.0.1' }, { root, exists: none })).toThrow(/INSTANCE_URL=.*an http URL/);
    expect(() => loadConfig({ INSTANCE_URL: 'http://10.0.0.1:8080/prefix' }, { root, exists: none })).toThrow(/INSTANCE_URL=.*an origin only/);
    expect(() => loadConfig({ INSTANCE_URL: 'http://u:p@10.0.0.1:8080' }, { root, exists: none })).toThrow(/INSTANCE_URL=.*an origin only/);
    expect(() => loadConfig({ INSTANCE_URL: `http://${'a'.repeat(200)}.example` }, { root, exists: none })).toThrow(/INSTANCE_URL=.*at most 200/);
    expect(loadConfig({ STREAM_ROUTING_KEY: 'k'.repeat(32), INSTANCE_URL: 'http://10.1.2.3:8080/' }, { root, exists: none }).service.streams.routing).toEqual({ key: 'k'.repeat(32), selfUrl: 'http://10.1.2.3:8080' });
    expect(loadConfig({ INSTANCE_URL: 'http://10.1.2.3:8080' }, { root, exists: none }).service.streams.routing).toBeUndefined();
    expect(() => loadConfig({ SHUTDOWN_DELAY_MS: '30000' }, { root, exists: none })).toThrow(/SHUTDOWN_DELAY_MS="30000": must be less than SHUTDOWN_GRACE_MS/);
  });
});

describe('the README configuration table', () => {
  it('is the one generated from the schema (run `npm run config-docs` after changing src/config.ts)', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(withConfigTable(readme)).toBe(readme);
  });

  it('has one row per variable, with its default and description', () => {
    const rows = configTable().split('\n').slice(2);
    expect(rows.map((r) => r.split(' | ')[0])).toEqual(Object.keys(EnvSchema.shape).map((name) => `| \`${name}\``));
    expect(rows).toContain('| `RETRY_AFTER_S` | `2` | `Retry-After` seconds sent with 429, 503 and 507 |');
    expect(rows.find((r) => r.startsWith('| `AUTH_TOKEN`'))).toMatch(/^\| `AUTH_TOKEN` \| unset \| when set/);
  });
});
