/**
 * POST /v1/classify (one video) and POST /v1/classify:batch (many, one result or error each): the
 * /v1 adapter over the service layer.
 *
 * A video arrives as multipart/form-data (`file` part, knobs as fields) or, for /v1/classify only,
 * as a raw body with a video/* or application/octet-stream content type and the knobs in the query
 * string. The service admits the request before its body is read; reception.ts spools the body
 * into the admission's temp files; the service classifies and releases.
 */
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { KnobInput } from '../../engine/index.js';
import { EngineError, isEngineError } from '../../errors.js';
import type { Admission, Service, VideoOutcome } from '../../service/index.js';
import { modelRef } from '../../service/models.js';
import { errorObject, toServiceError } from '../errors.js';
import { MULTIPART_OVERHEAD, RAW_TYPES, bodyDeadline, clientGone, mediaType, receiveMultipart, receiveRaw, refuseLongBody, unsupported } from '../reception.js';
import { BatchResponse, ClassifyFields, ClassifyResponse, withFormFields, type BatchItem, type VideoResult } from '../schemas.js';

export interface ClassifyRouteDeps {
  service: Service;
  /** REQUEST_TIMEOUT_MS: the whole body must arrive within it (0: no limit). */
  requestTimeoutMs: number;
}

interface Upload {
  admission: Admission;
  signal: AbortSignal;
  /** Fails with REQUEST_TIMEOUT (408) if the body is not received by REQUEST_TIMEOUT_MS. */
  receiving<T>(reading: Promise<T>): Promise<T>;
}

export const classifyRoutes: FastifyPluginAsync<ClassifyRouteDeps> = async (base, { service, requestTimeoutMs }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { maxUploadBytes, maxBatchItems } = service.limits;

  // Only what these routes accept: multipart, and every other type as an unread stream so the
  // handler can spool it or refuse it with 415 (fastify's JSON parser would buffer the body).
  app.removeAllContentTypeParsers();
  await app.register(multipart, {
    throwFileSizeLimit: false, // a too-large batch item fails alone: `truncated` is checked per file
    limits: { fileSize: maxUploadBytes, files: maxBatchItems + 1, fields: 16, fieldSize: 1024, parts: maxBatchItems + 16 },
  });
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.addHook('onRequest', async (request) => service.authorize(request.headers.authorization));

  app.post('/v1/classify', { schema: { querystring: ClassifyFields, response: { 200: ClassifyResponse } } }, (request, reply) =>
    upload(reply, async ({ admission, signal, receiving }) => {
      let fields: ClassifyFields = request.query;
      let video;
      if (request.isMultipart()) {
        refuseLongBody(request, maxUploadBytes + MULTIPART_OVERHEAD);
        const received = await receiving(receiveMultipart(request, admission.temps, { maxFiles: 1 }));
        [video] = received.items;
        if (!video) throw new EngineError('BAD_REQUEST', 'the form has no "file" part');
        if ('error' in video) throw video.error; // the file's own refusal (too large, empty) comes first
        fields = withFormFields(fields, received.fields); // form fields win over the query
      } else if (RAW_TYPES.test(mediaType(request))) {
        admission.engine.validateKnobs(knobsOf(fields)); // a bad knob is refused before the video is read
        video = await receiving(receiveRaw(request, admission.temps, maxUploadBytes));
      } else {
        throw unsupported(request);
      }
      const knobs = admission.engine.validateKnobs(knobsOf(fields));
      const [outcome] = await admission.classify([video], { knobs, explain: fields.explain, signal, log: request.log });
      const answer = answered(outcome as VideoOutcome);
      return { request_id: request.id, model: modelRef(admission.engine), ...answer };
    }));

  // `::` is find-my-way's escape for a literal colon (a single `:` would start a parameter).
  app.post('/v1/classify::batch', { schema: { querystring: ClassifyFields, response: { 200: BatchResponse } } }, (request, reply) =>
    upload(reply, async ({ admission, signal, receiving }) => {
      if (!request.isMultipart()) throw unsupported(request, 'a batch must be multipart/form-data with one "files" part per video');
      const { items, fields } = await receiving(receiveMultipart(request, admission.temps, { maxFiles: maxBatchItems }));
      if (items.length === 0) throw new EngineError('BAD_REQUEST', 'the form has no "files" parts');
      const given = withFormFields(request.query, fields);
      const knobs = admission.engine.validateKnobs(knobsOf(given));
      const outcomes = await admission.classify(items, { knobs, explain: given.explain, signal, batch: true, log: request.log });
      if (signal.aborted) throw new EngineError('ABORTED', 'the client went away during the batch');
      const answers = outcomes.map((o, index): BatchItem =>
        o.ok ? { index, ok: true, result: { filename: o.filename, ...o.result } } : { index, ok: false, filename: o.filename, error: errorObject(o.error, request.id) },
      );
      const succeeded = answers.filter((a) => a.ok).length;
      return { request_id: request.id, model: modelRef(admission.engine), knobs, succeeded, failed: answers.length - succeeded, items: answers };
    }));

  /**
   * What both routes share around their work: the service's admission (a place in the queue taken
   * before the upload is read, so QUEUE_FULL refuses the client before it sends its video; temp
   * files removed whatever happens), an abort signal that fires when the client goes away, and the
   * body's deadline.
   */
  async function upload<T>(reply: FastifyReply, work: (upload: Upload) => Promise<T>): Promise<T> {
    const admission = service.admit();
    const deadline = bodyDeadline(reply, requestTimeoutMs);
    const signal = clientGone(reply);
    try {
      return await work({ admission, signal, receiving: deadline.within });
    } catch (err) {
      // Whatever broke once the client had gone (a cut stream, a malformed end of form) is its leaving.
      throw signal.aborted && !isEngineError(err, 'REQUEST_TIMEOUT') ? (signal.reason as EngineError) : toServiceError(err);
    } finally {
      deadline.clear();
      await admission.release();
    }
  }
};

/** One video's result as /v1 serves it: the engine's answer with the client's file name; a failure is the request's error. */
function answered(outcome: VideoOutcome): VideoResult {
  if (!outcome.ok) throw outcome.error;
  return { filename: outcome.filename, ...outcome.result };
}

/** The knobs among the fields; `explain` is not one (the model never sees it). */
function knobsOf({ explain: _explain, ...knobs }: ClassifyFields): KnobInput {
  return knobs;
}
