import { readFileSync } from 'node:fs';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { V2ModelMetadata, V2ModelReady, V2ServerMetadata } from '../../src/http/oip-schemas.js';
import { BatchResponse, ClassifyResponse, Liveness, ModelInfo, ModelList, Readiness, V2Live, V2Ready } from '../../src/http/schemas.js';
import { compileJson, responseJsonSchema, responseSerializerCompiler } from '../../src/http/serializer.js';
import { fixture, form, useTinyApp, videoPart } from './helpers.js';

const t = useTinyApp();

const ROUTE = { method: 'POST', url: '/test', httpStatus: '200' } as const;
const compile = (schema: z.ZodType): ((data: unknown) => string) => responseSerializerCompiler({ schema, ...ROUTE }) as (data: unknown) => string;
const zodWrites = (schema: z.ZodType, data: unknown): string => (zodSerializerCompiler({ schema, ...ROUTE } as Parameters<typeof zodSerializerCompiler>[0]) as (d: unknown) => string)(data);

describe('response serializer', () => {
  it('compiles every response schema the routes declare (none falls back to zod per answer)', () => {
    const schemas = { ClassifyResponse, BatchResponse, ModelInfo, ModelList, Liveness, Readiness, V2Live, V2Ready, V2ServerMetadata, V2ModelMetadata, V2ModelReady };
    const unconverted = Object.entries(schemas).filter(([, schema]) => compileJson(schema) === undefined);
    expect(unconverted.map(([name]) => name)).toEqual([]);
  });

  it('writes real /v1/classify and batch answers as the zod schemas do', async () => {
    const single = await t.app.inject({ method: 'POST', url: '/v1/classify?explain=true', headers: { 'content-type': 'video/mp4' }, payload: readFileSync(fixture('clip.mp4')) });
    expect(single.statusCode).toBe(200);
    // One item fails (not a video): the failed branch, with its error's details, is written too.
    const { payload, headers } = form([videoPart('a.mp4', fixture('clip.mp4'), 'files'), { name: 'files', filename: 'junk.mp4', contentType: 'video/mp4', data: Buffer.from('not a video') }]);
    const batch = await t.app.inject({ method: 'POST', url: '/v1/classify:batch', payload, headers });
    expect(batch.statusCode).toBe(200);
    expect(batch.json()).toMatchObject({ succeeded: 1, failed: 1, items: [{ ok: true }, { ok: false, error: { code: expect.any(String) } }] });
    for (const [schema, body] of [
      [ClassifyResponse, single.json()],
      [BatchResponse, batch.json()],
    ] as const) {
      // What the route wrote parses under its schema, and both serializers write the same from it.
      schema.parse(body);
      expect(JSON.parse(compile(schema)(body))).toEqual(JSON.parse(zodWrites(schema, body)));
    }
    expect(single.json().explain).toBeDefined();
  });

  it('never writes a property outside the schema', () => {
    const schema = z.strictObject({ name: z.string(), n: z.number(), inner: z.strictObject({ ok: z.boolean() }) });
    const written = JSON.parse(compile(schema)({ name: 'x', n: 2, secret: 'token', inner: { ok: true, path: '/tmp/upload' } }));
    expect(written).toEqual({ name: 'x', n: 2, inner: { ok: true } });
  });

  it('falls back to the zod serializer, check included, for a schema JSON Schema cannot express', () => {
    const schema = z.object({ at: z.date() });
    expect(responseJsonSchema(schema)).toBeUndefined();
    expect(() => compile(schema)({ at: 'not a date' })).toThrow();
  });
});
