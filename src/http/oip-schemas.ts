/**
 * The OIP (KServe v2) HTTP shapes in zod (the JSON forms of src/oip/protocol.ts), registered for
 * openapi.yaml next to the /v1 ones.
 * Objects are loose on purpose: stock clients add fields of their own, and the protocol says to
 * ignore what is not understood.
 */
import { z } from 'zod';
import { apiSchemas } from './schemas.js';

const Parameters = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).describe('scalar parameters; the knobs go here as numbers (top_k, keep_ratio, halt_threshold, merge_ratio) and text (merge_mode), and explain (true adds the EXPLANATION output)');

export const V2InferRequest = z
  .looseObject({
    id: z.string().optional(),
    parameters: Parameters.optional(),
    inputs: z
      .array(
        z.looseObject({
          name: z.string(),
          shape: z.array(z.number().int()),
          datatype: z.string(),
          parameters: Parameters.optional().describe('binary_data_size: bytes of this input in the binary section (binary-data extension)'),
          data: z.array(z.unknown()).optional().describe('BYTES elements as strings, when not sent in binary'),
        }),
      )
      .min(1),
    outputs: z
      .array(z.looseObject({ name: z.string(), parameters: Parameters.optional().describe('binary_data: bool; classification: k') }))
      .optional()
      .describe('absent: every output'),
  })
  .register(apiSchemas, { id: 'V2InferRequest' });
export type V2InferRequest = z.infer<typeof V2InferRequest>;

const TensorMetadata = z.strictObject({ name: z.string(), datatype: z.string(), shape: z.array(z.number().int()) });

export const V2InferResponse = z
  .strictObject({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string(),
    parameters: Parameters.describe('the knobs used, and succeeded/failed video counts'),
    outputs: z.array(
      z.strictObject({
        ...TensorMetadata.shape,
        parameters: z.strictObject({ binary_data_size: z.number().int().nonnegative() }).optional(),
        data: z.array(z.union([z.string(), z.number()])).optional().describe('row-major values; absent when the output is in the binary section'),
      }),
    ),
  })
  .register(apiSchemas, { id: 'V2InferResponse' });
export type V2InferResponse = z.infer<typeof V2InferResponse>;

export const V2ServerMetadata = z
  .strictObject({ name: z.string(), version: z.string(), extensions: z.array(z.string()) })
  .register(apiSchemas, { id: 'V2ServerMetadata' });

export const V2ModelMetadata = z
  .strictObject({ name: z.string(), versions: z.array(z.string()), platform: z.string(), inputs: z.array(TensorMetadata), outputs: z.array(TensorMetadata) })
  .register(apiSchemas, { id: 'V2ModelMetadata' });

export const V2ModelReady = z.strictObject({ name: z.string(), ready: z.boolean() }).register(apiSchemas, { id: 'V2ModelReady' });

export const V2Error = z
  .strictObject({ error: z.string().describe('what went wrong (5xx: a generic text)'), code: z.string().describe('the code from the error catalogue') })
  .register(apiSchemas, { id: 'V2Error' });
export type V2Error = z.infer<typeof V2Error>;
