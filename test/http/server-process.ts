/**
 * The real server process (src/server.ts through tsx) for tests: start it on a free loopback port
 * with its own UPLOAD_DIR, read its logs and metrics, find its inference worker, and clean up
 * whatever a test leaves running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { freePort } from '../helpers/net.js';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { ROOT, TINY_MODEL } from './helpers.js';

export interface Server {
  child: ChildProcess;
  base: string;
  port: number;
  uploadDir: string;
  stdout: () => string;
  stderr: () => string;
  /** The JSON log lines so far. */
  logs: () => Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  /** The upload folders in UPLOAD_DIR as the process sees it. */
  uploadFolders: () => string[];
  /** Files in this process's upload folder(s). */
  uploadFiles: () => string[];
}

const running: ChildProcess[] = [];
const folders: string[] = [];
const suiteRunning: ChildProcess[] = [];
const suiteFolders: string[] = [];
const cleanUp = (children: ChildProcess[], dirs: string[]): void => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
};
afterEach(() => cleanUp(running, folders));
afterAll(() => cleanUp(suiteRunning, suiteFolders));

export { freePort } from '../helpers/net.js';

/**
 * Starts the server; SHUTDOWN_DELAY_MS is 0 unless `env` says otherwise. `nodeArgs` go before the
 * entry (e.g. --import a fixture); `wrap` is a command that execs the rest (e.g. into a namespace).
 * The server is killed after the test that started it, or with `forSuite` once the file's tests
 * are done (a server started in beforeAll).
 */
export async function startServer(
  env: Record<string, string> = {},
  options: { uploadDir?: string; nodeArgs?: string[]; wrap?: string[]; forSuite?: boolean } = {},
): Promise<Server> {
  const port = await freePort();
  const uploadDir = options.uploadDir ?? mkdtempSync(path.join(os.tmpdir(), 'haltingvt-server-test-'));
  (options.forSuite ? suiteFolders : folders).push(uploadDir);
  const command = [...(options.wrap ?? []), process.execPath, ...NODE_FLAGS, '--import', 'tsx', ...(options.nodeArgs ?? []), path.join(ROOT, 'src', 'server.ts')];
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      GRPC_PORT: '0', // tests run side by side: none may take the default 8081
      MODEL_DIR: TINY_MODEL,
      EXECUTION_PROVIDERS: 'cpu',
      INTRA_OP_THREADS: '1',
      UPLOAD_DIR: uploadDir,
      LOG_LEVEL: 'info',
      SHUTDOWN_DELAY_MS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  (options.forSuite ? suiteRunning : running).push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const logs = (): Array<Record<string, unknown>> =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  // Seen from inside the process's mount namespace, where a wrapped server may have its own UPLOAD_DIR.
  const seenDir = (): string => (options.wrap ? `/proc/${child.pid}/root${uploadDir}` : uploadDir);
  const uploadFolders = (): string[] => readdirSync(seenDir());
  const uploadFiles = (): string[] => {
    try {
      return uploadFolders().flatMap((d) => readdirSync(path.join(seenDir(), d)));
    } catch {
      return [];
    }
  };
  return { child, base: `http://127.0.0.1:${port}`, port, uploadDir, stdout: () => out, stderr: () => err, logs, exited, uploadFolders, uploadFiles };
}

export async function status(url: string): Promise<number> {
  try {
    return (await fetch(url)).status;
  } catch {
    return 0;
  }
}

/** One sample of a metric from /metrics (NaN when absent), e.g. metric(base, 'haltingvt_errors_total{code="ABORTED"}'). */
export async function metric(base: string, series: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

export interface HeldRequest {
  req: http.ClientRequest;
  /** The answer, or the socket error if the connection broke first. */
  response: Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string } | Error>;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
}

/**
 * A POST whose body the test writes (and maybe never ends), on its own keep-alive connection as
 * curl and browsers send it: a client that asks for `Connection: close` would hide whether the
 * server closes the connection by itself.
 */
export function heldRequest(base: string, urlPath: string, headers: Record<string, string>): HeldRequest {
  const req = http.request(`${base}${urlPath}`, { method: 'POST', headers, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) });
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string } | Error>((resolve) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', resolve);
    });
    req.on('error', resolve);
  });
  const closed = new Promise<void>((resolve) => req.on('socket', (socket) => socket.on('close', () => resolve())));
  return { req, response, closed };
}

/**
 * The server's inference workers (Linux /proc): its child processes running inference/worker. Its
 * other children (esbuild, which tsx runs to compile TypeScript; ffmpeg) are left out.
 */
export function workerPids(serverPid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === serverPid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').match(/inference\/worker\.[jt]s/) !== null) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/**
 * A command that runs the rest in a private mount namespace with a `bytes`-sized tmpfs on `dir`
 * (a disk that really fills up). Needs unshare and user namespaces: see tmpfsMountable().
 */
export function tinyDiskWrapper(dir: string, bytes: number): string[] {
  return ['unshare', '-rm', 'sh', '-c', `mount -t tmpfs -o size=${bytes} tmpfs "$1" && shift && exec "$@"`, 'sh', dir];
}

/** Whether this machine lets an unprivileged process mount a tmpfs in its own namespace. */
export function tmpfsMountable(): boolean {
  const probe = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$1"', 'sh', os.tmpdir()], { stdio: 'ignore' });
  return probe.status === 0;
}
