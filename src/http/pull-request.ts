/**
 * POST /v1/streams with a JSON body: a source for the service to pull (the route in
 * routes/streams.ts keeps bodies unread, for pushed streams, and hands JSON ones here).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { EngineError } from '../errors.js';
import type { Service } from '../service/index.js';
import { PullFields, StreamSettingsFields, withStride } from '../service/stream-events.js';
import { KnobFields } from './schemas.js';

/** A pull request's JSON is small: anything larger is not one. */
const MAX_BODY_BYTES = 64 * 1024;

export const PullBody = z.strictObject({ ...KnobFields.shape, ...StreamSettingsFields, ...PullFields }).transform(withStride);

/** Reads the JSON body of POST /v1/streams (the route keeps bodies unread for pushed streams). */
export async function readPullBody(request: FastifyRequest): Promise<z.output<typeof PullBody>> {
  let text = '';
  for await (const chunk of request.body as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    if (text.length > MAX_BODY_BYTES) throw new EngineError('BAD_REQUEST', `a pull request's JSON is at most ${MAX_BODY_BYTES} bytes`, {});
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new EngineError('BAD_REQUEST', 'the body is not JSON', {});
  }
  const parsed = PullBody.safeParse(json);
  if (!parsed.success) throw new EngineError('BAD_REQUEST', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '), {});
  return parsed.data;
}

export async function startPull(service: Service, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { source, window_s, stride_s, policy, emit, average, format, stall_s, give_up_s, ...knobFields } = await readPullBody(request);
  const knobs = service.engine().validateKnobs(knobFields);
  const stream = await service.streams.pull({ source, settings: { window_s, stride_s, policy, emit, average, format }, pull: { stall_s, give_up_s }, knobs, log: request.log });
  return reply.code(201).header('location', `/v1/streams/${stream.id}`).send(stream.status());
}

