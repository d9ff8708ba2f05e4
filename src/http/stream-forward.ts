/**
 * A request for a pulled stream that another replica holds (its id says which: service/stream-ids.ts)
 * is sent there and its answer relayed as it comes, server-sent events included. The owner's
 * address comes only from an id signed with the replicas' shared key, so this is never a request
 * to where a client points. A forwarded request carries FORWARDED_HEADER and is never forwarded
 * again, so two replicas that disagree cannot bounce it between them.
 */
import http from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EngineError } from '../errors.js';
import type { Metrics } from '../service/metrics.js';

export const FORWARDED_HEADER = 'x-haltingvt-forwarded';

/** The owner must accept the connection and answer with headers this soon; a stream of events then runs as long as it runs. */
const ANSWER_TIMEOUT_MS = 5_000;
/** What the owner needs to answer as if asked directly. */
const PASSED_ON = ['authorization', 'accept', 'last-event-id'] as const;
/** What the client needs of the owner's answer (ours add x-request-id and the rest). */
const RELAYED = ['content-type', 'cache-control', 'retry-after', 'x-accel-buffering', 'www-authenticate'] as const;

export function isForwarded(request: FastifyRequest): boolean {
  return request.headers[FORWARDED_HEADER] !== undefined;
}

export function forwardToOwner(request: FastifyRequest, reply: FastifyReply, owner: string, metrics: Metrics): Promise<FastifyReply> {
  const headers: http.OutgoingHttpHeaders = { [FORWARDED_HEADER]: '1' };
  for (const name of PASSED_ON) {
    const value: string | string[] | undefined = request.headers[name];
    if (value !== undefined) headers[name as string] = value;
  }
  // One id follows the request through both replicas' logs.
  headers['x-request-id'] = request.id;
  const target = ownerTarget(owner, request.url);
  const stream = (request.params as { id?: string }).id;
  return new Promise((resolve, reject) => {
    const upstream = http.request(target, { method: request.method, headers });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      upstream.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    // The client leaving ends the request to the owner, before its answer as after.
    let clientGone = false;
    reply.raw.once('close', () => {
      clientGone = !reply.raw.writableFinished;
      upstream.destroy();
    });
    upstream.once('error', (err) => {
      clearTimeout(timer);
      // Ended because the client left: nothing to answer, and nothing wrong with the owner.
      if (clientGone) return resolve(reply.hijack());
      metrics.streamForwarded('unreachable');
      request.log.warn({ owner, err: err.message }, 'the replica holding this stream cannot be reached');
      // Refused or unroutable: the replica is gone, and its streams with it. Slow: it may answer later.
      reject(
        timedOut
          ? new EngineError('STREAM_REPLICA_BUSY', `the replica holding stream ${stream} did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`, { stream })
          : new EngineError('STREAM_NOT_FOUND', 'the stream\'s replica cannot be reached (it may have stopped, and its streams with it)', { stream }),
      );
    });
    upstream.once('response', (answer) => {
      clearTimeout(timer);
      metrics.streamForwarded('answered');
      upstream.removeAllListeners('error');
      upstream.on('error', () => answer.destroy());
      // A relayed stream of events whose replica vanishes without closing its connection ends too.
      upstream.socket?.setKeepAlive(true, 10_000);
      for (const name of RELAYED) if (answer.headers[name] !== undefined) reply.header(name, answer.headers[name]);
      const status = answer.statusCode ?? 502;
      if (status === 204) {
        answer.resume();
        return resolve(reply.code(204).send());
      }
      resolve(reply.code(status).send(answer));
    });
    upstream.end();
  });
}

/**
 * The owner's address with the request's path and query. Only those: a request line may carry an
 * absolute URL (`GET http://elsewhere/v1/streams/…`), and its host must never become the target.
 */
function ownerTarget(owner: string, requestUrl: string): URL {
  const { pathname, search } = new URL(requestUrl, 'http://request.invalid');
  const target = new URL(owner);
  target.pathname = pathname;
  target.search = search;
  return target;
}
