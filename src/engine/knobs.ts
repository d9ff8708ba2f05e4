/**
 * Per-request knobs, validated against the ranges the manifest declares. The zod schema is built
 * once per model; a refusal names the knob, the value and the allowed range.
 */
import { z } from 'zod';
import { EngineError } from '../errors.js';
import type { MergeMode } from './merging.js';
import type { Manifest } from './model.js';

/** A number written as text (query strings, form fields, OIP parameters sent as strings). */
export const NUMBER_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** What a caller may send; every knob is optional and defaults to the manifest's default. */
export interface KnobInput {
  top_k?: number | undefined;
  keep_ratio?: number | undefined;
  halt_threshold?: number | undefined;
  merge_mode?: string | undefined;
  merge_ratio?: number | undefined;
}

declare const validated: unique symbol;

/**
 * The knobs a request actually runs with (echoed in every result), checked against the model's
 * ranges: only a KnobValidator makes one, so a value of this type has been checked, once, and the
 * engine takes no other. The merge knobs exist only for models whose manifest declares them
 * (exported with token merging).
 */
export type Knobs = Readonly<{
  top_k: number;
  keep_ratio: number;
  halt_threshold: number;
  merge_mode?: MergeMode;
  merge_ratio?: number;
}> & { readonly [validated]: true };

/** Parses and range-checks knobs (numbers as numbers, the mode as text), or throws BAD_KNOB naming every problem. */
export type KnobValidator = (input: KnobInput) => Knobs;

/** The manifest's knob ranges as served: top_k never exceeds the number of classes, whatever the manifest says. */
export function knobRanges(manifest: Manifest): Manifest['knobs'] {
  const { knobs, labels } = manifest;
  return { ...knobs, top_k: { ...knobs.top_k, max: Math.min(knobs.top_k.max, labels.length), default: Math.min(knobs.top_k.default, labels.length) } };
}

export function createKnobValidator(manifest: Manifest): KnobValidator {
  const knobs = knobRanges(manifest);
  const ranged = (name: keyof KnobInput, min: number, max: number, fallback: number, integer: boolean) => {
    const base = z.number({ error: (iss) => `${name} must be a number, got ${describe(iss.input)}` });
    return (integer ? base.int({ error: (iss) => `${name}=${String(iss.input)} must be an integer` }) : base)
      .refine(Number.isFinite, { error: `${name} must be finite` })
      .refine((v) => v >= min && v <= max, { error: (iss) => `${name}=${String(iss.input)} is out of range [${min}, ${max}]` })
      .default(fallback);
  };
  const { merge_mode: mergeMode, merge_ratio: mergeRatio } = knobs;
  const merging =
    mergeMode && mergeRatio
      ? {
          merge_mode: z
            .enum(mergeMode.choices, { error: (iss) => `merge_mode=${describe(iss.input)} is not one of ${mergeMode.choices.join(', ')}` })
            .default(mergeMode.default),
          merge_ratio: ranged('merge_ratio', mergeRatio.min, mergeRatio.max, mergeRatio.default, false),
        }
      : {};
  const known = ['top_k', 'keep_ratio', 'halt_threshold', ...Object.keys(merging)].join(', ');
  const schema = z
    .strictObject(
      {
        top_k: ranged('top_k', knobs.top_k.min, knobs.top_k.max, knobs.top_k.default, true),
        keep_ratio: ranged('keep_ratio', knobs.keep_ratio.min, knobs.keep_ratio.max, knobs.keep_ratio.default, false),
        halt_threshold: ranged('halt_threshold', knobs.halt_threshold.min, knobs.halt_threshold.max, knobs.halt_threshold.default, false),
        ...merging,
      },
      { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown knob ${iss.keys.join(', ')}; known: ${known}` : undefined) },
    )
    // A ratio without a mode would silently merge nothing: say so instead.
    .refine((k) => !((k as Partial<Knobs>).merge_mode === 'none' && ((k as Partial<Knobs>).merge_ratio ?? 0) > 0), {
      error: (iss) => `merge_ratio=${String((iss.input as Knobs).merge_ratio)} needs merge_mode ${mergeMode?.choices.filter((c) => c !== 'none').join(' or ')}`,
    });
  return (input) => {
    const cleaned = dropUndefined(input ?? {});
    const result = schema.safeParse(cleaned);
    if (!result.success) {
      const problems = result.error.issues.map((i) => i.message);
      throw new EngineError('BAD_KNOB', problems.join('; '), {
        problems,
        ranges: {
          top_k: { min: knobs.top_k.min, max: knobs.top_k.max },
          keep_ratio: { min: knobs.keep_ratio.min, max: knobs.keep_ratio.max },
          halt_threshold: { min: knobs.halt_threshold.min, max: knobs.halt_threshold.max },
          ...(mergeMode && mergeRatio ? { merge_mode: { choices: mergeMode.choices }, merge_ratio: { min: mergeRatio.min, max: mergeRatio.max } } : {}),
        },
      });
    }
    return Object.freeze(result.data) as Knobs;
  };
}

function dropUndefined(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : typeof value;
}
