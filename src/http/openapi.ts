/**
 * The OpenAPI 3.1 document, generated from the zod schemas (schemas.ts) and the error catalogue
 * (src/errors.ts). openapi.yaml at the repository root is this document written out by
 * `npm run openapi`; a test fails when the two differ, and another validates real responses
 * against the file.
 */
import { stringify } from 'yaml';
import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../errors.js';
import { MERGE_MODES } from '../engine/merging.js';
import { EMIT_MODES, STREAM_FORMATS, STREAM_POLICIES, StreamSettingsFields } from '../service/stream-events.js';
import { STREAM_ID_PATTERN } from '../service/stream-ids.js';
import { apiSchemas, ExplainField, KnobFields } from './schemas.js';
// Registers the OIP schemas in apiSchemas whatever the import order.
import './oip-schemas.js';

export const API_VERSION = '1.0.0';

type Json = Record<string, unknown>;

const ref = (id: string): Json => ({ $ref: `#/components/schemas/${id}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });

function componentSchemas(): Record<string, Json> {
  const { schemas } = z.toJSONSchema(apiSchemas, { target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, Json> };
  // Inside an OpenAPI document the component is the schema: no $id (it would rebase $refs) and no $schema.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $id: _id, $schema: _schema, ...schema }]) => [id, schema]));
}

function codesWith(statuses: number[]): string {
  return (Object.entries(ERRORS) as Array<[ErrorCode, { status: number; title: string }]>)
    .filter(([, e]) => statuses.includes(e.status))
    .map(([code, e]) => `\`${code}\` (${e.status}): ${e.title}`)
    .join('; ');
}

function errorResponses(statuses: number[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const status of statuses) out[String(status)] = { $ref: `#/components/responses/E${status}` };
  return out;
}

const knobShape = KnobFields.shape;
const knobNames = Object.keys(knobShape) as Array<keyof typeof knobShape>;
const knobDescription = (name: keyof typeof knobShape): string => knobShape[name].description ?? name;
const knobType = (name: keyof typeof knobShape): Json =>
  name === 'top_k' ? { type: 'integer' } : name === 'merge_mode' ? { type: 'string', enum: [...MERGE_MODES] } : { type: 'number' };

const INFERENCE_ERRORS = [400, 401, 408, 413, 415, 422, 429, 499, 500, 503, 504, 507];

export function buildOpenApiDocument(): Json {
  const statuses = [...new Set(Object.values(ERRORS).map((e) => e.status))].sort((a, b) => a - b);
  const responses: Record<string, Json> = {};
  for (const status of statuses) {
    const retry = status === 429 || status === 503 || status === 507;
    responses[`E${status}`] = {
      description: `Error ${status}. Codes: ${codesWith([status])}.`,
      ...(retry ? { headers: { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' } } } } : {}),
      content: json(ref('Error')),
    };
  }

  const knobFormFields = Object.fromEntries(knobNames.map((n) => [n, { ...knobType(n), description: knobDescription(n) }]));
  const knobQuery: Json[] = knobNames.map((n) => ({
    name: n,
    in: 'query',
    required: false,
    description: `${knobDescription(n)} (raw-body uploads only; multipart uploads send it as a field). Range and default: GET /v1/models/{name}.`,
    schema: knobType(n),
  }));
  // `explain` travels with the knobs but is not one (the model never sees it).
  const explainField = { type: 'boolean', default: false, description: ExplainField.description ?? 'explain' };
  knobFormFields.explain = explainField;
  knobQuery.push({ name: 'explain', in: 'query', required: false, description: `${explainField.description} (raw-body uploads only; multipart uploads send it as a field)`, schema: explainField });
  const binary = { type: 'string', contentMediaType: 'application/octet-stream' };
  const secured = [{ bearer: [] }, {}];

  const classify = {
    post: {
      operationId: 'classify',
      summary: 'Classify one video',
      description:
        'Upload one video as multipart/form-data (`file` part, knobs as fields) or as the raw body (video/* or application/octet-stream, knobs in the query string). ' +
        'The upload is streamed to a temp file, waits in a bounded queue, and is decoded and classified. ' +
        'The answer has the top-k labels, tokens per layer, the kept-token ratio, GFLOPs, the knobs used and the time per stage. ' +
        'A request not received in full within REQUEST_TIMEOUT_MS gets 408 REQUEST_TIMEOUT. ' +
        'Every error answered before the body was read in full (401, 408, 413, 415, 429, 503, an early 400, 507) closes the connection (`Connection: close`). ' +
        'A place in the queue is taken before the upload is read: when QUEUE_SIZE + CONCURRENCY requests are already in, the answer is 429 before any upload.',
      tags: ['inference'],
      security: secured,
      parameters: knobQuery,
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: { type: 'object', required: ['file'], properties: { file: { ...binary, description: 'the video' }, ...knobFormFields } },
          },
          'video/*': { schema: binary },
          'application/octet-stream': { schema: binary },
        },
      },
      responses: { '200': { description: 'the video was classified', content: json(ref('ClassifyResponse')) }, ...errorResponses(INFERENCE_ERRORS) },
    },
  };

  const batch = {
    post: {
      operationId: 'classifyBatch',
      summary: 'Classify several videos in one request',
      description:
        'multipart/form-data with one `files` part per video and optional knob fields that apply to every video. ' +
        'The answer has one item per file, in upload order: a result, or an error for that file alone (a bad file never fails the others). ' +
        'Request-level problems (bad knobs, too many files, queue full, not multipart) fail the whole request.',
      tags: ['inference'],
      security: secured,
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['files'],
              properties: { files: { type: 'array', items: binary, description: 'the videos, one part each' }, ...knobFormFields },
            },
          },
        },
      },
      responses: {
        '200': { description: 'one item per uploaded file', content: json(ref('BatchResponse')) },
        ...errorResponses([400, 401, 408, 413, 415, 429, 499, 500, 503, 507]),
      },
    },
  };

  const streamShape = StreamSettingsFields;
  const streamQuery: Json[] = [
    { name: 'window_s', schema: { type: 'number', minimum: 0.5, maximum: 30, default: 4 } },
    { name: 'stride_s', schema: { type: 'number', minimum: 0.1, maximum: 60 } },
    { name: 'policy', schema: { type: 'string', enum: [...STREAM_POLICIES], default: 'drop_oldest' } },
    { name: 'emit', schema: { type: 'string', enum: [...EMIT_MODES], default: 'windows' } },
    { name: 'average', schema: { type: 'integer', minimum: 1, maximum: 32, default: 1 } },
    { name: 'format', schema: { type: 'string', enum: Object.keys(STREAM_FORMATS) } },
  ].map((p) => ({ ...p, in: 'query', required: false, description: streamShape[p.name as keyof typeof streamShape].description ?? p.name }));
  const liveBody = { required: true, content: { 'video/*': { schema: binary }, 'application/octet-stream': { schema: binary } } };
  const streamOperation = (operationId: string): Json => ({
    operationId,
    summary: 'Classify a live stream as it is sent, window by window',
    description:
      'The body is a live stream (MPEG-TS, fragmented MP4, WebM/Matroska), sent chunked as it is produced; `curl -T -` sends it with PUT, so PUT is the same route. ' +
      'The answer (200) starts at once and is written while the upload goes on: one `StreamEvent` per line (application/x-ndjson), or as server-sent events (`event: <name>`, `data: <json>`) when the client accepts text/event-stream. ' +
      'Events: `started`; a `window` per window (seq, stream and wall times, lag_s, top labels, tokens per layer, GFLOPs); `dropped` when inference was behind and the policy is drop_oldest; `error`; and a last `ended` with a summary. ' +
      'Refused before any byte is decoded, as a normal error answer: bad settings or knobs (400), a non-video type (415), more than MAX_STREAMS streams (429 STREAMS_FULL), not ready or draining (503). ' +
      'A live upload is not cut by REQUEST_TIMEOUT_MS: it ends at STREAM_IDLE_TIMEOUT_MS without a byte (an `error` event STREAM_IDLE) or at STREAM_MAX_DURATION_S. ' +
      'The same stream over gRPC: haltingvt.v1.Streams/Classify (proto/streams.proto) on GRPC_PORT.',
    tags: ['inference'],
    security: secured,
    parameters: [...streamQuery, ...knobQuery.filter((q) => q.name !== 'explain')],
    requestBody: liveBody,
    responses: {
      '200': {
        description: 'the stream\'s events, as they come',
        content: { 'application/x-ndjson': { schema: ref('StreamEvent') }, 'text/event-stream': { schema: { type: 'string', description: 'each event as `event: <event>` and `data: <StreamEvent JSON>`' } } },
      },
      ...errorResponses([400, 401, 415, 429, 503]),
    },
  });
  const get = (operationId: string, summary: string, schema: string, errors: number[], extra: Json = {}): Json => ({
    get: { operationId, summary, tags: extra.tags ?? ['service'], ...extra, responses: { '200': { description: summary, content: json(ref(schema)) }, ...errorResponses(errors) } },
  });
  const pullBody = {
    description: 'With a JSON body (`PullRequest`, knobs beside the settings): the service pulls the source itself, as a pulled stream, answered 201 with its status; its events at /v1/streams/{id}/events.',
    content: { 'application/json': { schema: { allOf: [ref('PullRequest'), { type: 'object', properties: Object.fromEntries(knobQuery.filter((q) => q.name !== 'explain').map((q) => [q.name, q.schema])) }] } } },
  };
  const withPull = (operation: Json): Json => ({
    ...operation,
    description: `${operation.description as string} ` + 'With a JSON body instead, the service pulls a source (RTSP, SRT, HTTP(S) MPEG-TS or HLS) that the operator allows (PULL_SCHEMES, PULL_ALLOW): 201 with the stream\'s status; 403 SOURCE_NOT_ALLOWED for a refused scheme, host or address; 502 SOURCE_UNREACHABLE for a name that does not resolve.',
    requestBody: { required: true, content: { ...(liveBody.content as Json), ...(pullBody.content as Json) } },
    responses: { ...(operation.responses as Json), '201': { description: 'a pulled stream, started', headers: { Location: { schema: { type: 'string' } } }, content: json(ref('PulledStream')) }, ...errorResponses([403, 502]) },
  });
  const streams = { post: withPull(streamOperation('classifyStream')), put: withPull(streamOperation('classifyStreamPut')), ...get('listStreams', 'Pulled streams on this instance (ended ones kept a while), and how many pushed ones are open', 'PulledStreamList', [401], { tags: ['streams'], security: secured }) };
  const idParam = [
    {
      name: 'id',
      in: 'path',
      required: true,
      description: 'As created. With STREAM_ROUTING_KEY set, ids name the replica that holds the stream, and any replica answers for it by forwarding there.',
      schema: { type: 'string', pattern: STREAM_ID_PATTERN.source },
    },
  ];
  const streamById = {
    get: { operationId: 'getStream', summary: 'A pulled stream: state, uptime, windows, lag, reconnects, last error', tags: ['streams'], security: secured, parameters: idParam, responses: { '200': { description: 'its status', content: json(ref('PulledStream')) }, ...errorResponses([401, 404]) } },
    delete: { operationId: 'deleteStream', summary: 'Ends a pulled stream (an `ended` event, reason deleted) and forgets it', tags: ['streams'], security: secured, parameters: idParam, responses: { '204': { description: 'ended' }, ...errorResponses([401, 404]) } },
  };
  const streamEvents = {
    get: {
      operationId: 'watchStream',
      summary: 'A pulled stream\'s events as server-sent events, from the kept ones on',
      description: 'Each event as `id: <n>`, `event: <name>`, `data: <StreamEvent JSON>`. A watcher that reconnects with `Last-Event-ID` (or `?after=`) gets the events after it that are still kept (STREAM_EVENTS_KEPT), then new ones; the answer ends after `ended`. The same over gRPC: haltingvt.v1.Streams/Watch.',
      tags: ['streams'],
      security: secured,
      parameters: [...idParam, { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: 0 } }, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
      responses: { '200': { description: 'events as they come', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses([401, 404]) },
    },
  };

  const probe = (operationId: string, summary: string, schema: string): Json => ({
    get: {
      operationId,
      summary,
      tags: ['health'],
      responses: {
        '200': { description: 'ready', content: json(ref(schema)) },
        '503': {
          description: 'starting, unavailable (no inference worker can run now), draining or failed',
          headers: { 'Retry-After': { schema: { type: 'integer' } } },
          content: json(ref(schema)),
        },
      },
    },
  });

  const v2 = v2Paths(binary, secured);

  return {
    openapi: '3.1.0',
    info: {
      title: 'haltingvt video classification service',
      version: API_VERSION,
      description:
        'Video classification with adaptive token halting. Every inference answer reports what the video cost: tokens per layer, kept ratio and GFLOPs. ' +
        `Errors share one shape (\`Error\`) and one catalogue of codes: ${codesWith(statuses)}.`,
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'inference', description: 'classify videos' },
      { name: 'streams', description: 'pulled live streams: the service reads a camera or live source itself' },
      { name: 'models', description: 'what is served' },
      { name: 'health', description: 'liveness and readiness (also in KServe v2 form)' },
      { name: 'oip', description: 'Open Inference Protocol (KServe v2) with the binary-data and classification extensions; the same over gRPC on GRPC_PORT' },
      { name: 'service', description: 'metrics and documentation' },
    ],
    paths: {
      '/v1/classify': classify,
      '/v1/classify:batch': batch,
      '/v1/streams': streams,
      '/v1/streams/{id}': streamById,
      '/v1/streams/{id}/events': streamEvents,
      '/v1/models': get('listModels', 'The served models', 'ModelList', [503], { tags: ['models'] }),
      '/v1/models/{name}': get('getModel', 'One model: labels, input spec, knob ranges and defaults, dense GFLOPs', 'ModelInfo', [404, 503], {
        tags: ['models'],
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
      }),
      '/healthz': { get: { operationId: 'live', summary: 'Liveness: the process answers', tags: ['health'], responses: { '200': { description: 'alive', content: json(ref('Liveness')) } } } },
      '/readyz': probe('ready', 'Readiness: the model is warm and the service is not draining', 'Readiness'),
      '/v2/health/live': { get: { operationId: 'v2Live', summary: 'KServe v2 liveness', tags: ['health'], responses: { '200': { description: 'alive', content: json(ref('V2Live')) } } } },
      '/v2/health/ready': probe('v2Ready', 'KServe v2 readiness', 'V2Ready'),
      ...v2,
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus metrics (text exposition format)',
          tags: ['service'],
          responses: { '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/openapi.yaml': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          tags: ['service'],
          responses: { '200': { description: 'OpenAPI 3.1 in YAML', content: { 'application/yaml': { schema: { type: 'string' } } } } },
        },
      },
      '/docs': {
        get: {
          operationId: 'docs',
          summary: 'Interactive documentation (self-contained HTML)',
          tags: ['service'],
          responses: { '200': { description: 'an HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      '/demo': {
        get: {
          operationId: 'demo',
          summary: 'See where the compute went: pick a video, see the stop map over its frames, tokens, GFLOPs and timings (self-contained HTML, calls /v1/classify with explain=true)',
          tags: ['service'],
          responses: { '200': { description: 'an HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      '/live': {
        get: {
          operationId: 'liveView',
          summary: 'Pulled streams live: list them, start one from a URL, and plot per window the top label and its probability, tokens and GFLOPs against stream time (self-contained HTML over /v1/streams)',
          tags: ['service'],
          responses: { '200': { description: 'an HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
    },
    components: {
      schemas: componentSchemas(),
      responses,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'needed on inference routes when the service runs with AUTH_TOKEN' } },
    },
  };
}

/** Errors on /v2 have the OIP shape, `{"error": "..."}`, that stock clients read. */
function v2Errors(statuses: number[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const status of statuses) {
    const retry = status === 429 || status === 503;
    out[String(status)] = {
      description: `Error ${status}. Codes: ${codesWith([status])}.`,
      ...(retry ? { headers: { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' } } } } : {}),
      content: json(ref('V2Error')),
    };
  }
  return out;
}

function v2Paths(binary: Json, secured: Json[]): Record<string, Json> {
  const name = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  const version = { name: 'version', in: 'path', required: true, schema: { type: 'string' } };
  const out: Record<string, Json> = {
    '/v2': {
      get: { operationId: 'v2ServerMetadata', summary: 'OIP server metadata', tags: ['oip'], responses: { '200': { description: 'name, version, extensions', content: json(ref('V2ServerMetadata')) } } },
    },
  };
  for (const [base, params, suffix] of [
    ['/v2/models/{name}', [name], ''],
    ['/v2/models/{name}/versions/{version}', [name, version], 'Version'],
  ] as const) {
    out[base] = {
      get: {
        operationId: `v2ModelMetadata${suffix}`,
        summary: 'OIP model metadata: input VIDEO (BYTES, one encoded video per element) and the outputs',
        tags: ['oip'],
        parameters: params,
        responses: { '200': { description: 'the model', content: json(ref('V2ModelMetadata')) }, ...v2Errors([404, 503]) },
      },
    };
    out[`${base}/ready`] = {
      get: {
        operationId: `v2ModelReady${suffix}`,
        summary: 'OIP model readiness (the same answer as /readyz)',
        tags: ['oip'],
        parameters: params,
        responses: {
          '200': { description: 'ready', content: json(ref('V2ModelReady')) },
          '503': { description: 'starting, draining or failed', headers: { 'Retry-After': { schema: { type: 'integer' } } }, content: json(ref('V2ModelReady')) },
          ...v2Errors([404]),
        },
      },
    };
    out[`${base}/infer`] = {
      post: {
        operationId: `v2Infer${suffix}`,
        summary: 'OIP inference: one or more videos in the BYTES input VIDEO, knobs in parameters',
        description:
          'JSON, or (binary-data extension, as tritonclient sends it, with or without a Content-Type) an `Inference-Header-Content-Length` header giving the length of the JSON header, ' +
          'followed by each input with a `binary_data_size` parameter, in order; a BYTES element is a little-endian uint32 length and its bytes. ' +
          'The whole body is held in memory and is limited to MAX_UPLOAD_BYTES (plus 64 KiB for the header), whatever the number of videos. ' +
          'Outputs: LABELS (BYTES [N, top_k], "score:index:label"), PROBABILITIES (FP32 [N, classes]), GFLOPS (FP32 [N, 1]), TOKENS (INT64 [N, joint layers]), ERROR (BYTES [N, 1], "" or "CODE: message"). ' +
          'With the request parameter `explain: true` (or when EXPLANATION is named among the outputs), also EXPLANATION (BYTES [N, 1]): per video the JSON of the /v1 `Explanation` schema (stop map, sampled frames, thumbnails; "" for a failed video). ' +
          'An output is sent in binary when it asks for `binary_data: true` (or the request sets `binary_data_output`); the answer is then application/octet-stream with an `Inference-Header-Content-Length` header. ' +
          '`classification: k` on LABELS or PROBABILITIES returns the k best as "score:index:label". With one video, its failure is the request error; with several, each fails alone in ERROR.',
        tags: ['oip'],
        security: secured,
        parameters: params,
        requestBody: { required: true, content: { 'application/json': { schema: ref('V2InferRequest') }, 'application/octet-stream': { schema: binary } } },
        responses: {
          '200': {
            description: 'the outputs asked for (all when none is named)',
            content: { 'application/json': { schema: ref('V2InferResponse') }, 'application/octet-stream': { schema: { ...binary, description: 'JSON header (V2InferResponse) then the binary outputs' } } },
          },
          ...v2Errors(INFERENCE_ERRORS.filter((s) => s !== 499)),
        },
      },
    };
  }
  return out;
}

export function openApiYaml(): string {
  return stringify(buildOpenApiDocument(), { lineWidth: 0, aliasDuplicateObjects: false });
}
