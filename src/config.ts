/**
 * Service configuration: one zod schema over the environment, validated once at boot. A bad value
 * stops the start with a message that names the variable (fail fast, as fastify/demo's env plugin).
 * Every limit has a default sized for a small CPU box. The typed configuration (AppConfig) is the
 * schema's output, and the README's configuration table is generated from the descriptions below
 * (`npm run config-docs`; test/http/config.test.ts fails when README.md is stale).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { engineConfig, providerListProblem } from './engine/config.js';
import { PRECISIONS } from './engine/model.js';
import { CONNECT_GUARD, defaultModelDir, PACKAGE_ROOT } from './paths.js';
import { isAddressOrRange, PULL_SCHEMES, type PullScheme } from './service/sources/policy.js';

/** The engine's own defaults, so that the CLI and the service refuse the same videos and restart alike. */
const engine = engineConfig();
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const positive = () => z.coerce.number().positive().finite();
const PROVIDER_LIST = /^[a-z0-9_-]+(,[a-z0-9_-]+)*$/;

/** Environment variables the service reads, with their defaults. Unset and empty mean the default. */
export const EnvSchema = z.object({
  PORT: int(0, 65535).default(8080).describe('TCP port the HTTP server listens on'),
  HOST: z.string().min(1).default('0.0.0.0').describe('address both servers bind'),
  GRPC_PORT: int(0, 65535).default(8081).describe('Open Inference Protocol gRPC port (with health and reflection); 0 turns gRPC off'),
  MODEL_DIR: z
    .string()
    .min(1)
    .optional()
    .describe('exported model folder; unset: the package\'s models/default, else models/fixtures/tiny'),
  MODEL_PRECISION: z
    .enum(PRECISIONS)
    .default(engine.precision)
    .describe('graph to serve: `fp32`, `int8` (faster on CPUs) or `fp16` (for CUDA); one the model\'s manifest.json does not list stops the start'),
  EXECUTION_PROVIDERS: z
    .string()
    .regex(PROVIDER_LIST, 'must be a comma-separated list such as "cuda,cpu"')
    // Only a well-formed list is checked for names, so that a bad separator gets one message.
    .refine((list) => !PROVIDER_LIST.test(list) || providerListProblem(list.split(',')) === undefined, { error: (i) => providerListProblem(String(i.input).split(',')) })
    .default(engine.executionProviders.join(','))
    .describe('ONNX Runtime providers in order of preference, from `cuda`, `webgpu`, `cpu`; one that cannot start is skipped with a warning'),
  INTRA_OP_THREADS: int(0, 1024).default(engine.intraOpNumThreads).describe('inference (ORT intra-op) threads; 0: the cores that the other videos\' decoding leaves, cores − (`CONCURRENCY` − 1), at least 1'),
  INTRA_OP_SPINNING: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .transform((v) => v === 'true' || v === '1')
    .default(engine.intraOpSpinning)
    .describe('whether inference threads spin while they wait for work (each then keeps a core busy between runs)'),
  MAX_UPLOAD_BYTES: int(1).default(256 * 1024 * 1024).describe('largest accepted video upload, per file (256 MiB)'),
  MAX_DURATION_S: positive().default(engine.maxDurationS).describe('longest accepted video, in seconds'),
  MAX_PIXELS: int(1).default(engine.maxPixels).describe('largest accepted frame, width × height (4K UHD)'),
  MAX_BATCH_ITEMS: int(1, 1000).default(16).describe('most videos in one batch request'),
  DECODE_TIMEOUT_MS: int(1).default(engine.decodeTimeoutMs).describe('wall-clock limit for decoding one video; past it the worker is killed and replaced (504)'),
  DECODE_WORKER_MAX_VIDEOS: int(0)
    .default(engine.decodeWorkerMaxVideos)
    .describe('videos after which a decode worker is replaced by a fresh one, bounding the memory its native heap gathers; 0: never'),
  INFERENCE_TIMEOUT_MS: int(1)
    .default(engine.inferenceTimeoutMs)
    .describe('wall-clock limit for one model run; past it its videos fail (504) and the inference worker is replaced'),
  DECODE_THREADS: int(0, 256)
    .default(engine.decodeThreads)
    .describe('decoder (and filter-graph) threads per decode worker (one per `CONCURRENCY` slot); 0: cores ÷ `CONCURRENCY`'),
  DECODE_HWACCEL: z
    .enum(['auto', 'cuda', 'none'])
    .default(engine.decodeHwaccel)
    .describe('NVDEC decoding: `auto` (when a CUDA device opens), `cuda` (both fall back to the CPU, logged) or `none`'),
  REQUEST_TIMEOUT_MS: int(0).default(300_000).describe('limit for receiving a whole request, upload included (0: none); past it 408'),
  QUEUE_SIZE: int(0, 100_000)
    .default(16)
    .describe('requests that may wait for a slot, uploads included; more get 429 before uploading'),
  CONCURRENCY: int(1, 64).default(2).describe('videos decoded at once, one decode worker each; as many more, decoded, may wait for the inference worker without a slot; a batch uses up to `CONCURRENCY` lanes'),
  BATCH_MAX_SIZE: int(1, 64)
    .default(engine.batchMaxSize)
    .describe('dynamic batching: most videos with equal knobs in one model run; 1 turns it off'),
  BATCH_MAX_DELAY_MS: int(0, 10_000)
    .default(engine.batchMaxDelayMs)
    .describe('dynamic batching: longest a ready video waits for others (0: only those already waiting join)'),
  MAX_STREAMS: int(0, 10_000)
    .default(8)
    .describe('live streams held at once (each has its own decoder process); more get 429 before any byte is decoded; 0 turns streams off'),
  STREAM_IDLE_TIMEOUT_MS: int(1).default(10_000).describe('a live stream that sends no byte for this long is ended with an error event'),
  STREAM_MAX_DURATION_S: positive().default(4 * 3600).describe('longest a live stream is held, wall clock; it then ends with a final event'),
  STREAM_BATCH_MAX_SIZE: int(0, 64)
    .default(engine.streamBatchMaxSize)
    .describe('live stream windows waiting for inference together run as one batch of up to this many (1: one at a time); 0: 8 when one run of the model takes under 100 ms at warm-up, else 1 (a large model\'s batches cost more per video)'),
  STREAM_DECODER_NICE: int(0, 19).default(engine.streamDecoderNice).describe('how much lower (nice) live stream decoders run than the service, so that the shared inference goes first'),
  PULL_SCHEMES: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const schemes = v.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
      const bad = schemes.filter((x) => !(PULL_SCHEMES as readonly string[]).includes(x));
      if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `unknown scheme(s) ${bad.join(', ')}; known: ${PULL_SCHEMES.join(', ')}` });
      return schemes as PullScheme[];
    })
    .describe(`schemes the service may pull live sources from (POST /v1/streams with a source URL), comma-separated, of ${PULL_SCHEMES.join(', ')} (HLS is http/https); empty: pulling is off`),
  PULL_ALLOW: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const entries = v.split(',').map((x) => x.trim()).filter(Boolean);
      const bad = entries.filter((x) => x !== '*' && !/^(\*\.)?[a-z0-9.-]+$/i.test(x) && !isAddressOrRange(x));
      if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `not a host name, address or CIDR range: ${bad.join(', ')}` });
      return entries;
    })
    .describe('hosts pulled sources may come from, comma-separated: names (`cam.example.com`, `*.example.com`), addresses and CIDR ranges (`10.20.0.0/16`); `*`: any public address. Loopback, private, link-local, CGNAT, multicast and IPv6 local addresses are refused unless inside a listed address or range, whatever name leads to them'),
  STREAM_ROUTING_KEY: z
    .string()
    .min(32, 'must be at least 32 characters')
    .optional()
    .describe('a secret shared by every replica (≥ 32 characters): pulled streams\' ids then carry the address of the replica that holds them, signed with it, and any replica answers GET, DELETE and events for any stream by forwarding to that replica; needs `INSTANCE_URL`'),
  INSTANCE_URL: z
    .url({ protocol: /^http$/, error: 'must be an http URL' })
    .max(200, 'must be at most 200 characters (it is written into every pulled stream\'s id)')
    .refine((u) => new URL(u).origin === u.replace(/\/+$/, ''), 'must be an origin only (http://host:port): no path, query or credentials')
    .optional()
    .describe('how the other replicas reach this one, an http origin such as `http://$(POD_IP):8080` on Kubernetes; written into pulled streams\' ids when `STREAM_ROUTING_KEY` is set'),
  STREAM_CONNECT_TIMEOUT_S: positive().default(15).describe('a pulled source that gives no packet this long after a (re)connection is retried'),
  STREAM_RECONNECT_MIN_S: positive().default(0.5).describe('first wait before reconnecting a pulled source; it doubles per failed attempt, with ±25% jitter'),
  STREAM_RECONNECT_MAX_S: positive().default(30).describe('longest wait between reconnection attempts'),
  STREAM_EVENTS_KEPT: int(16, 65_536).default(256).describe('events kept per pulled stream, replayed to a watcher that reconnects with Last-Event-ID'),
  RETRY_AFTER_S: int(1, 3600).default(2).describe('`Retry-After` seconds sent with 429, 503 and 507'),
  SERVED_BY_HEADER: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .transform((v) => v === 'true' || v === '1')
    .default(false)
    .describe('whether every HTTP answer names the host that served it (`x-served-by`; a pod\'s name on Kubernetes), to see how a load balancer spreads requests; off because it tells clients the host name'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino log level (JSON lines with request ids)'),
  AUTH_TOKEN: z.string().min(16, 'must be at least 16 characters').optional().describe('when set (≥ 16 characters), the inference routes need `Authorization: Bearer <token>`'),
  UPLOAD_DIR: z
    .string()
    .min(1)
    .optional()
    .describe('where uploads are streamed, in a folder per process; unset: the system temp folder'),
  SHUTDOWN_DELAY_MS: int(0)
    .default(5_000)
    .describe('after SIGTERM, time `/readyz` answers 503 before the listener closes; below `SHUTDOWN_GRACE_MS`'),
  SHUTDOWN_GRACE_MS: int(1)
    .default(25_000)
    .describe('after SIGTERM, the longest shutdown; requests still running near its end are cut, then exit 0'),
  WORKER_RESTART_BACKOFF_MS: int(0)
    .default(engine.workerRestartBackoffMs)
    .describe('delay before restarting a worker that died while starting; doubles per failure in a row'),
  WORKER_RESTART_BACKOFF_MAX_MS: int(0).default(engine.workerRestartBackoffMaxMs).describe('cap of that delay; restarts go on as long as the process lives'),
  WORKER_MAX_DOWN_MS: int(0)
    .default(engine.workerMaxDownMs)
    .describe('longest time without a working inference or decode worker, from the first failure, before the process exits 1; 0: never'),
}).refine((e) => e.SHUTDOWN_DELAY_MS < e.SHUTDOWN_GRACE_MS, { path: ['SHUTDOWN_DELAY_MS'], message: 'must be less than SHUTDOWN_GRACE_MS' });

export type Env = z.infer<typeof EnvSchema>;

export interface ConfigPlaces {
  /** Defaults to a check on the real file system. */
  exists?: (file: string) => boolean;
  /** Where models/default is looked for; defaults to the package root. */
  root?: string;
  /** Where uploads go when UPLOAD_DIR is unset; defaults to the system temp folder. */
  tmpdir?: string;
  /** What SERVED_BY_HEADER sends; defaults to the host name. */
  hostname?: string;
}

/**
 * The schema that turns the environment into the service's configuration; its output is AppConfig.
 * Each part is what one component takes as it is: `engine` is the engine's own config
 * (src/engine/config.ts, under its own names), `service` the transport-neutral service layer's,
 * the rest the transports' and the process's.
 */
export function configSchema(places: ConfigPlaces = {}) {
  const exists = places.exists ?? existsSync;
  const guard = path.join(places.root ?? PACKAGE_ROOT, path.relative(PACKAGE_ROOT, CONNECT_GUARD));
  return EnvSchema.superRefine((e, ctx) => {
    if (e.STREAM_ROUTING_KEY !== undefined && e.INSTANCE_URL === undefined) ctx.addIssue({ code: 'custom', path: ['INSTANCE_URL'], message: 'is needed with STREAM_ROUTING_KEY: the address other replicas forward to' });
    // Pulling without the guard would leave libav free to connect where a source's server points it.
    if (e.PULL_SCHEMES.length > 0 && !exists(guard)) ctx.addIssue({ code: 'custom', path: ['PULL_SCHEMES'], message: `pulling needs the connect guard ${guard}, which is missing (make build compiles it)` });
  }).transform((e) => ({
    port: e.PORT,
    host: e.HOST,
    /** 0: no gRPC server. */
    grpcPort: e.GRPC_PORT,
    modelDir: e.MODEL_DIR ? path.resolve(e.MODEL_DIR) : defaultModelDir([places.root ?? PACKAGE_ROOT], exists),
    engine: engineConfig({
      precision: e.MODEL_PRECISION,
      executionProviders: e.EXECUTION_PROVIDERS.split(','),
      intraOpNumThreads: e.INTRA_OP_THREADS,
      intraOpSpinning: e.INTRA_OP_SPINNING,
      maxDurationS: e.MAX_DURATION_S,
      maxPixels: e.MAX_PIXELS,
      decodeTimeoutMs: e.DECODE_TIMEOUT_MS,
      inferenceTimeoutMs: e.INFERENCE_TIMEOUT_MS,
      // One decode worker per queue slot: at most CONCURRENCY videos decode at once.
      decodeWorkers: e.CONCURRENCY,
      decodeThreads: e.DECODE_THREADS,
      decodeWorkerMaxVideos: e.DECODE_WORKER_MAX_VIDEOS,
      decodeHwaccel: e.DECODE_HWACCEL,
      batchMaxSize: e.BATCH_MAX_SIZE,
      batchMaxDelayMs: e.BATCH_MAX_DELAY_MS,
      streamBatchMaxSize: e.STREAM_BATCH_MAX_SIZE,
      streamDecoderNice: e.STREAM_DECODER_NICE,
      workerRestartBackoffMs: e.WORKER_RESTART_BACKOFF_MS,
      workerRestartBackoffMaxMs: e.WORKER_RESTART_BACKOFF_MAX_MS,
      workerMaxDownMs: e.WORKER_MAX_DOWN_MS,
    }),
    service: {
      maxUploadBytes: e.MAX_UPLOAD_BYTES,
      maxBatchItems: e.MAX_BATCH_ITEMS,
      queueSize: e.QUEUE_SIZE,
      concurrency: e.CONCURRENCY,
      uploadDir: path.resolve(e.UPLOAD_DIR ?? places.tmpdir ?? os.tmpdir()),
      authToken: e.AUTH_TOKEN,
      streams: {
        max: e.MAX_STREAMS,
        idleTimeoutMs: e.STREAM_IDLE_TIMEOUT_MS,
        maxDurationS: e.STREAM_MAX_DURATION_S,
        // Pulled streams reachable through any replica (src/service/stream-ids.ts); absent: each replica answers for its own.
        ...(e.STREAM_ROUTING_KEY !== undefined && e.INSTANCE_URL !== undefined ? { routing: { key: e.STREAM_ROUTING_KEY, selfUrl: new URL(e.INSTANCE_URL).origin } } : {}),
        pull: { backoffMinS: e.STREAM_RECONNECT_MIN_S, backoffMaxS: Math.max(e.STREAM_RECONNECT_MIN_S, e.STREAM_RECONNECT_MAX_S), connectTimeoutS: e.STREAM_CONNECT_TIMEOUT_S, events: e.STREAM_EVENTS_KEPT, keepEnded: 32 },
      },
      /** `guard`: the connect guard (src/native/connect-guard.c) every pulled decoder loads. */
      sources: { schemes: e.PULL_SCHEMES, allow: e.PULL_ALLOW, guard },
    },
    /** `servedBy`: the `x-served-by` value, when SERVED_BY_HEADER is on. */
    http: { requestTimeoutMs: e.REQUEST_TIMEOUT_MS, retryAfterS: e.RETRY_AFTER_S, servedBy: e.SERVED_BY_HEADER ? (places.hostname ?? os.hostname()) : undefined },
    logLevel: e.LOG_LEVEL,
    shutdown: { delayMs: e.SHUTDOWN_DELAY_MS, graceMs: e.SHUTDOWN_GRACE_MS },
  }));
}

export type AppConfig = z.output<ReturnType<typeof configSchema>>;
export type ServiceConfig = AppConfig['service'];
export type HttpConfig = AppConfig['http'];

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Reads the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined>, places: ConfigPlaces = {}): AppConfig {
  // An empty variable means "unset": `FOO= node server.js` should not fail on FOO.
  const present = Object.fromEntries(Object.entries(env).filter(([k, v]) => k in EnvSchema.shape && v !== undefined && v !== ''));
  const parsed = configSchema(places).safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? '(environment)');
      return `${name}=${JSON.stringify(present[name] ?? '')}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}
