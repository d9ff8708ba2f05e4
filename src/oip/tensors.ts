/**
 * Open Inference Protocol tensors in both wire forms: JSON values and raw little-endian bytes (the
 * binary-data extension over HTTP, raw_*_contents over gRPC). A BYTES element is a little-endian
 * uint32 length followed by that many bytes; numbers are row-major with no padding.
 */
import { EngineError } from '../errors.js';

export type Datatype = 'BYTES' | 'FP32' | 'INT64';

/** An output tensor: BYTES as Buffers (labels are UTF-8), numbers as a flat row-major array. */
export interface OutputTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: Buffer[] | number[];
}

/** Splits a raw BYTES tensor into its elements; every byte must belong to one. */
export function decodeBytesElements(raw: Buffer, what: string): Buffer[] {
  const elements: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    if (at + 4 > raw.length) throw new EngineError('BAD_REQUEST', `${what}: a BYTES element's 4-byte length is cut off at byte ${at}`);
    const length = raw.readUInt32LE(at);
    at += 4;
    if (at + length > raw.length) throw new EngineError('BAD_REQUEST', `${what}: a BYTES element declares ${length} bytes but only ${raw.length - at} remain`);
    // A view, not a copy: the videos are the bulk of the request.
    elements.push(raw.subarray(at, at + length));
    at += length;
  }
  return elements;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The raw form of an output (binary-data extension, gRPC raw_output_contents). */
export function toRaw(tensor: OutputTensor): Buffer {
  switch (tensor.datatype) {
    case 'BYTES': {
      const elements = tensor.data as Buffer[];
      const out = Buffer.allocUnsafe(elements.reduce((n, e) => n + 4 + e.length, 0));
      let at = 0;
      for (const e of elements) {
        out.writeUInt32LE(e.length, at);
        e.copy(out, at + 4);
        at += 4 + e.length;
      }
      return out;
    }
    case 'FP32': {
      const values = Float32Array.from(tensor.data as number[]);
      return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    }
    case 'INT64': {
      const values = BigInt64Array.from(tensor.data as number[], (v) => BigInt(v));
      return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    }
  }
}

/** The JSON form of an output's data (BYTES as UTF-8 strings). */
export function toJsonData(tensor: OutputTensor): Array<string | number> {
  return tensor.datatype === 'BYTES' ? (tensor.data as Buffer[]).map((b) => b.toString('utf8')) : (tensor.data as number[]);
}
