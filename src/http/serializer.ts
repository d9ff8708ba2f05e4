/**
 * Responses written from their zod schemas, the way fastify writes JSON schemas: each route's
 * response schema is turned into JSON Schema once, at start (zod's toJSONSchema, the same
 * conversion the OpenAPI document gets), and compiled by fast-json-stringify into a function that
 * writes exactly the schema's properties. fastify-type-provider-zod's serializer re-runs the zod
 * schema over every answer (an encode, then JSON.stringify): 23-25 µs for a /v1/classify answer
 * against 2 µs, and in the main process's CPU profile, one video at a time, zod was ~9% of its
 * samples (2-core EPYC, 2026-12-07).
 *
 * What the check gave is kept by other means: the handlers' return types come from the same
 * schemas (the type provider), so a wrong shape fails to compile, and a property outside the
 * schema is still never written. A schema that JSON Schema cannot express falls back to zod's
 * serializer, so the choice is made per route at start and never per answer.
 */
import type { FastifySerializerCompiler } from 'fastify/types/schema.js';
import fastJson from 'fast-json-stringify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

type ZodSchema = z.ZodType;

/** The JSON Schema of what a zod schema writes, or undefined when JSON Schema cannot say it. */
export function responseJsonSchema(schema: ZodSchema): Record<string, unknown> | undefined {
  try {
    return z.toJSONSchema(schema, { io: 'output', unrepresentable: 'throw' }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export const responseSerializerCompiler: FastifySerializerCompiler<ZodSchema> = (route) => {
  const stringify = compileJson(route.schema);
  return stringify ?? zodSerializerCompiler(route as Parameters<typeof zodSerializerCompiler>[0]);
};

/** fast-json-stringify's writer for a zod schema, or undefined when either step cannot take it. */
export function compileJson(schema: ZodSchema): ((data: unknown) => string) | undefined {
  const json = responseJsonSchema(schema);
  if (!json) return undefined;
  try {
    return fastJson(json as unknown as Parameters<typeof fastJson>[0]) as (data: unknown) => string;
  } catch {
    return undefined;
  }
}
