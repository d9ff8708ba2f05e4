/**
 * Optional bearer token on the inference routes (AUTH_TOKEN). Compared in constant time over
 * sha256 digests, so neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { EngineError } from '../errors.js';

export function createBearerCheck(token: string): (request: FastifyRequest) => void {
  const check = createAuthorizationCheck(token);
  return (request) => check(request.headers.authorization);
}

/** The same check on the value of an Authorization header (or gRPC `authorization` metadata). */
export function createAuthorizationCheck(token: string): (header: unknown) => void {
  const expected = digest(token);
  return (header) => {
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match || !timingSafeEqual(digest(match[1] as string), expected)) {
      throw new EngineError('UNAUTHORIZED', match ? 'the bearer token is not valid' : 'this route needs an "Authorization: Bearer <token>" header');
    }
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
