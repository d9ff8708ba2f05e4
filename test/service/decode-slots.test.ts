/**
 * The service's queue slot is the decoding's: a video gives it back once decoded (the engine's
 * onDecoded), so with CONCURRENCY 1 the next video decodes while the first waits for inference.
 */
import { describe, expect, it } from 'vitest';
import { EngineError, isEngineError } from '../../src/errors.js';
import { engineWith, fixture, gate, until, useTinyApp } from '../http/helpers.js';
import { readFileSync } from 'node:fs';

const entered: string[] = [];
let inference = gate();

const t = useTinyApp({
  // The real engine, with its inference held at a gate the test opens: onDecoded is passed on as
  // the engine gets it, and "inference" waits until the gate opens.
  wrap: (engine) =>
    engineWith(engine, {
      classify: async (file, knobs, options) => {
        const result = await engine.classify(file, knobs, { ...options, onDecoded: undefined });
        entered.push(file);
        options?.onDecoded?.();
        await inference.promise;
        return result;
      },
    }),
  overrides: { service: { concurrency: 1, queueSize: 8 } },
});

describe('decode slots', () => {
  it('with CONCURRENCY 1, decodes the next video while the first waits for inference', async () => {
    const body = readFileSync(fixture('clip.mp4'));
    const post = () => t.app.inject({ method: 'POST', url: '/v1/classify', headers: { 'content-type': 'video/mp4' }, payload: body });
    const first = post();
    const second = (async () => {
      await until(() => entered.length === 1, 'the first video decoded');
      return post();
    })();
    try {
      await until(() => entered.length === 2, 'the second video decoded while the first still waits');
    } finally {
      inference.open(); // a failure must not leave the requests hanging
    }
    const answers = await Promise.all([first, second]);
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200]);
    inference = gate();
  });

  it('the engine calls onDecoded once per video, after decoding and before the answer; not when decoding fails', async () => {
    const { engine } = t;
    const knobs = engine.validateKnobs({});
    const events: string[] = [];
    const result = await engine.classify(fixture('clip.mp4'), knobs, { onDecoded: () => events.push('decoded') });
    events.push('answered');
    expect(result.video.decoded_frames).toBeGreaterThan(0);
    expect(events).toEqual(['decoded', 'answered']);
    let called = 0;
    await expect(engine.classify(fixture('garbage.mp4'), knobs, { onDecoded: () => (called += 1) })).rejects.toThrow();
    expect(called).toBe(0);
  });

  it('the engine calls onDecoded before inference: a caller that leaves there never gets an answer', async () => {
    const { engine } = t;
    const controller = new AbortController();
    const leaving = engine.classify(fixture('clip.mp4'), engine.validateKnobs({}), {
      signal: controller.signal,
      onDecoded: () => controller.abort(new EngineError('ABORTED', 'the caller left once the video was decoded')),
    });
    await expect(leaving).rejects.toSatisfy((e) => isEngineError(e, 'ABORTED'));
  });
});
