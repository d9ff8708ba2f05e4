/**
 * haltingvt.v1.Streams/Classify (proto/streams.proto): a live stream over one bidirectional call.
 * The first message is the config (the /v1/streams query's settings and knobs, checked by the same
 * schema), the rest carry the stream's bytes; events go back as the service emits them. The call's
 * messages are read through a stream that the service pauses, so `block` holds the sender back by
 * HTTP/2 flow control.
 */
import { Transform } from 'node:stream';
import type { ServerDuplexStream, ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { EngineError } from '../errors.js';
import type { Service } from '../service/index.js';
import { StreamSettings, type StreamEvent } from '../service/stream-events.js';

export const STREAMS_SERVICE = 'haltingvt.v1.Streams';

interface WireConfig {
  window_s?: number;
  stride_s?: number;
  policy?: string;
  emit?: string;
  average?: number;
  format?: string;
  top_k?: number;
  keep_ratio?: number;
  halt_threshold?: number;
  merge_mode?: string;
  merge_ratio?: number;
}
type WireMessage = { kind: 'config'; config: WireConfig } | { kind: 'chunk'; chunk: Buffer };
export type StreamCall = ServerDuplexStream<WireMessage, unknown>;


export interface StreamCallDeps {
  service: Service;
  logger: Logger;
  /** Counts the call once it ends (0: OK) and turns a refusal into the call's status (an `error` the call emits). */
  refuse(call: Pick<StreamCall, 'emit'>, err: unknown): void;
  done(status: number): void;
}

export function handleStreamCall(call: StreamCall, deps: StreamCallDeps): void {
  const { service, logger } = deps;
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort(new EngineError('ABORTED', 'the client cancelled the call')));
  // A call that never says what it wants holds nothing for long.
  const waiting = setTimeout(() => {
    call.removeAllListeners('data');
    deps.refuse(call, new EngineError('STREAM_IDLE', `no config message within ${service.streams.idleTimeoutMs} ms`, { idleTimeoutMs: service.streams.idleTimeoutMs }));
  }, service.streams.idleTimeoutMs);
  call.once('data', (first: WireMessage) => {
    clearTimeout(waiting);
    call.pause();
    let open;
    try {
      service.authorize(call.metadata.get('authorization')[0]);
      if (first.kind !== 'config') throw new EngineError('BAD_REQUEST', 'the first message of a stream must be its config');
      // proto-loader names each proto3 `optional` field's synthetic oneof (`_window_s`); unset fields are absent or null.
      const given = Object.fromEntries(Object.entries(first.config).filter(([key, value]) => !key.startsWith('_') && value !== undefined && value !== null)) as WireConfig;
      const { top_k, keep_ratio, halt_threshold, merge_mode, merge_ratio, ...rest } = given;
      const parsed = StreamSettings.safeParse(rest);
      if (!parsed.success) throw new EngineError('BAD_REQUEST', `bad stream config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const knobs = service.engine().validateKnobs({ top_k, keep_ratio, halt_threshold, merge_mode, merge_ratio });
      const bytes = new Transform({
        writableObjectMode: true,
        transform(message: WireMessage, _encoding, callback) {
          if (message.kind === 'chunk') callback(null, message.chunk);
          else callback(new EngineError('BAD_REQUEST', 'a stream has one config message, the first'));
        },
      });
      call.pipe(bytes);
      open = service.streams.open({ settings: parsed.data, knobs, source: bytes, signal: controller.signal, log: logger });
    } catch (err) {
      deps.refuse(call, err);
      return;
    }
    void open
      .run((event: StreamEvent) => call.write(toWire(event)))
      .finally(() => {
        deps.done(200);
        if (!controller.signal.aborted) call.end();
      });
  });
}

export type WatchCall = ServerWritableStream<{ id: string; after_id?: number | null }, unknown>;

/**
 * haltingvt.v1.Streams/Watch: a pulled stream's events from its event log, the kept ones after
 * `after_id` first; the call ends when the log closes (after `ended`) or the client cancels.
 */
export function handleWatchCall(call: WatchCall, deps: Pick<StreamCallDeps, 'service' | 'refuse' | 'done'>): void {
  let stream;
  try {
    deps.service.authorize(call.metadata.get('authorization')[0]);
    stream = deps.service.streams.get(call.request.id);
  } catch (err) {
    deps.refuse(call, err);
    return;
  }
  const after = call.request.after_id ?? undefined;
  const { replay, stop } = stream.events.watch(after, ({ id, event }) => call.write(toWire(event, id)), () => {
    deps.done(200);
    call.end();
  });
  call.on('cancelled', stop);
  for (const { id, event } of replay) call.write(toWire(event, id));
}

function toWire(event: StreamEvent, id = 0): Record<string, unknown> {
  const json = JSON.stringify(event);
  if (event.event !== 'window') return { event: event.event, json, id };
  return {
    id,
    event: 'window',
    seq: event.seq,
    start_s: event.start_s,
    end_s: event.end_s,
    lag_s: event.lag_s,
    top: event.top,
    gflops: event.gflops,
    tokens_per_layer: event.tokens.per_layer,
    json,
  };
}
