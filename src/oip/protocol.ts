/**
 * The Open Inference Protocol (KServe v2) over the service layer, independent of the transport:
 * HTTP (src/http/routes/oip.ts) and gRPC (src/grpc/) decode their wire form into an
 * `InferRequest`, call this, and encode the `InferResponse` back. One input, VIDEO (BYTES, one
 * encoded video per element, shape [N, 1] or [N]); knobs in the request parameters, as numbers
 * (merge_mode as text), checked by the same validator as /v1's; outputs:
 *
 *   LABELS         BYTES [N, k]        "score:index:label", k = top_k (or the classification k)
 *   PROBABILITIES  FP32  [N, classes]  softmax over every class
 *   GFLOPS         FP32  [N, 1]        what each video cost
 *   TOKENS         INT64 [N, layers]   tokens each joint layer processed
 *   ERROR          BYTES [N, 1]        "" for a video that was classified, else "CODE: message"
 *   EXPLANATION    BYTES [N, 1]        only with the parameter explain=true (or when named): the JSON of
 *                                      /v1's Explanation (stop map, sampled frames, thumbnails); "" if failed
 *
 * With N = 1 a failed video is the request's error; with N > 1 each video fails alone, in ERROR,
 * and its other rows are zeros (as /v1/classify:batch does with per-item errors).
 */
import type { Knobs, KnobInput } from '../engine/index.js';
import { knobRanges, NUMBER_TEXT } from '../engine/index.js';
import { topK } from '../engine/postprocess.js';
import { EngineError } from '../errors.js';
import { oneLine, type FailureLog } from '../service/errors.js';
import type { Service, VideoOutcome } from '../service/index.js';
import { checkServed } from '../service/models.js';
import { elementCount, type Datatype, type OutputTensor } from './tensors.js';

export const INPUT_NAME = 'VIDEO';
export const OUTPUT_NAMES = ['LABELS', 'PROBABILITIES', 'GFLOPS', 'TOKENS', 'ERROR', 'EXPLANATION'] as const;
/** Outputs sent when the request names none; EXPLANATION joins them with explain=true (it weighs 100-300 KB a video). */
const DEFAULT_OUTPUTS: readonly OutputName[] = ['LABELS', 'PROBABILITIES', 'GFLOPS', 'TOKENS', 'ERROR'];
export type OutputName = (typeof OUTPUT_NAMES)[number];
/** Request parameters of the protocol itself or of stock clients (tritonclient), not knobs. */
const PROTOCOL_PARAMETERS = new Set(['explain', 'binary_data_output', 'priority', 'timeout', 'sequence_id', 'sequence_start', 'sequence_end', 'headers']);

export type ParameterValue = string | number | boolean;

export interface InferInput {
  name: string;
  datatype: string;
  shape: number[];
  /** The decoded elements of a BYTES tensor. */
  elements: Buffer[];
}

export interface InferRequest {
  modelName: string;
  modelVersion: string;
  id: string;
  parameters: Record<string, ParameterValue>;
  inputs: InferInput[];
  /** Absent: every output. */
  outputs: Array<{ name: string; parameters: Record<string, ParameterValue> }> | undefined;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, ParameterValue>;
  outputs: OutputTensor[];
}

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface OipProtocol {
  live(): boolean;
  ready(): boolean;
  serverMetadata(): ServerMetadata;
  /** NOT_FOUND for another model or version, NOT_READY while nothing is loaded. */
  modelMetadata(name: string, version?: string): ModelMetadata;
  modelReady(name: string, version?: string): boolean;
  infer(request: InferRequest, signal: AbortSignal, log?: FailureLog): Promise<InferResponse>;
}

export function createOipProtocol(service: Service, serverVersion: string): OipProtocol {
  return {
    live: () => true,
    ready: () => service.lifecycle.ready(),
    serverMetadata: () => ({ name: 'haltingvt', version: serverVersion, extensions: ['binary_tensor_data', 'classification'] }),

    modelMetadata(name, version) {
      const engine = service.loaded();
      checkServed(engine, name, version);
      return modelMetadata(engine);
    },

    modelReady(name, version) {
      const engine = service.lifecycle.loaded();
      if (engine) checkServed(engine, name, version);
      return engine !== undefined && service.lifecycle.ready();
    },

    async infer(request, signal, log) {
      checkServed(service.loaded(), request.modelName, request.modelVersion || undefined);
      const engine = service.engine();
      const { manifest } = engine;
      const videos = videoInput(request.inputs, service.limits.maxBatchItems);
      const knobs = engine.validateKnobs(knobParameters(request.parameters, Object.keys(knobRanges(manifest))));
      const explainAsked = explainParameter(request.parameters);
      const wanted = requestedOutputs(request.outputs, manifest.labels.length, explainAsked);
      const explain = wanted.some((w) => w.name === 'EXPLANATION');
      // The request body is already in memory (HTTP parser, gRPC message): admission here bounds
      // the work, not the bytes received; MAX_UPLOAD_BYTES bounds each body.
      const outcomes = await service.classify(
        videos.map((bytes) => ({ bytes, filename: null })),
        { knobs, signal, explain, probabilities: true, batch: videos.length > 1, log },
      );
      if (signal.aborted) throw new EngineError('ABORTED', 'the client went away');
      const [first] = outcomes;
      if (outcomes.length === 1 && first && !first.ok) throw first.error;
      const failed = outcomes.filter((o) => !o.ok).length;
      return {
        model_name: manifest.name,
        model_version: manifest.version,
        id: request.id,
        parameters: { ...knobs, succeeded: outcomes.length - failed, failed },
        outputs: wanted.map(({ name, classification }) => buildOutput(name, classification, outcomes, knobs, manifest.labels, manifest.flops.joint_blocks)),
      };
    },
  };
}

export function modelMetadata(engine: ReturnType<Service['loaded']>): ModelMetadata {
  const { manifest } = engine;
  return {
    name: manifest.name,
    versions: [manifest.version],
    platform: 'haltingvt',
    inputs: [{ name: INPUT_NAME, datatype: 'BYTES', shape: [-1, 1] }],
    outputs: [
      { name: 'LABELS', datatype: 'BYTES', shape: [-1, -1] },
      { name: 'PROBABILITIES', datatype: 'FP32', shape: [-1, manifest.labels.length] },
      { name: 'GFLOPS', datatype: 'FP32', shape: [-1, 1] },
      { name: 'TOKENS', datatype: 'INT64', shape: [-1, manifest.flops.joint_blocks] },
      { name: 'ERROR', datatype: 'BYTES', shape: [-1, 1] },
      { name: 'EXPLANATION', datatype: 'BYTES', shape: [-1, 1] },
    ],
  };
}

function videoInput(inputs: InferInput[], maxItems: number): Buffer[] {
  const others = inputs.filter((i) => i.name !== INPUT_NAME).map((i) => JSON.stringify(i.name));
  if (others.length > 0) throw new EngineError('BAD_REQUEST', `unknown input ${others.join(', ')}; this model takes one input, ${INPUT_NAME}`);
  const [input, twice] = inputs;
  if (!input) throw new EngineError('BAD_REQUEST', `the request has no ${INPUT_NAME} input`);
  if (twice) throw new EngineError('BAD_REQUEST', `input ${INPUT_NAME} appears twice`);
  if (input.datatype !== 'BYTES') throw new EngineError('BAD_REQUEST', `input ${INPUT_NAME} must be BYTES (one encoded video per element), got ${input.datatype}`);
  const { shape } = input;
  const [n] = shape;
  const shapeOk = shape.every((d) => Number.isInteger(d) && d >= 0) && (shape.length === 1 || (shape.length === 2 && shape[1] === 1));
  if (!shapeOk || n === undefined) throw new EngineError('BAD_REQUEST', `input ${INPUT_NAME} must have shape [N, 1] or [N], got [${shape.join(', ')}]`);
  if (n === 0) throw new EngineError('BAD_REQUEST', `input ${INPUT_NAME} holds no video`);
  if (n > maxItems) throw new EngineError('BATCH_TOO_LARGE', `a batch holds at most ${maxItems} videos`, { maxItems });
  if (input.elements.length !== elementCount(shape)) {
    throw new EngineError('BAD_REQUEST', `input ${INPUT_NAME} has shape [${shape.join(', ')}] but carries ${input.elements.length} elements`);
  }
  return input.elements;
}

/**
 * The knobs among the request parameters, as the client typed them: numbers stay numbers, and a
 * number sent as text (a gRPC string_param, a JSON string; some clients send every scalar so) is
 * read as the number it spells. A parameter that is neither a knob nor one the protocol or stock
 * clients send is refused.
 */
function knobParameters(parameters: Record<string, ParameterValue>, knobNames: readonly string[]): KnobInput {
  const knobs: Record<string, ParameterValue> = {};
  for (const [name, value] of Object.entries(parameters)) {
    if (PROTOCOL_PARAMETERS.has(name)) continue;
    if (!knobNames.includes(name)) throw new EngineError('BAD_REQUEST', `unknown parameter ${JSON.stringify(name)}; knobs: ${knobNames.join(', ')}; also explain`);
    knobs[name] = name !== 'merge_mode' && typeof value === 'string' && NUMBER_TEXT.test(value.trim()) ? Number(value) : value;
  }
  return knobs as KnobInput;
}

interface Wanted {
  name: OutputName;
  /** The classification extension's k, when asked for. */
  classification: number | undefined;
}

/** The `explain` request parameter: a boolean, or its text ("true"/"false", "1"/"0") as some clients send scalars. */
function explainParameter(parameters: Record<string, ParameterValue>): boolean {
  const value = parameters.explain;
  if (value === undefined || value === false || value === 'false' || value === '0' || value === 0) return false;
  if (value === true || value === 'true' || value === '1' || value === 1) return true;
  throw new EngineError('BAD_REQUEST', `explain=${String(value)} must be true or false`);
}

function requestedOutputs(outputs: InferRequest['outputs'], classes: number, explain: boolean): Wanted[] {
  if (!outputs || outputs.length === 0) {
    return [...DEFAULT_OUTPUTS, ...(explain ? (['EXPLANATION'] as const) : [])].map((name) => ({ name, classification: undefined }));
  }
  return outputs.map(({ name, parameters }) => {
    if (!(OUTPUT_NAMES as readonly string[]).includes(name)) {
      throw new EngineError('BAD_REQUEST', `unknown output ${JSON.stringify(name)}; this model has ${OUTPUT_NAMES.join(', ')}`);
    }
    const k = parameters.classification;
    if (k === undefined) return { name: name as OutputName, classification: undefined };
    if (name !== 'LABELS' && name !== 'PROBABILITIES') throw new EngineError('BAD_REQUEST', `classification applies to LABELS or PROBABILITIES, not ${name}`);
    const count = typeof k === 'string' && /^[0-9]+$/.test(k) ? Number(k) : k;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > classes) {
      throw new EngineError('BAD_REQUEST', `classification=${String(k)} must be an integer in [1, ${classes}]`);
    }
    return { name: name as OutputName, classification: count };
  });
}

function buildOutput(name: OutputName, classification: number | undefined, outcomes: VideoOutcome[], knobs: Knobs, labels: readonly string[], layers: number): OutputTensor {
  const n = outcomes.length;
  switch (name) {
    case 'LABELS':
    case 'PROBABILITIES': {
      if (name === 'PROBABILITIES' && classification === undefined) {
        return { name, datatype: 'FP32', shape: [n, labels.length], data: outcomes.flatMap((o) => (o.ok ? Array.from(o.result.probabilities ?? []) : zeros(labels.length))) };
      }
      const k = classification ?? knobs.top_k;
      const data = outcomes.flatMap((o) =>
        o.ok ? topK(o.result.probabilities ?? [], k, labels).map((p) => Buffer.from(`${p.probability.toFixed(6)}:${p.index}:${p.label}`)) : new Array<Buffer>(k).fill(Buffer.alloc(0)),
      );
      return { name, datatype: 'BYTES', shape: [n, k], data };
    }
    case 'GFLOPS':
      return { name, datatype: 'FP32', shape: [n, 1], data: outcomes.map((o) => (o.ok ? o.result.gflops : 0)) };
    case 'TOKENS':
      return { name, datatype: 'INT64', shape: [n, layers], data: outcomes.flatMap((o) => (o.ok ? o.result.tokens.per_layer : zeros(layers))) };
    case 'EXPLANATION':
      return { name, datatype: 'BYTES', shape: [n, 1], data: outcomes.map((o) => Buffer.from(o.ok && o.result.explain ? JSON.stringify(o.result.explain) : '')) };
    case 'ERROR':
      return {
        name,
        datatype: 'BYTES',
        shape: [n, 1],
        data: outcomes.map((o) => Buffer.from(o.ok ? '' : oneLine(o.error))),
      };
  }
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}
