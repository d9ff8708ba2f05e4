/**
 * The one catalogue of error codes. Every failure the engine (and the HTTP service on top of it)
 * reports to a caller is an `EngineError` whose `code` is a key of `ERRORS`.
 *
 * To add a code, add a row: the HTTP status is what the service answers; `title` is the short,
 * caller-safe summary (the service sends `message` only for statuses below 500, as fastify's own
 * error handler does, and `title` otherwise).
 */
export const ERRORS = {
  // Caller input
  BAD_KNOB: { status: 400, title: 'a request knob is out of range or of the wrong type' },
  FILE_NOT_FOUND: { status: 400, title: 'the input file does not exist or cannot be read' },
  VIDEO_NO_STREAM: { status: 422, title: 'the file has no video stream' },
  VIDEO_STILL_IMAGE: { status: 422, title: 'the file is a still image, not a video' },
  VIDEO_UNDECODABLE: { status: 422, title: 'the video cannot be decoded' },
  VIDEO_TOO_LONG: { status: 422, title: 'the video is longer than this service accepts' },
  ABORTED: { status: 499, title: 'the request was cancelled' },
  STREAM_CHANGED: { status: 422, title: 'the live stream changed its video format mid-way' },
  STREAM_IDLE: { status: 408, title: 'the live stream sent no bytes for longer than the idle limit' },
  STREAM_NOT_FOUND: { status: 404, title: 'no live stream with this id on this instance' },
  SOURCE_NOT_ALLOWED: { status: 403, title: 'the operator does not allow pulling this source (scheme, host or address)' },
  SOURCE_UNREACHABLE: { status: 502, title: 'the live source cannot be reached or opened' },
  SOURCE_STALLED: { status: 504, title: 'the live source sent nothing for longer than its stall limit' },
  STREAM_REPLICA_BUSY: { status: 503, title: 'the replica that holds the stream did not answer in time; retry later' },

  // Decoding
  DECODE_TIMEOUT: { status: 504, title: 'decoding took longer than the time limit' },
  DECODE_FAILED: { status: 500, title: 'the decoder failed' },
  DECODER_CRASHED: { status: 422, title: 'the decoder process died on this video; it has been replaced' },
  DECODER_UNAVAILABLE: { status: 503, title: 'no decode worker is running; retry later' },

  // Model and inference
  MODEL_NOT_FOUND: { status: 500, title: 'the model folder or one of its files is missing' },
  MODEL_INVALID: { status: 500, title: 'the model folder does not follow the contract' },
  FEED_MISMATCH: { status: 500, title: 'the inputs do not match what the model expects' },
  INFERENCE_FAILED: { status: 500, title: 'the model failed to run' },
  WORKER_CRASHED: { status: 503, title: 'the inference worker crashed; it is being replaced' },
  INFERENCE_TIMEOUT: { status: 504, title: 'the model run took longer than the time limit; the inference worker is being replaced' },
  WORKER_UNAVAILABLE: { status: 503, title: 'no inference worker can run now; it is being restarted' },
  ENGINE_CLOSED: { status: 503, title: 'the engine is shutting down' },

  // HTTP service (src/http/)
  BAD_REQUEST: { status: 400, title: 'the request is malformed' },
  UNAUTHORIZED: { status: 401, title: 'a valid bearer token is required' },
  NOT_FOUND: { status: 404, title: 'no such route or model' },
  UPLOAD_TOO_LARGE: { status: 413, title: 'the upload is larger than this service accepts' },
  BATCH_TOO_LARGE: { status: 413, title: 'the batch has more videos than this service accepts' },
  REQUEST_TIMEOUT: { status: 408, title: 'the request was not received in full within the time limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'the content type is not a video or multipart/form-data' },
  VIDEO_TOO_LARGE: { status: 422, title: 'the video frames have more pixels than this service accepts' },
  QUEUE_FULL: { status: 429, title: 'the inference queue is full; retry later' },
  STREAMS_FULL: { status: 429, title: 'this instance holds as many live streams as it accepts; retry later or on another instance' },
  NOT_READY: { status: 503, title: 'the model is still loading; retry later' },
  DRAINING: { status: 503, title: 'the service is shutting down; retry on another instance' },
  UPLOAD_STORAGE_FULL: { status: 507, title: 'no space left to store the upload; retry later' },
  INTERNAL: { status: 500, title: 'internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class EngineError extends Error {
  override readonly name = 'EngineError';
  readonly code: ErrorCode;
  readonly status: number;
  /** Structured facts for logs and 4xx bodies (knob name, range, file, libav's error codes...). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; status: number; message: string; details?: Record<string, unknown> } {
    return { code: this.code, status: this.status, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isEngineError(err: unknown, code?: ErrorCode): err is EngineError {
  return err instanceof EngineError && (code === undefined || err.code === code);
}
