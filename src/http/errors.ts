/**
 * Every error the service answers goes through here and leaves as one shape (schemas.ts ErrorBody)
 * with a code from the one catalogue (src/errors.ts). Errors from fastify and its plugins are
 * mapped onto that catalogue; anything unknown becomes INTERNAL. As in fastify/demo, statuses
 * under 500 carry the real message and details, 5xx only the catalogue's title, and are logged in
 * full under the request id.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, EngineError, isEngineError, type ErrorCode } from '../errors.js';
import type { ErrorBody } from './schemas.js';

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

/** Any thrown value → an EngineError with a catalogue code. */
export function toServiceError(err: unknown): EngineError {
  if (isEngineError(err)) return err;
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
  return new EngineError('INTERNAL', e instanceof Error ? e.message : String(err), undefined, { cause: err });
}

/** The `error` object of a response body (also used per item in a batch). */
export function errorObject(err: EngineError, requestId: string): ErrorBody['error'] {
  const { status } = ERRORS[err.code];
  const exposed = status < 500;
  return {
    code: err.code,
    status,
    message: exposed ? err.message : ERRORS[err.code].title,
    request_id: requestId,
    ...(exposed && err.details ? { details: withoutPaths(err.details) } : {}),
  };
}

export function retryable(code: ErrorCode): boolean {
  const { status } = ERRORS[code];
  return status === 429 || status === 503 || status === 507;
}

/** Sends `err` (already mapped) as the response; logs it as its status deserves. */
export function sendError(request: FastifyRequest, reply: FastifyReply, err: EngineError, retryAfterS: number): FastifyReply {
  const body: ErrorBody = { error: errorObject(err, request.id) };
  const { status } = body.error;
  if (status >= 500) request.log.error({ err, code: err.code, details: err.details }, 'request failed');
  else request.log.info({ code: err.code, message: body.error.message }, 'request refused');
  if (retryable(err.code)) reply.header('retry-after', String(retryAfterS));
  if (err.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
  // An answer sent before the body was read in full leaves the rest of it on the socket, unread:
  // the connection could not carry another request and would hold shutdown, so it is closed.
  // (`complete` is Node's flag for a fully received message; inject() requests lack it.)
  if (request.raw.complete === false || err.code === 'UPLOAD_TOO_LARGE' || err.code === 'BATCH_TOO_LARGE') reply.header('connection', 'close');
  return reply.code(status).type('application/json; charset=utf-8').send(body);
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

function withoutPaths(details: Record<string, unknown>): Record<string, unknown> {
  // `file` is a server path (a temp file, the model folder), never the client's business.
  return Object.fromEntries(Object.entries(details).filter(([key]) => key !== 'file'));
}
