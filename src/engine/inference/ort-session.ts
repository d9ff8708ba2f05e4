/**
 * The only module that imports onnxruntime-node. It opens a session (trying the configured execution
 * providers in order, e.g. CUDA, then WebGPU, then CPU), checks feeds against the model's declared
 * inputs and reports every mismatch at once, and runs the graph. Everything else sees `EngineSession`.
 */
import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { EngineError } from '../../errors.js';
import { GPU_PROVIDERS } from '../config.js';

export type TensorData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

/** A plain tensor: what crosses the worker boundary and what the rest of the engine handles. */
export interface PlainTensor {
  dtype: 'float32' | 'int64' | 'int32' | 'uint8' | 'bool';
  dims: number[];
  data: TensorData;
}

export interface ValueSpec {
  name: string;
  /** undefined for non-tensor values (sequences, maps). */
  dtype: string | undefined;
  /** Numbers for fixed dims, strings (or -1) for symbolic ones; empty for scalars. */
  dims: Array<number | string>;
}

export interface EngineSession {
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  /** The execution provider the session was created with ("cuda", "cpu", ...). */
  readonly executionProvider: string;
  run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>>;
  dispose(): Promise<void>;
}

export interface SessionOptions {
  /** Providers for this attempt, most preferred first; ORT places unsupported nodes on the next. */
  executionProviders: string[];
  intraOpNumThreads?: number | undefined;
  interOpNumThreads?: number | undefined;
  /** Whether pool threads spin while waiting for work; off, a thread sleeps between runs (default on, as ORT's). */
  spinning?: boolean | undefined;
}

/** Creates a session for one attempt; injectable so tests can fail CUDA on purpose. */
export type SessionFactory = (modelPath: string, options: SessionOptions) => Promise<Omit<EngineSession, 'executionProvider'>>;

export const ortSessionFactory: SessionFactory = async (modelPath, options) => {
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: options.executionProviders,
    graphOptimizationLevel: 'all',
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    ...(options.interOpNumThreads ? { interOpNumThreads: options.interOpNumThreads } : {}),
    // ORT's thread pools spin between runs by default, which keeps a core busy while the worker
    // waits for the next video (docs/decisions.md, "Inference threads do not spin").
    ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } } : {}),
  });
  const spec = (m: ort.InferenceSession.ValueMetadata): ValueSpec =>
    m.isTensor ? { name: m.name, dtype: m.type, dims: [...m.shape] } : { name: m.name, dtype: undefined, dims: [] };
  return {
    inputs: session.inputMetadata.map(spec),
    outputs: session.outputMetadata.map(spec),
    async run(feeds) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.dtype, t.data, t.dims);
      const results = await session.run(ortFeeds);
      const out: Record<string, PlainTensor> = {};
      for (const [name, value] of Object.entries(results)) {
        out[name] = { dtype: value.type as PlainTensor['dtype'], dims: [...value.dims], data: value.data as TensorData };
      }
      return out;
    },
    dispose: () => session.release(),
  };
};

/**
 * The provider lists tried, in order, for a preference list: each provider in turn, followed by the
 * CPU-side providers after it but by no other GPU provider. ORT places a node that the first provider
 * has no kernel for on the next one in the list; with two GPU providers in one session such a node
 * would run on the second GPU provider with its tensors copied through host memory both ways, which
 * costs more than running it on the CPU. ["cuda", "webgpu", "cpu"] gives [cuda, cpu], [webgpu, cpu], [cpu].
 */
export function providerAttempts(preferred: readonly string[]): string[][] {
  return preferred.map((provider, i) => [provider, ...preferred.slice(i + 1).filter((p) => !GPU_PROVIDERS.has(p))]);
}

export interface OpenOptions {
  /** Preferred providers, e.g. ["cuda", "cpu"]. On failure the first is dropped and the rest tried. */
  executionProviders: string[];
  intraOpNumThreads?: number | undefined;
  interOpNumThreads?: number | undefined;
  spinning?: boolean | undefined;
  logger: Pick<Logger, 'warn' | 'info'>;
  factory?: SessionFactory | undefined;
}

/**
 * Opens the model with the first provider list that works (`providerAttempts`): ["cuda", "cpu"], then
 * ["cpu"]. Each fallback is logged at warn level with the reason (missing CUDA libraries, "Failed to
 * get a WebGPU adapter").
 */
export async function openSession(modelPath: string, options: OpenOptions): Promise<EngineSession> {
  const factory = options.factory ?? ortSessionFactory;
  const failures: string[] = [];
  const attempts = providerAttempts(options.executionProviders);
  for (let start = 0; start < attempts.length; start++) {
    const providers = attempts[start] as string[];
    const provider = providers[0] as string;
    try {
      const session = await factory(modelPath, {
        executionProviders: providers,
        intraOpNumThreads: options.intraOpNumThreads,
        interOpNumThreads: options.interOpNumThreads,
        spinning: options.spinning,
      });
      options.logger.info({ provider, failures }, `onnxruntime session on ${provider}`);
      return { inputs: session.inputs, outputs: session.outputs, executionProvider: provider, run: (feeds) => session.run(feeds), dispose: () => session.dispose() };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      failures.push(`${provider}: ${reason}`);
      if (start + 1 < options.executionProviders.length) {
        options.logger.warn({ provider, reason }, `cannot create a session on ${provider}; trying ${options.executionProviders[start + 1]}`);
      }
    }
  }
  throw new EngineError('MODEL_INVALID', `${modelPath}: no execution provider could load the model (${failures.join('; ')})`, {
    file: modelPath,
    failures,
  });
}

/**
 * Every way `feeds` disagrees with the model's inputs: missing and unexpected names, dtypes, rank
 * and fixed dims. Symbolic dims accept any positive size. Returns [] when the feeds fit.
 */
export function feedMismatches(inputs: readonly ValueSpec[], feeds: Record<string, PlainTensor>): string[] {
  const problems: string[] = [];
  const expected = new Set(inputs.map((i) => i.name));
  for (const input of inputs) {
    const feed = feeds[input.name];
    if (!feed) {
      problems.push(`missing input "${input.name}" (${input.dtype ?? 'non-tensor'} [${input.dims.join(', ')}])`);
      continue;
    }
    if (input.dtype !== undefined && feed.dtype !== input.dtype) problems.push(`"${input.name}": dtype ${feed.dtype}, model wants ${input.dtype}`);
    if (feed.dims.length !== input.dims.length) {
      problems.push(`"${input.name}": rank ${feed.dims.length} [${feed.dims.join(', ')}], model wants rank ${input.dims.length} [${input.dims.join(', ')}]`);
      continue;
    }
    input.dims.forEach((want, axis) => {
      const got = feed.dims[axis] as number;
      const fixed = typeof want === 'number' && want >= 0;
      if (fixed ? got !== want : !(got > 0)) problems.push(`"${input.name}": dim ${axis} is ${got}, model wants ${want}`);
    });
    const elements = feed.dims.reduce((a, b) => a * b, 1);
    if (feed.data.length !== elements) problems.push(`"${input.name}": ${feed.data.length} values for dims [${feed.dims.join(', ')}] (${elements})`);
  }
  for (const name of Object.keys(feeds)) if (!expected.has(name)) problems.push(`unexpected input "${name}"`);
  return problems;
}

export function checkFeeds(inputs: readonly ValueSpec[], feeds: Record<string, PlainTensor>): void {
  const problems = feedMismatches(inputs, feeds);
  if (problems.length > 0) throw new EngineError('FEED_MISMATCH', `inputs do not match the model: ${problems.join('; ')}`, { problems });
}
