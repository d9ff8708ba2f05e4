/**
 * POST /v1/classify (one video) and POST /v1/classify:batch (many, one result or error each).
 *
 * A video arrives as multipart/form-data (`file` part, knobs as fields) or, for /v1/classify only,
 * as a raw body with a video/* or application/octet-stream content type and the knobs in the query
 * string. Either way it is received (reception.ts) into a temp file (upload.ts), then goes through
 * the bounded queue (queue.ts) to the engine. The temp files go in the handler's `finally`.
 */
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { AppConfig } from '../../config.js';
import { round6, type ClassifyResult, type Knobs } from '../../engine/index.js';
import { EngineError, isEngineError } from '../../errors.js';
import type { EnginePort } from '../engine-port.js';
import { errorObject, toServiceError } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Metrics } from '../metrics.js';
import type { WorkQueue } from '../queue.js';
import { inLanes } from '../lanes.js';
import { ExplainField, KnobFields, type BatchItem, type BatchResponse, type ClassifyResponse, type VideoResult } from '../schemas.js';
import type { TempFiles, UploadArea } from '../upload.js';
import {
  MULTIPART_OVERHEAD,
  RAW_TYPES,
  bodyDeadline,
  clientGone,
  displayName,
  mediaType,
  receiveMultipart,
  refuseLongBody,
  unsupported,
  type Received,
  type Upload,
} from '../reception.js';

export interface ClassifyDeps {
  lifecycle: Lifecycle;
  queue: WorkQueue;
  uploads: UploadArea;
  metrics: Metrics;
  limits: AppConfig['limits'];
  /** Throws UNAUTHORIZED; absent when no AUTH_TOKEN is configured. */
  authorize?: ((request: FastifyRequest) => void) | undefined;
}

interface UploadSession {
  engine: EnginePort;
  temps: TempFiles;
  signal: AbortSignal;
  /** Fails with REQUEST_TIMEOUT (408) if the body is not received by REQUEST_TIMEOUT_MS. */
  receiving<T>(reading: Promise<T>): Promise<T>;
}

export const classifyRoutes: FastifyPluginAsync<ClassifyDeps> = async (app, deps) => {
  const { lifecycle, queue, uploads, metrics, limits } = deps;

  // Only what these routes accept: multipart, and every other type as an unread stream so the
  // handler can spool it or refuse it with 415 (fastify's JSON parser would buffer the body).
  app.removeAllContentTypeParsers();
  await app.register(multipart, {
    throwFileSizeLimit: false, // a too-large batch item fails alone: `truncated` is checked per file
    limits: { fileSize: limits.maxUploadBytes, files: limits.maxBatchItems + 1, fields: 16, fieldSize: 1024, parts: limits.maxBatchItems + 16 },
  });
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  if (deps.authorize) {
    const authorize = deps.authorize;
    app.addHook('onRequest', async (request) => authorize(request));
  }

  app.post('/v1/classify', (request, reply): Promise<ClassifyResponse> =>
    inUploadSession(reply, async ({ engine, temps, signal, receiving }) => {
      let upload: Upload;
      let knobs: Knobs;
      let explain: boolean;
      if (request.isMultipart()) {
        refuseLongBody(request, limits.maxUploadBytes + MULTIPART_OVERHEAD);
        const received = await receiving(receiveMultipart(request, temps, { maxFiles: 1 }));
        const [first] = received.items;
        if (!first) throw new EngineError('BAD_REQUEST', 'the form has no "file" part');
        if (first.error) throw first.error;
        ({ knobs, explain } = requestOptions(engine, { ...(request.query as Record<string, unknown>), ...received.fields }));  // form fields win over the query
        upload = first as Upload;
      } else if (RAW_TYPES.test(mediaType(request))) {
        ({ knobs, explain } = requestOptions(engine, request.query as Record<string, unknown>));
        refuseLongBody(request, limits.maxUploadBytes);
        const file = temps.path();
        const bytes = await receiving(temps.spool(request.body as Readable, file, limits.maxUploadBytes));
        if (bytes === 0) throw new EngineError('BAD_REQUEST', 'the request body is empty');
        upload = { path: file, filename: null, name: displayName(null) };
      } else {
        throw unsupported(request);
      }
      const result = await classifyFile(engine, upload, knobs, signal, explain);
      return { request_id: request.id, model: { name: engine.manifest.name, version: engine.manifest.version }, ...result };
    }));

  // `::` is find-my-way's escape for a literal colon (a single `:` would start a parameter).
  app.post('/v1/classify::batch', (request, reply): Promise<BatchResponse> =>
    inUploadSession(reply, async ({ engine, temps, signal, receiving }) => {
      if (!request.isMultipart()) throw unsupported(request, 'a batch must be multipart/form-data with one "files" part per video');
      const { items, fields } = await receiving(receiveMultipart(request, temps, { maxFiles: limits.maxBatchItems }));
      if (items.length === 0) throw new EngineError('BAD_REQUEST', 'the form has no "files" parts');
      const { knobs, explain } = requestOptions(engine, { ...(request.query as Record<string, unknown>), ...fields });
      metrics.batch(items.length);
      // Items run side by side, up to the service concurrency (lanes.ts says why single requests still get their turn).
      const settled = await inLanes(items, queue.concurrency, (item) => {
        if (item.error) throw item.error;
        return classifyFile(engine, item as Upload, knobs, signal, explain);
      });
      if (signal.aborted) throw new EngineError('ABORTED', 'the client went away during the batch');
      const answers: BatchItem[] = settled.map((outcome, index) => {
        const item = items[index] as Received['items'][number];
        if (outcome.status === 'fulfilled') return { index, ok: true, result: outcome.value };
        const error = toServiceError(outcome.reason);
        metrics.error(error.code);
        request.log[error.status >= 500 ? 'error' : 'info']({ err: error.status >= 500 ? error : undefined, code: error.code, index }, 'batch item failed');
        return { index, ok: false, filename: item.filename, error: errorObject(error, request.id) };
      });
      const succeeded = answers.filter((a) => a.ok).length;
      return {
        request_id: request.id,
        model: { name: engine.manifest.name, version: engine.manifest.version },
        knobs,
        succeeded,
        failed: answers.length - succeeded,
        items: answers,
      };
    }));

  /**
   * What both routes share around their work: the engine, a place in the queue taken before the
   * upload is read (QUEUE_FULL refuses the client before it sends its video), a lifecycle slot
   * (draining waits for it), the temp files (removed whatever happens), an abort signal that fires when the client goes away, and the body's deadline.
   */
  async function inUploadSession<T>(reply: FastifyReply, work: (session: UploadSession) => Promise<T>): Promise<T> {
    const engine = lifecycle.engine();
    const release = queue.admit();
    const leave = lifecycle.enter();
    const deadline = bodyDeadline(reply, limits.requestTimeoutMs);
    const signal = clientGone(reply);
    const session: UploadSession = { engine, temps: uploads.session(), signal, receiving: deadline.within };
    try {
      return await work(session);
    } catch (err) {
      // Whatever broke once the client had gone (a cut stream, a malformed end of form) is its leaving.
      throw signal.aborted && !isEngineError(err, 'REQUEST_TIMEOUT') ? (signal.reason as EngineError) : toServiceError(err);
    } finally {
      deadline.clear();
      await session.temps.removeAll();
      release();
      leave();
    }
  }

  async function classifyFile(engine: EnginePort, upload: Upload, knobs: Knobs, signal: AbortSignal, explain = false): Promise<VideoResult> {
    try {
      const { value, waitedS } = await queue.run(() => engine.classify(upload.path, knobs, { signal, explain, name: upload.name }), signal);
      const result = toVideoResult(value, upload.filename, waitedS);
      metrics.observeVideo(result);
      return result;
    } catch (err) {
      if (!isEngineError(err, 'QUEUE_FULL')) metrics.videoFailed();
      throw err;
    }
  }
};

/** The knobs and the `explain` switch among a request's fields; `explain` is not a knob (the model never sees it). */
function requestOptions(engine: EnginePort, input: Record<string, unknown>): { knobs: Knobs; explain: boolean } {
  const { explain, ...rest } = input;
  const parsed = ExplainField.safeParse(typeof explain === 'string' ? explain.trim().toLowerCase() : explain);
  if (!parsed.success) throw new EngineError('BAD_REQUEST', parsed.error.issues.map((i) => i.message).join('; '));
  return { knobs: engine.validateKnobs(parseKnobs(rest)), explain: parsed.data };
}

/** Knob text (query string, form fields, OIP parameters) → numbers and modes; the engine then checks the ranges. */
export function parseKnobs(input: Record<string, unknown>): KnobFields {
  const parsed = KnobFields.safeParse(input);
  if (parsed.success) return parsed.data;
  const unknown = parsed.error.issues.find((i) => i.code === 'unrecognized_keys');
  const problems = parsed.error.issues.map((i) => i.message);
  throw new EngineError(unknown ? 'BAD_REQUEST' : 'BAD_KNOB', problems.join('; '), { problems });
}

/** The engine's answer as it is, with the client's file name and the service queue's wait added to its timings. */
function toVideoResult(r: ClassifyResult, filename: string | null, waitedS: number): VideoResult {
  const { file: _path, model: _model, probabilities: _softmax, ...answer } = r;
  const t = answer.timings_s;
  return { filename, ...answer, timings_s: { ...t, queue: round6(waitedS + t.queue), total: round6(waitedS + t.total) } };
}
