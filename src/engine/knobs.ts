/**
 * Per-request knobs, validated against the ranges the manifest declares. The zod schema is built
 * once per model; a refusal names the knob, the value and the allowed range.
 */
import { z } from 'zod';
import { EngineError } from '../errors.js';
import type { Manifest } from './model.js';

/** What a caller may send; every knob is optional and defaults to the manifest's default. */
export interface KnobInput {
  top_k?: number | undefined;
  keep_ratio?: number | undefined;
  halt_threshold?: number | undefined;
}

/** The knobs a request actually ran with (echoed in every result). */
export interface Knobs {
  top_k: number;
  keep_ratio: number;
  halt_threshold: number;
}

export type KnobValidator = (input: unknown) => Knobs;

export function createKnobValidator(manifest: Manifest): KnobValidator {
  const { knobs } = manifest;
  // top_k can never exceed the number of classes, whatever the manifest range says.
  const topKMax = Math.min(knobs.top_k.max, manifest.labels.length);
  const ranged = (name: keyof Knobs, min: number, max: number, fallback: number, integer: boolean) => {
    const base = z.number({ error: (iss) => `${name} must be a number, got ${describe(iss.input)}` });
    return (integer ? base.int({ error: (iss) => `${name}=${String(iss.input)} must be an integer` }) : base)
      .refine(Number.isFinite, { error: `${name} must be finite` })
      .refine((v) => v >= min && v <= max, { error: (iss) => `${name}=${String(iss.input)} is out of range [${min}, ${max}]` })
      .default(fallback);
  };
  const schema = z.strictObject(
    {
      top_k: ranged('top_k', knobs.top_k.min, topKMax, Math.min(knobs.top_k.default, topKMax), true),
      keep_ratio: ranged('keep_ratio', knobs.keep_ratio.min, knobs.keep_ratio.max, knobs.keep_ratio.default, false),
      halt_threshold: ranged('halt_threshold', knobs.halt_threshold.min, knobs.halt_threshold.max, knobs.halt_threshold.default, false),
    },
    { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown knob ${iss.keys.join(', ')}; known: top_k, keep_ratio, halt_threshold` : undefined) },
  );
  return (input) => {
    const cleaned = dropUndefined(input ?? {});
    const result = schema.safeParse(cleaned);
    if (!result.success) {
      const problems = result.error.issues.map((i) => i.message);
      throw new EngineError('BAD_KNOB', problems.join('; '), {
        problems,
        ranges: {
          top_k: { min: knobs.top_k.min, max: topKMax },
          keep_ratio: { min: knobs.keep_ratio.min, max: knobs.keep_ratio.max },
          halt_threshold: { min: knobs.halt_threshold.min, max: knobs.halt_threshold.max },
        },
      });
    }
    return result.data;
  };
}

function dropUndefined(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : typeof value;
}
