/**
 * Optional bearer token on the inference calls of every transport (AUTH_TOKEN): an HTTP
 * `Authorization` header or gRPC `authorization` metadata. Compared in constant time over sha256
 * digests, so neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { EngineError } from '../errors.js';

/** Throws UNAUTHORIZED unless `header` is `Bearer <token>`; with no token configured, accepts anything. */
export function createAuthorizationCheck(token: string | undefined): (header: unknown) => void {
  if (token === undefined) return () => undefined;
  const expected = digest(token);
  return (header) => {
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match || !timingSafeEqual(digest(match[1] as string), expected)) {
      throw new EngineError('UNAUTHORIZED', match ? 'the bearer token is not valid' : 'this call needs an "Authorization: Bearer <token>" header');
    }
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
