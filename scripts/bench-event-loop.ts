/**
 * Main-thread event-loop delay while inference runs flat out, with the ORT session in the child
 * process (what the engine does) and, for comparison, in the main thread. Target: p99 <= 20 ms.
 *
 *   npm run bench:event-loop -- [--model models/fixtures/tiny] [--batch 32] [--seconds 10] [--inflight 4]
 */
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadModel } from '../src/engine/model.js';
import { openSession, type PlainTensor } from '../src/engine/inference/ort-session.js';
import { engineConfig } from '../src/engine/config.js';
import { createSessionHost, inferenceInit } from '../src/engine/inference/host.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/fixtures/tiny' },
    batch: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '10' },
    inflight: { type: 'string', default: '4' },
  },
});
const model = await loadModel(path.resolve(values.model));
const { frames, size } = model.manifest.input;
const batch = Number(values.batch);
const seconds = Number(values.seconds);
const logger = pino({ level: 'warn' });
const feeds: Record<string, PlainTensor> = {
  video: { dtype: 'float32', dims: [batch, 3, frames, size, size], data: new Float32Array(batch * 3 * frames * size * size).map(() => Math.random() * 2 - 1) },
  keep_ratio: { dtype: 'float32', dims: [], data: Float32Array.of(model.manifest.knobs.keep_ratio.default) },
  halt_threshold: { dtype: 'float32', dims: [], data: Float32Array.of(model.manifest.knobs.halt_threshold.default) },
};

type Run = () => Promise<unknown>;

async function measure(label: string, run: Run): Promise<void> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let runs = 0;
  const deadline = performance.now() + seconds * 1000;
  histogram.enable();
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await run();
      runs += 1;
    }
  };
  await Promise.all(Array.from({ length: Number(values.inflight) }, lane));
  histogram.disable();
  const ms = (ns: number): string => (ns / 1e6).toFixed(1);
  console.log(
    `| ${label} | ${runs} | ${((runs * batch) / seconds).toFixed(0)} | ${ms(histogram.percentile(50))} | ${ms(histogram.percentile(99))} | ${ms(histogram.max)} |`,
  );
}

console.log(`model ${model.manifest.name}, batch ${batch} (${((feeds.video?.data.byteLength ?? 0) / 2 ** 20).toFixed(1)} MiB per run), ${values.inflight} requests in flight, ${seconds} s each\n`);
console.log('| session in | runs | videos/s | loop delay p50 ms | p99 ms | max ms |');
console.log('|---|---|---|---|---|---|');

const host = createSessionHost({
  init: inferenceInit(engineConfig({ executionProviders: ['cpu'] }), model.modelPath, model.manifest.input, { keep_ratio: 0.5, halt_threshold: 0.99 }),
  supervision: engineConfig(),
  timeoutMs: engineConfig().inferenceTimeoutMs,
  logger,
  now: () => performance.now(),
});
await host.ready();
await measure('child process (engine)', () => host.run({ feeds }));
await host.close();

const inline = await openSession(model.modelPath, { executionProviders: ['cpu'], logger });
await inline.run(feeds);
await measure('main thread (for comparison)', () => inline.run(feeds));
await inline.dispose();
