/** The benchmark's surroundings: the Python helper, held-out clips, machine facts. */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../../src/paths.js';
import type { MachineFacts } from './report.js';

const execFileP = promisify(execFile);

export const ROOT = PACKAGE_ROOT;

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

let pythonBin: string | undefined;

/** The toolkit's Python: HALTINGVT_PYTHON, else the venv scripts/python-env.sh prepares. */
export function python(): string {
  if (pythonBin) return pythonBin;
  const fromEnv = process.env.HALTINGVT_PYTHON;
  pythonBin = fromEnv && fromEnv.length > 0 ? fromEnv : path.join(execFileSync(path.join(ROOT, 'scripts', 'python-env.sh'), { cwd: ROOT, encoding: 'utf8' }).trim(), 'bin', 'python');
  return pythonBin;
}

function pythonEnv(): NodeJS.ProcessEnv {
  const models = path.join(ROOT, 'models');
  return { ...process.env, PYTHONPATH: process.env.PYTHONPATH ? `${models}:${process.env.PYTHONPATH}` : models };
}

/** Runs `python args...` (cwd = repo root), streams its stderr through, resolves with its stdout. */
export function runPython(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python(), args, { cwd: ROOT, env: pythonEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => process.stderr.write(c));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const stdout = Buffer.concat(chunks).toString('utf8');
      if (code === 0) resolve(stdout);
      else reject(new Error(`python ${args.slice(0, 2).join(' ')} failed (code ${code}, signal ${signal}): ${stdout.slice(-2000)}`));
    });
  });
}

/** A Python process that answers one line of stdout per line written to its stdin (bench/py/decode_anchors.py --serve). */
export function pythonServer(args: string[]): { ask(line: string): Promise<string>; close(): void } {
  const child = spawn(python(), args, { cwd: ROOT, env: pythonEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.on('data', (c: Buffer) => process.stderr.write(c));
  let buffered = '';
  const waiting: Array<{ resolve: (line: string) => void; reject: (err: Error) => void }> = [];
  child.stdout.on('data', (c: Buffer) => {
    buffered += c.toString('utf8');
    for (let at = buffered.indexOf('\n'); at >= 0; at = buffered.indexOf('\n')) {
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      waiting.shift()?.resolve(line);
    }
  });
  child.on('exit', (code, signal) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`python ${args.slice(0, 2).join(' ')} exited (code ${code}, signal ${signal})`));
  });
  return {
    ask: (line) =>
      new Promise((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`python ${args.slice(0, 2).join(' ')} is not running`));
        waiting.push({ resolve, reject });
        child.stdin.write(`${line}\n`);
      }),
    close: () => child.stdin.end(),
  };
}

/** The helper's answer: one JSON object on the last line of stdout. */
export async function helper<T>(args: string[]): Promise<T> {
  const stdout = await runPython([path.join(ROOT, 'bench', 'py', 'helper.py'), ...args]);
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}

/** Held-out clips from the procedural benchmark (seed 1002), generated once into `dir`. */
export async function heldOutClips(dir: string, count: number): Promise<string[]> {
  const list = (): string[] => {
    const csv = path.join(dir, 'labels.csv');
    if (!existsSync(csv)) return [];
    return readFileSync(csv, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => path.join(dir, line.split(',')[0] as string))
      .filter((f) => existsSync(f));
  };
  let files = list();
  if (files.length < count) {
    log(`generating ${count} held-out clips into ${path.relative(ROOT, dir)}`);
    await runPython(['-m', 'haltingvt', 'synth', '--out', dir, '--count', String(count), '--seed', '1002', '--quiet']);
    files = list();
  }
  if (files.length < count) throw new Error(`${dir}: expected ${count} clips, found ${files.length}`);
  return files.slice(0, count);
}

export interface PythonFacts {
  torch: string;
  onnx: string;
  onnxruntime_python: string;
  torch_default_threads: number;
  python: string;
}

export async function machineFacts(threads: number, py: PythonFacts, ffmpegPath: string): Promise<MachineFacts> {
  const cpus = os.cpus();
  const ortPkg = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string };
  let ffmpeg = 'unknown';
  try {
    ffmpeg = (await execFileP(ffmpegPath, ['-version'])).stdout.split('\n')[0]?.replace(/ Copyright.*/, '') ?? ffmpeg;
  } catch {
    /* keep "unknown" */
  }
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memory_gib: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    onnxruntime_node: ortPkg.version,
    torch: py.torch,
    onnxruntime_python: py.onnxruntime_python,
    ffmpeg,
    ort_intra_op_threads: threads,
    torch_threads: threads,
    loadavg_start: os.loadavg(),
    concurrent_load: otherLoad(),
    int8_dot_products: int8DotProducts(),
  };
}

/** The int8 dot-product instructions /proc/cpuinfo lists; undefined where it cannot be read or lists no x86 flags (then unknown, not none). */
function int8DotProducts(): string[] | undefined {
  let flags: string[];
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
    if (line === undefined) return undefined;
    flags = line.trim().split(/\s+/);
  } catch {
    return undefined;
  }
  return ['avx512_vnni', 'avx_vnni', 'amx_int8'].filter((f) => flags.includes(f));
}

/** The toolkit's heavy commands (train, eval, synth, export) run by someone else, from pgrep. */
export function foreignToolkit(): string[] {
  try {
    const out = execFileSync('pgrep', ['-af', 'haltingvt (train|eval|synth|export)'], { encoding: 'utf8' }).trim();
    const ours = (pid: string): boolean => {
      if (pid === String(process.pid)) return true;
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(process.pid); // our child
      } catch {
        return true; // gone
      }
    };
    return [
      ...new Set(
        out
          .split('\n')
          .filter((l) => l && !l.includes('pgrep') && !ours(l.split(' ')[0] ?? ''))
          .map((l) => /haltingvt (train|eval|synth|export)/.exec(l)?.[0] ?? 'haltingvt'),
      ),
    ];
  } catch {
    return [];
  }
}

export function otherLoad(): string | null {
  const seen = foreignToolkit();
  return seen.length > 0 ? `other heavy processes were running (${seen.join(', ')})` : null;
}

/**
 * Watches for other heavy work while the benchmark runs: every `everyMs`, the 1-minute load average
 * and any toolkit command not started by the benchmark. stop() says what it saw.
 */
export function watchLoad(everyMs = 5000): { stop(): { seen: string[]; samples: number; busy: number; maxLoad: number } } {
  const seen = new Set<string>();
  let samples = 0;
  let busy = 0;
  let maxLoad = 0;
  const timer = setInterval(() => {
    samples += 1;
    const foreign = foreignToolkit();
    if (foreign.length > 0) busy += 1;
    for (const f of foreign) seen.add(f);
    maxLoad = Math.max(maxLoad, os.loadavg()[0] ?? 0);
  }, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return { seen: [...seen], samples, busy, maxLoad };
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
