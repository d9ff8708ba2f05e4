import { describe, expect, it } from 'vitest';
import { threadPlan } from '../../src/engine/config.js';

describe('threadPlan', () => {
  it('gives inference the cores the other videos\' decoding leaves, and each decode worker its share', () => {
    expect(threadPlan({ decodeWorkers: 2, decodeThreads: 0, intraOpNumThreads: 0 }, 2)).toEqual({ decodeThreads: 1, intraOpNumThreads: 1 });
    expect(threadPlan({ decodeWorkers: 1, decodeThreads: 0, intraOpNumThreads: 0 }, 2)).toEqual({ decodeThreads: 2, intraOpNumThreads: 2 }); // the CLI: one video at a time
    expect(threadPlan({ decodeWorkers: 2, decodeThreads: 0, intraOpNumThreads: 0 }, 8)).toEqual({ decodeThreads: 4, intraOpNumThreads: 7 });
    expect(threadPlan({ decodeWorkers: 4, decodeThreads: 0, intraOpNumThreads: 0 }, 2)).toEqual({ decodeThreads: 1, intraOpNumThreads: 1 }); // never below one
  });

  it('keeps what the configuration sets', () => {
    expect(threadPlan({ decodeWorkers: 2, decodeThreads: 3, intraOpNumThreads: 5 }, 2)).toEqual({ decodeThreads: 3, intraOpNumThreads: 5 });
  });
});
