/**
 * The HTTP API's shapes, written once in zod: handlers parse requests with them, the response
 * types come from `z.infer`, and openapi.yaml is generated from them (src/http/openapi.ts), so the
 * documentation cannot drift from the code. Every schema that openapi.yaml names is registered in
 * `apiSchemas` under its component name.
 */
import { z } from 'zod';
import { PulledStreamStatus, PullFields, StreamEvent, StreamSettingsFields } from '../service/stream-events.js';
import { NUMBER_TEXT } from '../engine/knobs.js';
import { MERGE_MODES } from '../engine/merging.js';
import { Explanation as EngineExplanation, KnobsUsed, VideoAnswer } from '../engine/result.js';
import { ERRORS, EngineError, type ErrorCode } from '../errors.js';
import { ModelInfo as ServiceModelInfo, ModelRef as ServiceModelRef } from '../service/models.js';

export const apiSchemas = z.registry<{ id: string }>();

const count = () => z.number().int().nonnegative();

// ---------------------------------------------------------------- requests

/** Knob values arrive as text (query string or multipart fields); an absent knob takes the model default. */
const knobText = (name: string, integer: boolean) =>
  z
    .string()
    .trim()
    .regex(integer ? /^[0-9]+$/ : NUMBER_TEXT, `${name} must be ${integer ? 'an integer' : 'a number'}`)
    .transform(Number)
    .optional();

export const KnobFields = z.strictObject({
  top_k: knobText('top_k', true).describe('labels to return, most probable first'),
  keep_ratio: knobText('keep_ratio', false).describe('share of patches per frame the Glimpser keeps (lower is cheaper)'),
  halt_threshold: knobText('halt_threshold', false).describe('halting threshold; higher halts later (at least joint layers - 1 disables halting)'),
  // The engine checks the value against the model's choices (a model may not offer merging).
  merge_mode: z.string().trim().optional().describe(`training-free token merging in the joint layers: ${MERGE_MODES.join(', ')} (ToMe, vid-TLDR)`),
  merge_ratio: knobText('merge_ratio', false).describe('share of the live patch tokens each joint layer merges away (lower merges less; needs merge_mode)'),
});

const KNOB_FIELDS: readonly PropertyKey[] = Object.keys(KnobFields.shape);

/** `explain=true` (query string or form field, /v1) asks for the Explanation; not a knob, so not echoed in `knobs`. */
export const ExplainField = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0'], { error: 'explain must be true or false' }))
  .optional()
  .transform((v) => v === 'true' || v === '1')
  .describe('true: add `explain` (stop map, sampled frames, thumbnails) to each result; off by default');

/** What a /v1 classify request may say besides its video, in the query string or as form fields (form fields win). */
export const ClassifyFields = z.strictObject(
  { ...KnobFields.shape, explain: ExplainField },
  {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? `unknown field ${iss.keys.join(', ')}; known: file, ${KNOB_FIELDS.join(', ')}, explain` : undefined,
  },
);
export type ClassifyFields = z.output<typeof ClassifyFields>;

/** A refused field: BAD_KNOB when every problem is a knob's value, else BAD_REQUEST (an unknown field, a bad explain). */
export function fieldsProblem(issues: ReadonlyArray<{ path: readonly PropertyKey[]; code: string; message: string }>): EngineError {
  // Each problem names its field (the knobs' own messages already do).
  const problems = issues.map((i) => {
    const field = i.path.length > 0 ? String(i.path[0]) : '';
    return field && !i.message.includes(field) ? `${field}: ${i.message}` : i.message;
  });
  const knobsOnly = issues.every((i) => i.code !== 'unrecognized_keys' && KNOB_FIELDS.includes(i.path[0] as PropertyKey));
  return new EngineError(knobsOnly ? 'BAD_KNOB' : 'BAD_REQUEST', problems.join('; '), { problems });
}

/** Form fields (text) → the knobs as numbers and the explain switch; throws what fieldsProblem says. */
export function parseClassifyFields(input: Record<string, unknown>): ClassifyFields {
  const parsed = ClassifyFields.safeParse(input);
  if (!parsed.success) throw fieldsProblem(parsed.error.issues);
  return parsed.data;
}

/**
 * The query's fields with the form's on top: only what the form really sent wins (a field the form
 * lacks comes out of the parse as its default, which must not hide the query's value).
 */
export function withFormFields(query: ClassifyFields, form: Record<string, unknown>): ClassifyFields {
  const parsed = parseClassifyFields(form) as Record<string, unknown>;
  const sent = Object.fromEntries(Object.keys(form).map((name) => [name, parsed[name]]));
  return { ...query, ...sent } as ClassifyFields;
}

export const ModelNameParams = z.object({ name: z.string().min(1) });

// ---------------------------------------------------------------- responses

export const ErrorBody = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]]).describe('stable error code, see the ERRORS catalogue'),
      status: z.number().int().describe('the HTTP status, repeated'),
      message: z.string().describe('what went wrong; for 5xx a generic text (the full error is in the server log under the request id)'),
      request_id: z.string(),
      details: z.record(z.string(), z.unknown()).optional().describe('structured facts for 4xx errors: knob ranges, limits...'),
    }),
  })
  .register(apiSchemas, { id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const ModelRef = ServiceModelRef.register(apiSchemas, { id: 'ModelRef' });

// The result of one video is the engine's (src/engine/result.ts), served as it is, with the client's
// file name in front; registered here under the names openapi.yaml gives its parts.
export const Knobs = KnobsUsed.register(apiSchemas, { id: 'Knobs' });
export const Explanation = EngineExplanation.register(apiSchemas, { id: 'Explanation' });
export type Explanation = z.infer<typeof Explanation>;

export const VideoResult = z
  .strictObject({ filename: z.string().nullable().describe('the client file name, when the upload carried one'), ...VideoAnswer.shape })
  .register(apiSchemas, { id: 'VideoResult' });
export type VideoResult = z.infer<typeof VideoResult>;

export const ClassifyResponse = z
  .strictObject({ request_id: z.string(), model: ModelRef, ...VideoResult.shape })
  .register(apiSchemas, { id: 'ClassifyResponse' });
export type ClassifyResponse = z.infer<typeof ClassifyResponse>;

export const BatchItem = z
  .discriminatedUnion('ok', [
    z.strictObject({ index: count(), ok: z.literal(true), result: VideoResult }),
    z.strictObject({ index: count(), ok: z.literal(false), filename: z.string().nullable(), error: ErrorBody.shape.error }),
  ])
  .register(apiSchemas, { id: 'BatchItem' });
export type BatchItem = z.infer<typeof BatchItem>;

export const BatchResponse = z
  .strictObject({
    request_id: z.string(),
    model: ModelRef,
    knobs: Knobs,
    succeeded: count(),
    failed: count(),
    items: z.array(BatchItem).describe('one entry per uploaded file, in upload order'),
  })
  .register(apiSchemas, { id: 'BatchResponse' });
export type BatchResponse = z.infer<typeof BatchResponse>;

export const ModelInfo = ServiceModelInfo.register(apiSchemas, { id: 'ModelInfo' });
export type ModelInfo = z.infer<typeof ModelInfo>;

export const ModelList = z.strictObject({ models: z.array(ModelInfo) }).register(apiSchemas, { id: 'ModelList' });

export const Liveness = z.strictObject({ status: z.literal('ok') }).register(apiSchemas, { id: 'Liveness' });
export const Readiness = z
  .strictObject({
    status: z
      .enum(['starting', 'ready', 'unavailable', 'draining', 'failed'])
      .describe('ready: serving; starting: the model loads; unavailable: no inference worker can run now (it is being restarted); draining: shutting down; failed: the model could not load'),
  })
  .register(apiSchemas, { id: 'Readiness' });
export const V2Live = z.strictObject({ live: z.boolean() }).register(apiSchemas, { id: 'V2Live' });
export const V2Ready = z.strictObject({ ready: z.boolean() }).register(apiSchemas, { id: 'V2Ready' });

// Live streams: the events /v1/streams writes (one per NDJSON line or server-sent event).
export const StreamEventBody = StreamEvent.register(apiSchemas, { id: 'StreamEvent' });
export const PulledStreamBody = PulledStreamStatus.register(apiSchemas, { id: 'PulledStream' });
/** POST /v1/streams with JSON: as documented (the route parses it with the stride's default added). */
export const PulledStreamList = z
  .strictObject({ streams: z.array(PulledStreamStatus), pushed: z.number().int().describe('pushed streams open now'), max: z.number().int().describe('MAX_STREAMS, pushed and pulled together') })
  .register(apiSchemas, { id: 'PulledStreamList' });
export const PullRequestBody = z.strictObject({ ...StreamSettingsFields, ...PullFields }).register(apiSchemas, { id: 'PullRequest' });
