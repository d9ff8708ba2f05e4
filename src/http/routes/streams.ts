/**
 * POST (or PUT) /v1/streams with a JSON body asks the service to pull a source (pulled-streams.ts).
 * Otherwise: a live stream pushed as the request body (chunked MPEG-TS, fragmented MP4,
 * WebM/Matroska), answered while it is still being sent: one event per line (NDJSON), or as
 * server-sent events when the client accepts text/event-stream. The /v1 adapter over
 * service.streams: settings and knobs from the query string, refusals (415, 400, 429 STREAMS_FULL,
 * 503) as a normal error answer before any byte is decoded; after the 200, failures are events.
 *
 * A live upload is exempt from REQUEST_TIMEOUT_MS (app.ts): its limits are the stream's own, the
 * idle timeout and the longest duration.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Service } from '../../service/index.js';
import { StreamSettingsFields, withStride, type StreamEvent } from '../../service/stream-events.js';
import { RAW_TYPES, clientGone, mediaType, unsupported } from '../reception.js';
import { KnobFields } from '../schemas.js';
import { startPull } from '../pull-request.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The body is a live stream: no upload deadline (app.ts). */
    liveUpload?: boolean;
  }
}

export const StreamQuery = z.strictObject({ ...KnobFields.shape, ...StreamSettingsFields }).transform(withStride);

/** How long a client that has its `ended` event may go on sending before the connection is closed. */
const LINGER_MS = 5000;

export const streamRoutes: FastifyPluginAsync<{ service: Service }> = async (base, { service }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  // Every body stays an unread stream: the service reads it as the stream goes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.addHook('onRequest', async (request) => service.authorize(request.headers.authorization));

  // PUT too: `curl -T -` uploads with it.
  app.route({
    method: ['POST', 'PUT'],
    url: '/v1/streams',
    schema: { querystring: StreamQuery },
    config: { liveUpload: true },
    handler: async (request, reply) => {
      if (mediaType(request) === 'application/json') return startPull(service, request, reply);
      if (!RAW_TYPES.test(mediaType(request))) throw unsupported(request, 'send the live stream itself as video/* or application/octet-stream, chunked');
      const { window_s, stride_s, policy, emit, average, format, ...knobFields } = request.query;
      const knobs = service.engine().validateKnobs(knobFields);
      const signal = clientGone(reply);
      const stream = service.streams.open({ settings: { window_s, stride_s, policy, emit, average, format }, knobs, source: request.body as Readable, signal, log: request.log });

      const sse = /\btext\/event-stream\b/.test(request.headers.accept ?? '');
      const body = new PassThrough();
      const write = sse ? (e: StreamEvent) => body.write(`event: ${e.event}\ndata: ${JSON.stringify(e)}\n\n`) : (e: StreamEvent) => body.write(`${JSON.stringify(e)}\n`);
      void stream.run(write).finally(() => body.end());
      reply.raw.once('finish', () => {
        // A sender still sending after its `ended` event (a limit, an error) is read and dropped for
        // a moment, then cut: it must not hold the connection for ever.
        if (request.raw.complete) return;
        request.raw.resume();
        setTimeout(() => request.raw.destroy(), LINGER_MS).unref();
      });
      return reply
        .header('cache-control', 'no-store')
        .header('x-accel-buffering', 'no') // proxies must pass each event on as it comes
        .type(sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .send(body);
    },
  });
};
