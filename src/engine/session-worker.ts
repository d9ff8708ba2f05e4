/**
 * Entry point of the inference child process. It owns the ONNX Runtime session: opens it, runs one
 * warm-up, says "ready", then answers run requests one message at a time. onnxruntime-node's run()
 * blocks the thread that calls it, which is why this lives outside the main process.
 */
import { EngineError, isEngineError } from '../errors.js';
import { checkFeeds, openSession, type EngineSession, type PlainTensor, type ValueSpec } from './ort-session.js';
import type { FromWorker, SerializedError, ToWorker, WorkerInit } from './session-protocol.js';

const send = (message: FromWorker): void => {
  process.send?.(message);
};

const log = (level: 'info' | 'warn' | 'error') => (obj: Record<string, unknown>, msg: string) => send({ type: 'log', level, obj, msg });
const logger = { info: log('info'), warn: log('warn') };

let session: EngineSession | undefined;
/** Runs are answered in order; close waits for the one in progress. */
let busy: Promise<void> = Promise.resolve();

process.on('message', (message: ToWorker) => {
  if (message.type === 'init') void init(message);
  else if (message.type === 'run') busy = busy.then(() => run(message.id, message.feeds));
  else if (message.type === 'close') void close();
});
process.on('disconnect', () => void close());

async function init(message: WorkerInit): Promise<void> {
  try {
    session = await openSession(message.modelPath, {
      executionProviders: message.executionProviders,
      intraOpNumThreads: message.intraOpNumThreads,
      interOpNumThreads: message.interOpNumThreads,
      logger: logger as never,
    });
    const started = performance.now();
    await session.run(warmupFeeds(session.inputs, message.warmupScalars));
    send({
      type: 'ready',
      executionProvider: session.executionProvider,
      inputs: [...session.inputs],
      outputs: [...session.outputs],
      warmupMs: performance.now() - started,
    });
  } catch (err) {
    send({ type: 'init-failed', error: serialize(err, 'MODEL_INVALID') });
  }
}

async function run(id: number, feeds: Record<string, PlainTensor>): Promise<void> {
  try {
    if (!session) throw new EngineError('INFERENCE_FAILED', 'the session is not open');
    checkFeeds(session.inputs, feeds);
    const outputs = await session.run(feeds);
    send({ type: 'result', id, outputs });
  } catch (err) {
    send({ type: 'error', id, error: serialize(err, 'INFERENCE_FAILED') });
  }
}

async function close(): Promise<void> {
  await busy;
  const open = session;
  session = undefined;
  await open?.dispose().catch(() => undefined);
  process.exit(0);
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

function serialize(err: unknown, fallback: SerializedError['code']): SerializedError {
  if (isEngineError(err)) return { code: err.code, message: err.message, details: err.details };
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}
