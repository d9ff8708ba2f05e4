/**
 * Pulled streams' management (the /v1 adapter over service.streams): the service opens the source
 * itself and keeps it open; clients list, inspect, delete, and watch a stream's events as
 * server-sent events, resuming with Last-Event-ID from the events still kept. Starting one is
 * POST /v1/streams with a JSON body (streams.ts, through pull-request.ts).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Service } from '../../service/index.js';
import type { LoggedEvent } from '../../service/event-log.js';
import { STREAM_ID_PATTERN } from '../../service/stream-ids.js';
import { clientGone } from '../reception.js';
import { forwardToOwner, isForwarded } from '../stream-forward.js';

const StreamId = z.strictObject({ id: z.string().regex(STREAM_ID_PATTERN, 'not a stream id') });

export const pulledStreamRoutes: FastifyPluginAsync<{ service: Service }> = async (base, { service }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', async (request) => service.authorize(request.headers.authorization));
  // A stream another replica holds is answered by that replica, whichever one the client reached.
  const routeToOwner = async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const owner = isForwarded(request) ? undefined : service.streams.owner(request.params.id);
    return owner === undefined ? undefined : forwardToOwner(request, reply, owner, service.metrics);
  };

  app.get('/v1/streams', async () => {
    const { pulled, pushed, max } = service.streams.list();
    return { streams: pulled.map((s) => s.status()), pushed, max };
  });
  app.get('/v1/streams/:id', { schema: { params: StreamId }, preHandler: routeToOwner }, async (request) => service.streams.get(request.params.id).status());
  app.delete('/v1/streams/:id', { schema: { params: StreamId }, preHandler: routeToOwner }, async (request, reply) => {
    await service.streams.remove(request.params.id);
    return reply.code(204).send();
  });

  app.get('/v1/streams/:id/events', { schema: { params: StreamId, querystring: z.strictObject({ after: z.coerce.number().int().nonnegative().optional() }) }, preHandler: routeToOwner }, async (request, reply) => {
    const stream = service.streams.get(request.params.id);
    const header = request.headers['last-event-id'];
    const after = request.query.after ?? (typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : undefined);
    const gone = clientGone(reply);
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const write = ({ id, event }: LoggedEvent): void => void reply.raw.write(`id: ${id}\nevent: ${event.event}\ndata: ${JSON.stringify(event)}\n\n`);
    await new Promise<void>((resolve) => {
      const { replay, missed, stop } = stream.events.watch(after, write, resolve);
      if (missed > 0) reply.raw.write(`: ${missed} events after ${after} are no longer kept\n\n`);
      for (const logged of replay) write(logged);
      gone.addEventListener('abort', () => {
        stop();
        resolve();
      });
    });
    reply.raw.end();
    return reply;
  });
};
