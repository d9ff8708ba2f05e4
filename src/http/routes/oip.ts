/**
 * The Open Inference Protocol (KServe v2) over HTTP, on the service's port: server and model
 * metadata, model readiness and inference with the binary-data and classification extensions
 * (/v2/health/* is in health.ts). Errors are `{"error": "...", "code": "..."}`, the shape
 * tritonclient and the KServe SDK read, with the catalogue's statuses.
 *
 * tritonclient sends inference with no Content-Type and an Inference-Header-Content-Length header:
 * the body is that many bytes of JSON, then each binary input in order. The body is held in
 * memory, so the whole request (every video of a batch) is bounded by MAX_UPLOAD_BYTES; large
 * batches belong on /v1/classify:batch, which streams each file to disk.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { EngineError } from '../../errors.js';
import type { InferInput, InferResponse, OipProtocol, ParameterValue } from '../../oip/protocol.js';
import { decodeBytesElements, toJsonData, toRaw } from '../../oip/tensors.js';
import type { Service } from '../../service/index.js';
import { V2InferRequest, V2ModelMetadata, V2ModelReady, V2ServerMetadata, type V2InferResponse } from '../oip-schemas.js';
import { clientGone } from '../reception.js';

export interface OipRouteDeps {
  service: Service;
  oip: OipProtocol;
  retryAfterS: number;
}

const HEADER_LENGTH = 'inference-header-content-length';
/** Room for the JSON header around the videos. */
const HEADER_ROOM = 64 * 1024;

const ModelParams = z.object({ name: z.string().min(1), version: z.string().min(1).optional() });

export const oipRoutes: FastifyPluginAsync<OipRouteDeps> = async (base, { service, oip, retryAfterS }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();

  // Every body is read whole as bytes, with or without a Content-Type (tritonclient sends none).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: service.limits.maxUploadBytes + HEADER_ROOM }, (_request, body, done) => done(null, body));

  // Registered under the /v2 prefix, so unknown /v2 paths also get the OIP error shape.
  app.setNotFoundHandler(async (request) => {
    throw new EngineError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });

  app.get('/', { schema: { response: { 200: V2ServerMetadata } } }, async () => oip.serverMetadata());

  for (const path of ['/models/:name', '/models/:name/versions/:version']) {
    app.get(path, { schema: { params: ModelParams, response: { 200: V2ModelMetadata } } }, async (request) => oip.modelMetadata(request.params.name, request.params.version));
    app.get(`${path}/ready`, { schema: { params: ModelParams, response: { 200: V2ModelReady, 503: V2ModelReady } } }, async (request, reply) => {
      const { name, version } = request.params;
      const ready = oip.modelReady(name, version);
      if (!ready) reply.code(503).header('retry-after', String(retryAfterS));
      return { name, ready };
    });
    app.post(`${path}/infer`, { schema: { params: ModelParams } }, async (request, reply) => {
      service.authorize(request.headers.authorization);
      const { name, version } = request.params;
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const { json, inputs, binaryOutput } = parseBody(body, request.headers[HEADER_LENGTH]);
      const response = await oip.infer(
        {
          modelName: name,
          modelVersion: version ?? '',
          id: json.id ?? '',
          parameters: json.parameters ?? {},
          inputs,
          outputs: json.outputs?.map((o) => ({ name: o.name, parameters: o.parameters ?? {} })),
        },
        clientGone(reply),
        request.log,
      );
      const binary = new Map((json.outputs ?? []).map((o) => [o.name, o.parameters?.binary_data ?? binaryOutput]));
      return sendInferResponse(reply, response, (output) => binary.get(output) ?? binaryOutput);
    });
  }
};

/** The JSON header, its inputs with their BYTES elements, and the request-level binary_data_output. */
function parseBody(body: Buffer, headerLength: string | string[] | undefined): { json: V2InferRequest; inputs: InferInput[]; binaryOutput: boolean } {
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    jsonLength = Number(headerLength);
    if (!Number.isInteger(jsonLength) || jsonLength < 0 || jsonLength > body.length) {
      throw new EngineError('BAD_REQUEST', `Inference-Header-Content-Length ${JSON.stringify(headerLength)} must be an integer between 0 and the body length (${body.length})`);
    }
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body.subarray(0, jsonLength).toString('utf8'));
  } catch (err) {
    throw new EngineError('BAD_REQUEST', `the inference header is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = V2InferRequest.safeParse(raw);
  if (!parsed.success) {
    throw new EngineError('BAD_REQUEST', `the inference request is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const json = parsed.data;
  let at = jsonLength;
  const inputs = json.inputs.map((input): InferInput => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return { name: input.name, datatype: input.datatype, shape: input.shape, elements: jsonElements(input.name, input.data) };
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || at + size > body.length) {
      throw new EngineError('BAD_REQUEST', `input ${input.name}: binary_data_size ${String(size)} goes past the end of the body`);
    }
    const raw = body.subarray(at, at + size);
    at += size;
    const elements = input.datatype === 'BYTES' ? decodeBytesElements(raw, `input ${input.name}`) : [raw];
    return { name: input.name, datatype: input.datatype, shape: input.shape, elements };
  });
  if (at !== body.length) throw new EngineError('BAD_REQUEST', `the body has ${body.length - at} bytes that no input's binary_data_size accounts for`);
  return { json, inputs, binaryOutput: json.parameters?.binary_data_output === true };
}

function jsonElements(name: string, data: unknown[] | undefined): Buffer[] {
  if (data === undefined) throw new EngineError('BAD_REQUEST', `input ${name} has neither data nor a binary_data_size parameter`);
  return (data.flat(Infinity) as unknown[]).map((element) => {
    if (typeof element !== 'string') throw new EngineError('BAD_REQUEST', `input ${name}: a BYTES element must be a string in JSON (send videos with the binary-data extension)`);
    return Buffer.from(element, 'utf8');
  });
}

function sendInferResponse(reply: FastifyReply, response: InferResponse, binary: (output: string) => ParameterValue | undefined): FastifyReply {
  const blobs: Buffer[] = [];
  const outputs: V2InferResponse['outputs'] = response.outputs.map((tensor) => {
    const { name, datatype, shape } = tensor;
    if (binary(name) !== true) return { name, datatype, shape, data: toJsonData(tensor) };
    const raw = toRaw(tensor);
    blobs.push(raw);
    return { name, datatype, shape, parameters: { binary_data_size: raw.length } };
  });
  const body: V2InferResponse = { ...response, outputs };
  if (blobs.length === 0) return reply.type('application/json; charset=utf-8').send(body);
  const header = Buffer.from(JSON.stringify(body), 'utf8');
  return reply
    .type('application/octet-stream')
    .header('inference-header-content-length', String(header.length))
    .send(Buffer.concat([header, ...blobs]));
}
