/**
 * Catalogue errors → gRPC status codes, as Triton and Google APIs map HTTP statuses. The message
 * follows the service's rule (src/service/errors.ts): 4xx say what was wrong, 5xx carry only the
 * catalogue's title.
 */
import { status as Code, Metadata, type ServiceError } from '@grpc/grpc-js';
import { ERRORS, type EngineError } from '../errors.js';
import { oneLine } from '../service/errors.js';

const BY_STATUS: Record<number, Code> = {
  400: Code.INVALID_ARGUMENT,
  401: Code.UNAUTHENTICATED,
  403: Code.PERMISSION_DENIED, // a source the operator's policy refuses
  404: Code.NOT_FOUND,
  408: Code.DEADLINE_EXCEEDED,
  413: Code.RESOURCE_EXHAUSTED,
  415: Code.INVALID_ARGUMENT,
  422: Code.INVALID_ARGUMENT,
  429: Code.RESOURCE_EXHAUSTED,
  499: Code.CANCELLED,
  500: Code.INTERNAL,
  502: Code.UNAVAILABLE, // a pulled source that cannot be reached
  503: Code.UNAVAILABLE,
  504: Code.DEADLINE_EXCEEDED,
  507: Code.RESOURCE_EXHAUSTED, // out of upload space: a capacity problem, like 429
};

export function grpcCode(error: EngineError): Code {
  return BY_STATUS[ERRORS[error.code].status] ?? Code.INTERNAL;
}

/** The status a client gets: the code, `CODE: message` (4xx) or `CODE: title` (5xx) as details, the catalogue code in metadata. */
export function toGrpcError(error: EngineError): Partial<ServiceError> {
  const metadata = new Metadata();
  metadata.set('haltingvt-error-code', error.code);
  return { code: grpcCode(error), details: oneLine(error), metadata };
}
