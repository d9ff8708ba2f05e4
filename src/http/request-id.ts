/**
 * Request ids: an upstream `x-request-id` is kept when it looks like an id (so one id follows a
 * request through the proxy, the logs and the response), otherwise a UUID is made. Fastify 5 no
 * longer trusts the header by default; we check it ourselves rather than log arbitrary text.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';
const ACCEPTABLE = /^[A-Za-z0-9._:-]{1,128}$/;

export function createRequestIdGenerator(makeId: () => string = randomUUID): (req: IncomingMessage) => string {
  return (req) => {
    const incoming = req.headers[REQUEST_ID_HEADER];
    return typeof incoming === 'string' && ACCEPTABLE.test(incoming) ? incoming : makeId();
  };
}
