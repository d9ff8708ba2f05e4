#!/usr/bin/env node
/**
 * haltingvt classify FILE... [--top-k N] [--keep-ratio R] [--threshold H] [--merge-mode M --merge-ratio R] [--model DIR] [--pretty] [--explain OUT.png]
 *
 * Prints one JSON result per line per file (a table with --pretty). A file that fails prints
 * {"file", "error": {code, message}} in its place and the exit code becomes 1. Logs and the
 * progress (a bar on a terminal, a line per file otherwise) go to stderr. --explain writes the
 * /demo figure as a PNG per file (src/figure/).
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createEngine, EngineError, isEngineError, PRECISIONS, type ClassifyResult, type Engine, type EngineOptions, type Knobs, type Precision } from './engine/index.js';
import { createService, type VideoOutcome } from './service/index.js';
import { createRegistry } from './service/metrics.js';
import { CONNECT_GUARD, defaultModelDir, PACKAGE_ROOT } from './paths.js';
import { renderFigure, type ExplainedResult } from './figure/render.js';

const USAGE = `usage: haltingvt classify FILE... [options]

options:
  --top-k N          labels to print (manifest range)
  --keep-ratio R     share of patches per frame the Glimpser keeps (manifest range)
  --threshold H      halting threshold (manifest range)
  --merge-mode M     token merging in the joint layers: none, tome or tldr (models that offer it)
  --merge-ratio R    share of the live patch tokens each joint layer merges away (manifest range)
  --model DIR        model folder (default: models/default, else models/fixtures/tiny)
  --pretty           a table instead of JSON lines
  --explain OUT.png  also write where the compute went as a PNG: the frames with the stop map over
                     them, tokens per layer, the label (several files: OUT-<file name>.png)
  --precision P      graph to run: fp32 (default), int8 or fp16, a variant the model's manifest lists
  --providers LIST   execution providers in order of preference, from cuda, webgpu, cpu (default: cuda,cpu)
  --threads N        ORT intra-op threads (default: ORT decides)
  --verbose          engine logs on stderr
  -h, --help         this text`;

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  createEngine: (options: EngineOptions) => Promise<Engine>;
  cwd: string;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'top-k': { type: 'string' },
        'keep-ratio': { type: 'string' },
        threshold: { type: 'string' },
        'merge-mode': { type: 'string' },
        'merge-ratio': { type: 'string' },
        model: { type: 'string' },
        pretty: { type: 'boolean', default: false },
        explain: { type: 'string' },
        precision: { type: 'string' },
        providers: { type: 'string' },
        threads: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...files] = positionals;
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command !== 'classify' || files.length === 0) {
    io.stderr.write(`${command && command !== 'classify' ? `unknown command "${command}"\n\n` : ''}${USAGE}\n`);
    return 2;
  }

  const knobInput = {
    top_k: numberFlag(values['top-k']),
    keep_ratio: numberFlag(values['keep-ratio']),
    halt_threshold: numberFlag(values.threshold),
    merge_mode: values['merge-mode'],
    merge_ratio: numberFlag(values['merge-ratio']),
  };
  const precision = values.precision;
  if (precision !== undefined && !(PRECISIONS as readonly string[]).includes(precision)) {
    io.stderr.write(`--precision must be one of ${PRECISIONS.join(', ')}, not "${precision}"\n\n${USAGE}\n`);
    return 2;
  }
  const modelDir = values.model ?? defaultModelDir([io.cwd, PACKAGE_ROOT]);
  // Engine logs are JSON lines for services; a person at a terminal sees them only with --verbose.
  const logger = pino({ level: values.verbose ? 'info' : 'error' }, pino.destination({ dest: 2, sync: true }));
  const providers = values.providers?.split(',').map((p) => p.trim());
  let engine: Engine | undefined;
  let knobs: Knobs;
  try {
    engine = await io.createEngine({
      modelDir,
      logger,
      config: {
        ...(providers ? { executionProviders: providers } : {}),
        ...(precision ? { precision: precision as Precision } : {}),
        ...(values.threads ? { intraOpNumThreads: Number(values.threads) } : {}),
      },
    });
    knobs = engine.validateKnobs(knobInput); // refuse bad knobs once, before any file
    // The default list tries CUDA quietly; a provider asked for by name is worth a sentence when it failed.
    const used = engine.info.session.executionProvider;
    if (providers && !values.verbose && used !== providers[0]) {
      io.stderr.write(`haltingvt: running on ${used}: ${providers[0]} could not load the model (--verbose says why)\n`);
    }
  } catch (err) {
    await engine?.close();
    io.stderr.write(`haltingvt: ${describeError(err)}\n`);
    return isEngineError(err, 'BAD_KNOB') ? 2 : 1;
  }

  const progress = files.length > 1 ? (io.stderr.isTTY ? progressBar(io.stderr, files.length) : progressLines(io.stderr, files.length)) : undefined;
  const figures = values.explain === undefined ? undefined : figurePaths(values.explain, files);
  // The CLI is a transport like HTTP and gRPC: one file a request through the service layer
  // (queue, metrics), answered as each finishes. Its files are on disk already: nothing is spooled.
  const service = createService({
    config: { maxUploadBytes: Number.MAX_SAFE_INTEGER, maxBatchItems: 1, queueSize: 0, concurrency: 1, uploadDir: os.tmpdir(), authToken: undefined, streams: { max: 0, idleTimeoutMs: 1, maxDurationS: 1, pull: { backoffMinS: 1, backoffMaxS: 1, connectTimeoutS: 1, events: 16, keepEnded: 0 } }, sources: { schemes: [], allow: [], guard: CONNECT_GUARD } },
    engine,
    logger,
    registry: createRegistry({ defaultMetrics: false }),
  });
  const rows: Row[] = [];
  let failed = 0;
  try {
    for (const [index, file] of files.entries()) {
      let row: Row;
      const figure = figures?.[index];
      // A request the service refuses as a whole (no worker can start now) is this file's error too.
      const [outcome] = await service
        .classify([{ path: file, filename: file }], { knobs, explain: figure !== undefined, signal: new AbortController().signal })
        .catch((err: unknown): VideoOutcome[] => {
          if (!isEngineError(err)) throw err;
          return [{ ok: false, filename: file, error: err }];
        });
      if (outcome?.ok) {
        row = { file, ...outcome.result };
        if (figure) {
          await writeFile(figure, renderFigure(row as ExplainedResult));
          const { explain: _thumbnails, ...plain } = row; // the thumbnails are in the PNG, not on stdout
          row = { ...plain, figure };
        }
      } else {
        failed += 1;
        const error = outcome?.error ?? new EngineError('INTERNAL', 'no answer');
        row = { file, error: { code: error.code, message: error.message } };
      }
      if (values.pretty) rows.push(row);
      else io.stdout.write(`${JSON.stringify(row)}\n`);
      progress?.tick(file);
    }
  } finally {
    progress?.done();
    service.close();
    await engine.close();
  }
  if (values.pretty) io.stdout.write(table(rows));
  return failed > 0 ? 1 : 0;
}

function numberFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  // A non-number is passed through as text so the knob validator names the knob in its refusal.
  return Number.isNaN(value) || text.trim() === '' ? (text as unknown as number) : value;
}

function describeError(err: unknown): string {
  if (isEngineError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Where each file's figure goes: OUT itself for one file, else OUT-<file name>.png (numbered if two files share a name). */
export function figurePaths(out: string, files: string[]): string[] {
  if (files.length === 1) return [out];
  const stem = out.replace(/\.png$/i, '');
  const seen = new Map<string, number>();
  return files.map((file) => {
    const name = path.basename(file).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]/g, '_');
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return `${stem}-${name}${n > 1 ? `-${n}` : ''}.png`;
  });
}

/** Progress when stderr is not a terminal (a log, CI): one line per file. */
function progressLines(out: NodeJS.WritableStream, total: number): { tick(file: string): void; done(): void } {
  let done = 0;
  return {
    tick(file) {
      done += 1;
      out.write(`haltingvt: ${done}/${total} ${file}\n`);
    },
    done() {},
  };
}

function progressBar(out: NodeJS.WritableStream, total: number): { tick(file: string): void; done(): void } {
  let done = 0;
  const width = 30;
  const draw = (label: string): void => {
    const filled = Math.round((done / total) * width);
    out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${path.basename(label).slice(0, 40).padEnd(40)}`);
  };
  draw('');
  return {
    tick(file) {
      done += 1;
      draw(file);
    },
    done() {
      out.write('\n');
    },
  };
}

type Row = ({ file: string; figure?: string } & Omit<ClassifyResult, 'explain'> & { explain?: ClassifyResult['explain'] }) | { file: string; error: { code: string; message: string } };

function table(rows: Row[]): string {
  const header = ['file', 'top label', 'p', 'others', 'kept', 'GFLOPs', 'decode s', 'infer s'];
  const body = rows.map((r) => {
    if ('error' in r) return [path.basename(r.file), `ERROR ${r.error.code}`, '', r.error.message.slice(0, 60), '', '', '', ''];
    const [first, ...rest] = r.top;
    return [
      path.basename(r.file),
      first?.label ?? '',
      first ? first.probability.toFixed(3) : '',
      rest.map((p) => `${p.label} ${p.probability.toFixed(2)}`).join(', '),
      r.tokens.kept_ratio.toFixed(3),
      r.gflops.toFixed(4),
      r.timings_s.decode.toFixed(3),
      r.timings_s.infer.toFixed(3),
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => (row[c] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c] as number)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n') + '\n';
}

const invoked = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url) || /[\\/]haltingvt(\.js)?$/.test(invoked)) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, createEngine, cwd: process.cwd() }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`haltingvt: ${describeError(err)}\n`);
      process.exitCode = 1;
    },
  );
}
