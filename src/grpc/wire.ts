/**
 * ModelInferRequest/Response (proto/inference.proto, loaded with proto-loader's plain objects) ↔
 * the transport-neutral InferRequest/InferResponse of src/oip/protocol.ts.
 */
import { EngineError } from '../errors.js';
import type { InferRequest, InferResponse, ParameterValue } from '../oip/protocol.js';
import { decodeBytesElements, toRaw } from '../oip/tensors.js';

export interface WireParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
}
type WireParameters = Record<string, WireParameter>;

export interface WireInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: WireParameters;
  inputs: Array<{ name: string; datatype: string; shape: number[]; parameters: WireParameters; contents?: { bytes_contents?: Buffer[] } | null }>;
  outputs: Array<{ name: string; parameters: WireParameters }>;
  raw_input_contents: Buffer[];
}

export interface WireInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: WireParameters;
  outputs: Array<{ name: string; datatype: string; shape: number[] }>;
  raw_output_contents: Buffer[];
}

export function fromWire(request: WireInferRequest): InferRequest {
  const raw = request.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== request.inputs.length) {
    throw new EngineError('BAD_REQUEST', `raw_input_contents has ${raw.length} entries for ${request.inputs.length} inputs`);
  }
  return {
    modelName: request.model_name,
    modelVersion: request.model_version,
    id: request.id,
    parameters: parameters(request.parameters),
    inputs: request.inputs.map((input, i) => {
      const shape = input.shape.map(Number);
      const bytes = raw[i];
      if (bytes !== undefined) {
        const elements = input.datatype === 'BYTES' ? decodeBytesElements(bytes, `input ${input.name}`) : [bytes];
        return { name: input.name, datatype: input.datatype, shape, elements };
      }
      return { name: input.name, datatype: input.datatype, shape, elements: input.contents?.bytes_contents ?? [] };
    }),
    outputs: request.outputs.length > 0 ? request.outputs.map((o) => ({ name: o.name, parameters: parameters(o.parameters) })) : undefined,
  };
}

/** Every output goes in raw_output_contents (tritonclient's as_numpy reads BYTES only from there). */
export function toWire(response: InferResponse): WireInferResponse {
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id,
    parameters: Object.fromEntries(Object.entries(response.parameters).map(([k, v]) => [k, wireParameter(v)])),
    outputs: response.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    raw_output_contents: response.outputs.map(toRaw),
  };
}

function parameters(wire: WireParameters | undefined): Record<string, ParameterValue> {
  const out: Record<string, ParameterValue> = {};
  for (const [name, p] of Object.entries(wire ?? {})) {
    const choice = p.parameter_choice;
    const value = choice ? p[choice] : undefined;
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function wireParameter(value: ParameterValue): WireParameter {
  if (typeof value === 'boolean') return { bool_param: value };
  if (typeof value === 'string') return { string_param: value };
  return Number.isInteger(value) ? { int64_param: value } : { double_param: value };
}
