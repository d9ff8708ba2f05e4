/**
 * Every error the HTTP server answers goes through here, in the body shape of its route: /v1's
 * `{"error": {code, status, message, request_id}}` or the OIP's `{"error", "code"}` (the shape
 * tritonclient and the KServe SDK read), with a code from the one catalogue (src/errors.ts).
 * Errors from fastify and its plugins are mapped onto that catalogue; anything unknown becomes
 * INTERNAL. What a caller sees and what is logged is decided in src/service/errors.ts: statuses
 * under 500 carry the real message and details, 5xx only the catalogue's title, logged in full
 * under the request id.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ERRORS, EngineError, isEngineError, type ErrorCode } from '../errors.js';
import { asServiceError, logFailure, publicError } from '../service/errors.js';
import type { Metrics } from '../service/metrics.js';
import type { V2Error } from './oip-schemas.js';
import { fieldsProblem, type ErrorBody } from './schemas.js';

/** fastify and @fastify/multipart error codes → catalogue codes. */
const FRAMEWORK_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'UPLOAD_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'UPLOAD_TOO_LARGE',
  FST_FILES_LIMIT: 'BATCH_TOO_LARGE',
  FST_PARTS_LIMIT: 'BATCH_TOO_LARGE',
  FST_FIELDS_LIMIT: 'BAD_REQUEST',
  FST_PROTO_VIOLATION: 'BAD_REQUEST',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'BAD_REQUEST',
  FST_INVALID_JSON_FIELD_ERROR: 'BAD_REQUEST',
  FST_MP_PREMATURE_CLOSE: 'ABORTED',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_VALIDATION: 'BAD_REQUEST',
};

/** Any thrown value → an EngineError with a catalogue code (fastify's own errors mapped). */
export function toServiceError(err: unknown): EngineError {
  if (isEngineError(err)) return err;
  // A querystring refused by its zod schema says what /v1's form fields say for the same problem.
  if (hasZodFastifySchemaValidationErrors(err) && (err as Partial<FastifyError>).validationContext === 'querystring') {
    return fieldsProblem(err.validation.map((v) => ({ path: v.instancePath.split('/').filter(Boolean), code: v.keyword, message: v.message ?? v.keyword })));
  }
  const e = err as Partial<FastifyError> | undefined;
  const mapped = e?.code ? FRAMEWORK_CODES[e.code] : undefined;
  if (mapped) return new EngineError(mapped, e?.message ?? ERRORS[mapped].title, undefined, { cause: err });
  // busboy's own parse errors ("Malformed part header", "Unexpected end of form") carry no code.
  if (e instanceof Error && /multipart|malformed|unexpected end of form|boundary/i.test(e.message)) {
    return new EngineError('BAD_REQUEST', `malformed multipart body: ${e.message}`, undefined, { cause: err });
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status === 404) return new EngineError('NOT_FOUND', e?.message ?? 'not found', undefined, { cause: err });
  if (status >= 400 && status < 500) return new EngineError('BAD_REQUEST', e?.message ?? 'bad request', undefined, { cause: err });
  return asServiceError(err);
}

/** The `error` object of a /v1 body (also used per item in a batch). */
export function errorObject(err: EngineError, requestId: string): ErrorBody['error'] {
  const { code, status, message, details } = publicError(err);
  return { code, status, message, request_id: requestId, ...(details ? { details } : {}) };
}

/** The body shapes errors are answered in: /v1's, and the Open Inference Protocol's (/v2). */
export type ErrorShape = 'v1' | 'v2';

/** The shape of the route a request went to: the OIP's under /v2, ours elsewhere. */
export function errorShape(request: FastifyRequest): ErrorShape {
  return request.url.startsWith('/v2/') || request.url === '/v2' ? 'v2' : 'v1';
}

/**
 * The one place an HTTP error is answered: logged as its status deserves (5xx in full), counted,
 * and sent in the route's body shape with the headers it calls for.
 */
export function sendError(request: FastifyRequest, reply: FastifyReply, err: EngineError, deps: { metrics: Metrics; retryAfterS: number }): FastifyReply {
  const answer = publicError(err);
  deps.metrics.error(err);
  logFailure(request.log, err, {});
  if (answer.retryable) reply.header('retry-after', String(deps.retryAfterS));
  if (err.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
  // An answer sent before the body was read in full leaves the rest of it on the socket, unread:
  // the connection could not carry another request and would hold shutdown, so it is closed.
  // (`complete` is Node's flag for a fully received message; inject() requests lack it.)
  if (request.raw.complete === false || err.code === 'UPLOAD_TOO_LARGE' || err.code === 'BATCH_TOO_LARGE') reply.header('connection', 'close');
  const body: ErrorBody | V2Error = errorShape(request) === 'v2' ? { error: answer.message, code: answer.code } : { error: errorObject(err, request.id) };
  return reply.code(answer.status).type('application/json; charset=utf-8').send(body);
}

/**
 * The raw HTTP answer for a client error Node reports before fastify has a request (its own
 * request timeout, an unparsable request), in the one error format; undefined when the socket is
 * already gone and nothing can be answered.
 */
export function clientErrorAnswer(err: NodeJS.ErrnoException, requestId: string): { code: ErrorCode; status: number; raw: string } | undefined {
  if (err.code === 'ECONNRESET') return undefined;
  const code: ErrorCode = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
  const { status } = ERRORS[code];
  const body = JSON.stringify({ error: { code, status, message: code === 'REQUEST_TIMEOUT' ? ERRORS[code].title : 'the request could not be parsed', request_id: requestId } } satisfies ErrorBody);
  const reason = code === 'REQUEST_TIMEOUT' ? 'Request Timeout' : 'Bad Request';
  const raw = `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return { code, status, raw };
}
