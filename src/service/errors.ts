/**
 * What every transport says about a failure, decided once: the catalogue code and status, the
 * message a caller may see (4xx: what was wrong; 5xx: only the catalogue's title, the full error
 * goes to the log), whether to retry, and the log line. Transports only put it in their own shape
 * (src/http/errors.ts for the /v1 and /v2 bodies, src/grpc/status.ts for gRPC statuses).
 */
import type { Logger } from 'pino';
import { ERRORS, EngineError, isEngineError, type ErrorCode } from '../errors.js';

export interface PublicError {
  code: ErrorCode;
  status: number;
  message: string;
  /** Structured facts (knob ranges, limits) for 4xx only, without server paths. */
  details: Record<string, unknown> | undefined;
  /** 429, 503, 507: the caller should retry later (Retry-After). */
  retryable: boolean;
}

/** Any thrown value → a catalogue error (INTERNAL for what is not one). */
export function asServiceError(err: unknown): EngineError {
  if (isEngineError(err)) return err;
  return new EngineError('INTERNAL', err instanceof Error ? err.message : String(err), undefined, { cause: err });
}

export function publicError(err: EngineError): PublicError {
  const { status, title } = ERRORS[err.code];
  const exposed = status < 500;
  return {
    code: err.code,
    status,
    message: exposed ? err.message : title,
    details: exposed && err.details ? publicDetails(err.details) : undefined,
    retryable: status === 429 || status === 503 || status === 507,
  };
}

/** `CODE: message`, the one-line form (gRPC details, the OIP ERROR output). */
export function oneLine(err: EngineError): string {
  return `${err.code}: ${publicError(err).message}`;
}

/** A logger as the service uses it: only these two levels. */
export type FailureLog = Pick<Logger, 'error' | 'info'>;

/**
 * 5xx in full at error level ("<subject> failed"), 4xx as one line at info ("<subject> refused"):
 * what a caller did wrong is not our fault.
 */
export function logFailure(logger: FailureLog, err: EngineError, context: Record<string, unknown>, subject = 'request'): void {
  if (err.status >= 500) logger.error({ ...context, err, code: err.code, details: err.details }, `${subject} failed`);
  else logger.info({ ...context, code: err.code, message: err.message }, `${subject} refused`);
}

/** Facts for the server's log only: `file` is a server path (a temp file, the model folder), `stderr` a worker's own output. */
const PRIVATE_DETAILS = new Set(['file', 'stderr']);

function publicDetails(details: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(details).filter(([key]) => !PRIVATE_DETAILS.has(key)));
}
