/**
 * What a live stream is asked for and what it answers, written once in zod: the settings every
 * transport reads (the /v1/streams querystring, the gRPC config message) and the events every
 * transport sends (NDJSON lines, server-sent events, gRPC messages carry the same objects).
 */
import { z } from 'zod';
import { Prediction, TokenReport } from '../engine/result.js';

export const STREAM_POLICIES = ['drop_oldest', 'block'] as const;
export const EMIT_MODES = ['windows', 'changes'] as const;
/** Containers a client may name (else probed); the value is libav's demuxer. */
export const STREAM_FORMATS = { mpegts: 'mpegts', mp4: 'mov', matroska: 'matroska', webm: 'matroska' } as const;

const seconds = () => z.coerce.number().finite();

/**
 * A stream's settings. `stride_s` defaults to half the window; the window stays within the clip
 * lengths the models are trained on (a few seconds), and a stride above the window leaves gaps.
 */
export const StreamSettingsFields = {
    window_s: seconds().min(0.5).max(30).default(4).describe('seconds of stream per window (8 frames sampled from it, as from a file of those seconds)'),
    stride_s: seconds().min(0.1).max(60).optional().describe('seconds between window starts; default window_s / 2'),
    policy: z
      .enum(STREAM_POLICIES)
      .default('block')
      .describe('when inference falls behind: `block` (default for pushed streams) stops reading the upload, holding the sender back, and answers every window; `drop_oldest` drops the waiting window for the newest (lag stays under one stride: for live sources)'),
    emit: z.enum(EMIT_MODES).default('windows').describe('`windows`: an event per window; `changes`: only when the top label changes'),
    average: z.coerce.number().int().min(1).max(32).default(1).describe('average the probabilities over the last N windows (1: none)'),
    format: z
      .enum(Object.keys(STREAM_FORMATS) as [keyof typeof STREAM_FORMATS, ...Array<keyof typeof STREAM_FORMATS>])
      .optional()
      .describe('the container sent (`mpegts`, `mp4` fragmented, `matroska`, `webm`); probed when absent'),
};

/** The settings with their defaults filled in: the stride is half the window unless given. */
export function withStride<T extends { window_s: number; stride_s?: number | undefined }>(s: T): T & { stride_s: number } {
  return { ...s, stride_s: s.stride_s ?? s.window_s / 2 };
}

export const StreamSettings = z.strictObject(StreamSettingsFields).transform(withStride);

/** What a pulled stream adds: its source and how it is kept alive; a live source drops rather than lags. */
export const PullFields = {
  source: z.strictObject({
    url: z.string().min(1).max(4096).describe('rtsp://, rtsps://, srt://, http(s):// (MPEG-TS, a file, or an HLS playlist); credentials in it never appear in logs, events or status'),
    rtsp_transport: z.enum(['tcp', 'udp']).default('tcp').describe('RTSP only: interleaved in the TCP connection (default), or UDP'),
  }),
  policy: StreamSettingsFields.policy.unwrap().default('drop_oldest').describe('as for pushed streams, but `drop_oldest` by default (a live source cannot be held back); a finite source (a file, a finished playlist) is always read whole, with `block`'),
  stall_s: seconds().min(1).max(300).default(10).describe('no packet for this long while the service is not holding the source back: the source is stalled and reconnected'),
  give_up_s: seconds().min(0).max(7 * 86_400).default(300).describe('end the stream (`ended: gave_up`) after this long without a live connection'),
};
export type StreamSettings = z.output<typeof StreamSettings>;

const wall = () => z.iso.datetime().describe('wall clock, UTC');

export const StreamStarted = z.strictObject({
  event: z.literal('started'),
  stream: z.string().describe('this stream\'s id (for logs; never a metric label)'),
  window_s: z.number(),
  stride_s: z.number(),
  policy: z.enum(STREAM_POLICIES),
  video: z.strictObject({ format: z.string(), codec: z.string(), width: z.number().int(), height: z.number().int(), fps: z.number().nullable() }),
  source: z.string().optional().describe('a pulled stream\'s source, credentials redacted'),
  live: z.boolean().optional().describe('a pulled source without a stated duration: its end is a lost connection; false: a file or finished playlist, read whole'),
  at: wall(),
});

export const StreamWindow = z.strictObject({
  event: z.literal('window'),
  seq: z.number().int().nonnegative().describe('window number: it covers [seq × stride_s, seq × stride_s + window_s) of stream time'),
  start_s: z.number().describe('stream time from the first frame'),
  end_s: z.number(),
  partial: z.boolean().describe('cut short by the end of a stream shorter than one window'),
  frames: z.strictObject({
    count: z.number().int().describe('frames of the stream inside the window'),
    sampled_s: z.array(z.number()).describe('stream time of each sampled frame'),
    padded: z.number().int().describe('slots that repeat a neighbour because their frame did not decode'),
  }),
  last_frame_at: wall().describe('when the window\'s last frame arrived'),
  emitted_at: wall(),
  lag_s: z.number().describe('emitted_at − last_frame_at'),
  top: z.array(Prediction),
  averaged: z.strictObject({ windows: z.number().int(), top: z.array(Prediction) }).optional().describe('with average > 1: over the last `windows` windows'),
  tokens: TokenReport,
  gflops: z.number().nonnegative(),
  dense_gflops: z.number().positive(),
  timings_s: z.strictObject({ queue: z.number(), infer: z.number(), post: z.number() }),
});
export type StreamWindow = z.infer<typeof StreamWindow>;

export const StreamDropped = z.strictObject({
  event: z.literal('dropped'),
  seq: z.array(z.number().int()).describe('the windows dropped'),
  reason: z.enum(['behind', 'undecodable']).describe('`behind`: inference was behind and the policy is drop_oldest; `undecodable`: none of its frames decoded'),
  total: z.number().int().describe('windows dropped so far in this stream'),
});

export const StreamError = z.strictObject({
  event: z.literal('error'),
  code: z.string(),
  status: z.number().int(),
  message: z.string(),
});

export const RECONNECT_REASONS = ['lost', 'stalled', 'unreachable', 'failed'] as const;

export const StreamReconnecting = z.strictObject({
  event: z.literal('reconnecting'),
  attempt: z.number().int().positive().describe('attempts since the source was last live'),
  reason: z.enum(RECONNECT_REASONS).describe('`lost`: the connection broke or a live source ended; `stalled`: no packet for stall_s; `unreachable`: it cannot be opened; `failed`: its decoding failed'),
  message: z.string().describe('what happened (the source\'s credentials never appear)'),
  delay_s: z.number().nonnegative().describe('wait before this attempt (exponential backoff with jitter)'),
  at: wall(),
});

export const StreamResumed = z.strictObject({
  event: z.literal('resumed'),
  attempt: z.number().int().positive(),
  gap_s: z.number().nonnegative().describe('wall seconds from the last packet before the loss to the first after it: stream time lost'),
  at: wall(),
});

export const END_REASONS = ['end_of_stream', 'idle', 'max_duration', 'error', 'shutdown', 'gave_up', 'deleted'] as const;

export const StreamEnded = z.strictObject({
  event: z.literal('ended'),
  reason: z.enum(END_REASONS),
  summary: z.strictObject({
    windows: z.number().int().describe('windows classified'),
    dropped: z.number().int(),
    stream_s: z.number().describe('stream time covered by the windows classified'),
    wall_s: z.number(),
    gflops: z.number().describe('total over the windows classified'),
    gflops_per_stream_s: z.number().nullable(),
    decoded_frames: z.number().int().nullable().describe('frames the stream\'s decoder decoded (non-reference frames no window takes are skipped)'),
    decoder_cpu_s: z.number().nullable().describe('CPU seconds of the stream\'s decoder process, its start-up (decoder_startup_cpu_s) included'),
    decoder_startup_cpu_s: z.number().nullable(),
    timeline: z.array(z.strictObject({ from_s: z.number(), label: z.string() })).describe('the top label from each change on'),
  }),
});

export const StreamEvent = z.discriminatedUnion('event', [StreamStarted, StreamWindow, StreamDropped, StreamError, StreamReconnecting, StreamResumed, StreamEnded]);
export type StreamEvent = z.infer<typeof StreamEvent>;

/** What GET /v1/streams/{id} answers for a pulled stream (and POST its 201). */
export const PulledStreamStatus = z.strictObject({
  id: z.string(),
  source: z.string().describe('credentials redacted'),
  state: z.enum(['connecting', 'live', 'reconnecting', 'ended']),
  created_at: wall(),
  uptime_s: z.number(),
  live: z.boolean().nullable().describe('null until the first connection: whether the source is live (no stated duration)'),
  video: z.strictObject({ codec: z.string(), width: z.number().int(), height: z.number().int(), fps: z.number().nullable() }).nullable(),
  settings: z.strictObject({
    window_s: z.number(),
    stride_s: z.number(),
    policy: z.enum(STREAM_POLICIES),
    emit: z.enum(EMIT_MODES),
    average: z.number().int(),
    format: z.enum(Object.keys(STREAM_FORMATS) as [keyof typeof STREAM_FORMATS, ...Array<keyof typeof STREAM_FORMATS>]).optional(),
    stall_s: z.number(),
    give_up_s: z.number(),
  }),
  windows: z.number().int(),
  dropped: z.number().int(),
  lag_s: z.number().nullable().describe('of the last window classified'),
  reconnects: z.number().int(),
  gap_s: z.number().describe('stream time lost to disconnections, in total'),
  last_event_id: z.number().int().describe('the id of its latest event (SSE `id:`)'),
  last_error: z.strictObject({ code: z.string(), message: z.string(), at: wall() }).nullable(),
  ended: z.strictObject({ reason: z.enum(END_REASONS), at: wall() }).nullable(),
});
export type PulledStreamStatus = z.infer<typeof PulledStreamStatus>;
