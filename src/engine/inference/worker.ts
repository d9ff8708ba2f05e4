/**
 * Entry point of the inference worker process. It owns the ONNX Runtime session: opens it, runs one
 * warm-up, says "ready", then answers one run at a time (../workers/child.ts), normalising each
 * run's frames into the `video` tensor first. onnxruntime-node's run() blocks the thread that calls
 * it, which is why this lives outside the main process.
 */
import { EngineError } from '../../errors.js';
import { parentLogger, serveWorker } from '../workers/child.js';
import { Preprocessor } from '../preprocess.js';
import { withVideos, type InferenceInit, type InferenceJob, type InferenceOutput, type SessionInfo } from './host.js';
import { checkFeeds, openSession, type EngineSession, type PlainTensor, type ValueSpec } from './ort-session.js';

let session: EngineSession | undefined;
let preprocessor: Preprocessor | undefined;

serveWorker<InferenceInit, SessionInfo, InferenceJob, InferenceOutput>({
  async init(init) {
    session = await openSession(init.modelPath, {
      executionProviders: init.executionProviders,
      intraOpNumThreads: init.intraOpNumThreads || undefined,
      interOpNumThreads: init.interOpNumThreads || undefined,
      spinning: init.spinning,
      logger: parentLogger() as never,
    });
    preprocessor = new Preprocessor(init.input);
    const started = performance.now();
    await session.run(warmupFeeds(session.inputs, init.warmupScalars));
    return { executionProvider: session.executionProvider, inputs: [...session.inputs], outputs: [...session.outputs], warmupMs: performance.now() - started };
  },
  async run(job) {
    if (!session || !preprocessor) throw new EngineError('INFERENCE_FAILED', 'the session is not open');
    const feeds = withVideos(job, preprocessor);
    checkFeeds(session.inputs, feeds);
    return session.run(feeds);
  },
  fallback: { init: 'MODEL_INVALID', run: 'INFERENCE_FAILED' },
  spans: {
    process: 'inference',
    name: 'inference',
    attributes: (_job, output, index, items) => ({
      'haltingvt.batch.size': items,
      'haltingvt.execution_provider': session?.executionProvider ?? 'unknown',
      'haltingvt.tokens.per_layer': rowOf(output.active_tokens, index),
    }),
  },
  async close() {
    const open = session;
    session = undefined;
    await open?.dispose();
  },
});

/** Row `index` of a (batch, n) output as numbers; empty when the graph has no such output. */
function rowOf(tensor: PlainTensor | undefined, index: number): number[] {
  if (!tensor || tensor.dims.length !== 2) return [];
  const width = Number(tensor.dims[1]);
  return Array.from(tensor.data.subarray(index * width, (index + 1) * width), Number);
}

/** Zeros for tensors (symbolic dims become 1) and the given values for scalars. */
function warmupFeeds(inputs: readonly ValueSpec[], scalars: Record<string, number>): Record<string, PlainTensor> {
  const feeds: Record<string, PlainTensor> = {};
  for (const input of inputs) {
    const dims = input.dims.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const size = dims.reduce((a, b) => a * b, 1);
    if (input.dtype === 'float32') {
      feeds[input.name] = { dtype: 'float32', dims, data: new Float32Array(size).fill(dims.length === 0 ? (scalars[input.name] ?? 0) : 0) };
    } else if (input.dtype === 'int64') {
      feeds[input.name] = { dtype: 'int64', dims, data: new BigInt64Array(size) };
    } else {
      throw new EngineError('MODEL_INVALID', `input "${input.name}" has dtype ${input.dtype}, which the engine cannot feed`);
    }
  }
  return feeds;
}
