import { describe, expect, it } from 'vitest';
import { engineConfig, STREAM_BATCH_RUN_MS, streamBatchSize, threadPlan } from '../../src/engine/config.js';

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

describe('streamBatchSize', () => {
  it('by default batches the windows of a model whose runs are short, not of one whose runs are long', () => {
    expect(engineConfig().streamBatchMaxSize).toBe(0);
    expect(streamBatchSize(0, 28)).toBe(8); // the embedded model's warm-up
    expect(streamBatchSize(0, STREAM_BATCH_RUN_MS - 1)).toBe(8);
    expect(streamBatchSize(0, STREAM_BATCH_RUN_MS)).toBe(1);
    expect(streamBatchSize(0, 1000)).toBe(1); // the DeiT-S-sized preset's
  });

  it('keeps what the configuration sets', () => {
    expect(streamBatchSize(4, 1000)).toBe(4);
    expect(streamBatchSize(1, 5)).toBe(1);
  });
});
