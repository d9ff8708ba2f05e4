import { describe, expect, it } from 'vitest';
import { EngineError, ERRORS, isEngineError } from '../src/errors.js';

describe('error catalogue', () => {
  it('gives every code an HTTP error status and a title', () => {
    for (const [code, { status, title }] of Object.entries(ERRORS)) {
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
      expect(title.length, code).toBeGreaterThan(5);
    }
  });

  it('puts caller mistakes under 500 and engine failures at 500 and above', () => {
    expect(ERRORS.BAD_KNOB.status).toBe(400);
    expect(ERRORS.VIDEO_UNDECODABLE.status).toBe(422);
    expect(ERRORS.MODEL_INVALID.status).toBe(500);
    expect(ERRORS.WORKER_CRASHED.status).toBe(503);
  });

  it('carries code, status and details, and serialises them', () => {
    const err = new EngineError('VIDEO_TOO_LONG', 'too long', { durationS: 9 });
    expect(err).toBeInstanceOf(Error);
    expect(err.status).toBe(422);
    expect(isEngineError(err, 'VIDEO_TOO_LONG')).toBe(true);
    expect(isEngineError(err, 'BAD_KNOB')).toBe(false);
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: 'VIDEO_TOO_LONG', status: 422, message: 'too long', details: { durationS: 9 } });
  });
});
