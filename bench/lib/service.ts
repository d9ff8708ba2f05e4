/**
 * Section 5: the real server process under a bounded, closed-loop load on loopback, against the
 * engine's own throughput with no HTTP in front. The server is started as `node --import
 * bench/lib/eld-probe.mjs dist/server.js` with an IPC channel, over which the probe reports the
 * main thread's event-loop delay; RSS and CPU time come from /proc for the server, its inference
 * worker and its decode workers. The probe is on only in a window of its own after each step's
 * CPU has been read, and through the soak: its 1 ms timer costs the main process 2-4 CPU ms per
 * video one at a time (eld-probe.mjs). After the load steps the same server answers the probes (the
 * reference clip) at one client and at the saturation step's clients, so that its CPU per video by
 * process can be set against the floor measured on those clips (floor.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { missingNodeFlags } from '../../src/node-flags.js';
import type { Engine } from '../../src/engine/index.js';
import { log, ROOT, sleep } from './env.js';
import type { ServiceResults, ServiceStep, SoakSample, SoakWindow, StepCpu } from './report.js';
import { mean, median, percentile } from './stats.js';

const MIB = 2 ** 20;

/** Closed loop on the engine itself: `concurrency` callers, each classifying the next clip as soon as the last is done. */
export async function engineThroughput(engine: Engine, files: string[], concurrency: number, seconds: number): Promise<{ concurrency: number; duration_s: number; videos: number; throughput: number }> {
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await engine.classify(files[next++ % files.length] as string, engine.validateKnobs({}));
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const elapsed = (performance.now() - t0) / 1000;
  log(`engine alone, concurrency ${concurrency}: ${(done / elapsed).toFixed(2)} videos/s`);
  return { concurrency, duration_s: elapsed, videos: done, throughput: done / elapsed };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** VmRSS of a process in bytes (0 when it is gone). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** /proc/PID/stat's fields from the third (state) on, so field N is at N − 3; none when the process is gone. */
function statFields(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  } catch {
    return [];
  }
}

/** user + system CPU seconds of a process (0 when it is gone); fields 14 and 15, in ticks of 1/100 s. */
export function cpuSecondsOf(pid: number): number {
  const fields = statFields(pid);
  return fields.length === 0 ? 0 : (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds of the children `pid` has reaped, over their whole lives (cutime + cstime, fields 16
 * and 17): where a worker that exited (a retired decode worker) left its CPU.
 */
export function reapedCpuSecondsOf(pid: number): number {
  const fields = statFields(pid);
  return fields.length === 0 ? 0 : (Number(fields[13]) + Number(fields[14])) / 100;
}

/** The machine's CPU seconds since boot, all cores: busy at nice 0, busy at nice > 0, idle (/proc/stat). */
export function machineCpu(): { busy: number; niced: number; idle: number } {
  const t = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number): number => t[i] ?? 0; // user nice system idle iowait irq softirq steal
  return { busy: (at(0) + at(2) + at(5) + at(6) + at(7)) / 100, niced: at(1) / 100, idle: (at(3) + at(4)) / 100 };
}

/** Direct children of a process, from /proc/PID/task/TID/children. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSafe(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** The server's worker processes by their entry file: decode workers, live stream decoders, and the inference worker as the other child. */
export function workerPids(pid: number): { inference: number[]; decode: number[]; live: number[] } {
  const children = childrenOf(pid).map((c) => {
    const line = cmdline(c);
    return { pid: c, kind: /decode\/worker\.(js|ts)/.test(line) ? 'decode' : /live\/worker\.(js|ts)/.test(line) ? 'live' : 'inference' };
  });
  const of = (kind: string): number[] => children.filter((c) => c.kind === kind).map((c) => c.pid);
  return { inference: of('inference'), decode: of('decode'), live: of('live') };
}

/**
 * CPU spent over one step, per answered video: the server's workers (decode + inference), its main
 * process, this process (the clients), and the machine's share at nice > 0 and idle. A worker that
 * exits during the step (retired, timed out, crashed) is counted from main's reaped children.
 */
function cpuMeter(server: ServerHandle): { stop(videos: number): StepCpu } {
  const start = server.pids();
  const before = new Map([start.main, ...start.inference, ...start.decode].map((p) => [p, cpuSecondsOf(p)]));
  const reaped0 = reapedCpuSecondsOf(start.main);
  const machine0 = machineCpu();
  const self0 = process.cpuUsage();
  return {
    stop(videos) {
      const { main, inference, decode } = server.pids();
      const spent = (pids: number[]): number => pids.reduce((a, p) => a + cpuSecondsOf(p) - (before.get(p) ?? 0), 0);
      // A worker that exited during the step (a decode worker retired after DECODE_WORKER_MAX_VIDEOS)
      // is no longer listed: its whole life's CPU is now in main's reaped children, less what it had
      // spent before the step. Counted as decoding, the only workers the service retires.
      const alive = new Set([main, ...inference, ...decode]);
      const spentBefore = [...before].filter(([pid]) => !alive.has(pid)).reduce((a, [, s]) => a + s, 0);
      const mainS = spent([main]);
      const inferenceS = spent(inference);
      const decodeS = spent(decode) + reapedCpuSecondsOf(main) - reaped0 - spentBefore;
      const clientsS = process.cpuUsage(self0);
      const m = machineCpu();
      const total = m.busy + m.niced + m.idle - (machine0.busy + machine0.niced + machine0.idle);
      const n = Math.max(1, videos);
      const ours = mainS + inferenceS + decodeS + (clientsS.user + clientsS.system) / 1e6;
      const busy = m.busy + m.niced - (machine0.busy + machine0.niced);
      return {
        cores: os.availableParallelism(),
        decode_infer_s_per_video: (inferenceS + decodeS) / n,
        inference_s_per_video: inferenceS / n,
        decode_s_per_video: decodeS / n,
        main_s_per_video: mainS / n,
        clients_s_per_video: (clientsS.user + clientsS.system) / 1e6 / n,
        niced_fraction: (m.niced - machine0.niced) / total,
        idle_fraction: (m.idle - machine0.idle) / total,
        ours_fraction: ours / total,
        others_fraction: Math.max(0, busy - ours) / total,
      };
    },
  };
}

/** The most videos/s the cores allow at this step's decode-plus-inference CPU cost, and how close the step came. */
function cpuLimit(step: ServiceStep): { cpu_limit?: number; ratio_cpu_limit?: number } {
  if (!step.cpu || !(step.cpu.decode_infer_s_per_video > 0)) return {};
  const limit = step.cpu.cores / step.cpu.decode_infer_s_per_video;
  return { cpu_limit: limit, ratio_cpu_limit: step.throughput / limit };
}

/** Whether src/ changed after `dist` was built. */
export function staleBuild(dist: string): boolean {
  const built = statSync(dist).mtimeMs;
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => Math.max(m, e.isDirectory() ? newest(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs), 0);
  return newest(path.join(ROOT, 'src')) > built;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return existsSync(dir) ? readdirSync(dir) : [];
  } catch {
    return [];
  }
}

interface EldReport {
  count: number;
  p50: number;
  p99: number;
  max: number;
  rss: number;
}

export interface ServerHandle {
  proc: ChildProcess;
  url: string;
  /** The probe's figures since its last reset; `on` turns it on (from now, reset) or off (after this report). */
  eld(reset: boolean, on?: boolean): Promise<EldReport>;
  /** Bytes: the server's main process, its inference worker, its decode workers together. */
  rss(): { main: number; worker: number; decode: number };
  /** Process ids now: the main process, the inference worker(s), the decode workers, the live stream decoders. */
  pids(): { main: number; inference: number[]; decode: number[]; live: number[] };
  stop(): Promise<number | null>;
}

export interface ServerOptions {
  modelDir: string;
  threads: number;
  concurrency: number;
  queueSize: number;
  /** OIP gRPC port; 0 (the default here) turns gRPC off. */
  grpcPort?: number | undefined;
  /** More environment for the server (BATCH_MAX_SIZE...). */
  env?: Record<string, string> | undefined;
  /** Another built checkout whose dist/server.js runs instead of this tree's (bench/ab.ts). */
  root?: string | undefined;
}

export async function startServer(o: ServerOptions): Promise<ServerHandle> {
  const port = await freePort();
  const root = o.root ?? ROOT;
  const dist = path.join(root, 'dist', 'server.js');
  const probe = pathToFileURL(path.join(ROOT, 'bench', 'lib', 'eld-probe.mjs')).href;
  // dist/ as `make bench` builds it; the TypeScript source through tsx when dist/ is missing or older than src/.
  // Started as the Dockerfile starts it (NODE_FLAGS); a variant's NODE_OPTIONS can still set them.
  const flags = missingNodeFlags([], o.env?.NODE_OPTIONS ?? process.env.NODE_OPTIONS);
  const args = existsSync(dist) && (o.root !== undefined || !staleBuild(dist)) ? [...flags, '--import', probe, dist] : [...flags, '--import', probe, '--import', 'tsx', path.join(ROOT, 'src', 'server.ts')];
  if (args.includes('tsx')) log('dist/ is missing or older than src/: running the server from source through tsx');
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    GRPC_PORT: String(o.grpcPort ?? 0),
    MODEL_DIR: o.modelDir,
    EXECUTION_PROVIDERS: 'cpu',
    INTRA_OP_THREADS: String(o.threads),
    CONCURRENCY: String(o.concurrency),
    QUEUE_SIZE: String(o.queueSize),
    LOG_LEVEL: 'warn',
    SHUTDOWN_DELAY_MS: '0', // no load balancer to wait for
    ...o.env,
  };
  const proc = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  const logFile = createWriteStream(path.join(ROOT, 'bench', 'out', 'server.log'), { flags: 'a' });
  logFile.write(`--- ${new Date().toISOString()} node ${args.join(' ')}\n`);
  proc.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
    logFile.write(c);
  });
  proc.on('exit', (code, signal) => logFile.end(`--- exit code ${code}, signal ${signal}\n`));
  let nextId = 1;
  let stopping = false;
  const waiting = new Map<number, (r: EldReport) => void>();
  // A server that dies mid-run must fail this section with its reason, not crash the benchmark.
  proc.on('error', (err) => log(`server channel error: ${err.message}`));
  proc.on('exit', (code, signal) => {
    if (!stopping) log(`the server exited during the run (code ${code}, signal ${signal}); stderr tail: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
  });
  proc.on('message', (m: { type?: string; id?: number } & EldReport) => {
    if (m?.type !== 'bench:eld' || m.id === undefined) return;
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}): ${stderr}`);
    try {
      const res = await fetch(`${url}/readyz`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (performance.now() - started > 120_000) throw new Error(`the server did not become ready: ${stderr}`);
    await sleep(200);
  }
  log(`server ready on ${url} after ${((performance.now() - started) / 1000).toFixed(1)} s (pid ${proc.pid})`);
  const pid = proc.pid as number;
  return {
    proc,
    url,
    eld: (reset, on) =>
      new Promise((resolve, reject) => {
        if (!proc.connected) return reject(new Error(`the server is gone (exit ${proc.exitCode}, signal ${proc.signalCode}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
        const id = nextId++;
        const timer = setTimeout(() => reject(new Error('no event-loop report from the server')), 10_000);
        waiting.set(id, (r) => {
          clearTimeout(timer);
          resolve(r);
        });
        proc.send({ type: 'bench:eld', id, reset, on }, (err) => {
          if (!err) return;
          clearTimeout(timer);
          waiting.delete(id);
          reject(err);
        });
      }),
    rss: () => {
      const { inference, decode } = workerPids(pid);
      const sum = (pids: number[]): number => pids.reduce((a, w) => a + rssOf(w), 0);
      return { main: rssOf(pid), worker: sum(inference), decode: sum(decode) };
    },
    pids: () => ({ main: pid, ...workerPids(pid) }),
    stop: () =>
      new Promise((resolve) => {
        stopping = true;
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
        const kill = setTimeout(() => proc.kill('SIGKILL'), 30_000);
        proc.once('exit', (code) => {
          clearTimeout(kill);
          resolve(code);
        });
        proc.kill('SIGTERM');
      }),
  };
}

interface Sample {
  ms: number;
  status: number;
  stages?: { queue: number; decode: number; infer: number };
}

const POST_TIMEOUT_MS = 120_000;

/**
 * The load's client: node:http over kept-alive sockets. The clients share the service's cores, so
 * what they spend is taken from the service: measured side by side on one server (4 clients, 15 s,
 * two rounds, 2026-12-07), fetch (undici) cost 3.5-4.0 CPU ms per video and this 1.05-1.2.
 */
export function postVideo(url: URL, body: Buffer, agent: Agent): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // A service that stalls fails the request (as fetch's own limits did) rather than hang the load.
    req.setTimeout(POST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${POST_TIMEOUT_MS} ms`)));
    req.end(body);
  });
}

/**
 * `concurrency` closed-loop clients for `seconds`: each posts the next clip as a raw body and waits
 * for the answer; after a 429/503 it waits `backoffMs` (a client honouring Retry-After would wait
 * longer). `onTick` runs every `tickMs` while the load runs.
 */
export async function load(
  server: ServerHandle,
  bodies: Buffer[],
  concurrency: number,
  seconds: number,
  options: { backoffMs?: number; tickMs?: number; onTick?: (elapsedS: number, completed: number) => void } = {},
): Promise<{ samples: Sample[]; elapsedS: number }> {
  const samples: Sample[] = [];
  const agent = new Agent({ keepAlive: true });
  const classify = new URL(`${server.url}/v1/classify`);
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const tick = options.onTick ? setInterval(() => options.onTick?.((performance.now() - t0) / 1000, samples.filter((s) => s.status === 200).length), options.tickMs ?? 5000) : undefined;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      if (server.proc.exitCode !== null || server.proc.signalCode !== null) throw new Error(`the server exited during the load (code ${server.proc.exitCode}, signal ${server.proc.signalCode})`);
      const body = bodies[next++ % bodies.length] as Buffer;
      const start = performance.now();
      let status = 0;
      let stages: Sample['stages'];
      try {
        const { status: answered, text } = await postVideo(classify, body, agent);
        status = answered;
        if (status === 200) {
          const t = (JSON.parse(text) as { timings_s: { queue: number; decode: number; infer: number } }).timings_s;
          stages = { queue: t.queue * 1000, decode: t.decode * 1000, infer: t.infer * 1000 };
        }
      } catch {
        status = -1;
      }
      samples.push({ ms: performance.now() - start, status, stages });
      if (status === 429 || status === 503 || status === -1) await sleep(options.backoffMs ?? 100);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
  } finally {
    agent.destroy();
    if (tick) clearInterval(tick);
  }
  return { samples, elapsedS: (performance.now() - t0) / 1000 };
}

export interface ServiceOptions extends ServerOptions {
  files: string[];
  levels: number[];
  stepSeconds: number;
  soakSeconds: number;
  soakConcurrency: number;
  soakSampleS: number;
  engineThroughput: ServiceResults['engine'];
  modelName: string;
  /** Other clips the same server also answers after the steps, at one client and at the saturation step's clients (the reference clip). */
  probes?: Array<{ label: string; files: string[] }> | undefined;
}

/**
 * One closed-loop step of `concurrency` clients: throughput, latency, peak RSS and CPU by process;
 * then, the same load going on, the server's loop delay in a window of its own with the probe on.
 */
async function measureStep(server: ServerHandle, bodies: Buffer[], concurrency: number, seconds: number, label: string): Promise<ServiceStep> {
  let peak = { main: 0, worker: 0, decode: 0 };
  const track = (): void => {
    const r = server.rss();
    peak = { main: Math.max(peak.main, r.main), worker: Math.max(peak.worker, r.worker), decode: Math.max(peak.decode, r.decode) };
  };
  const meter = cpuMeter(server);
  const { samples, elapsedS } = await load(server, bodies, concurrency, seconds, { tickMs: 1000, onTick: track });
  const ok = samples.filter((s) => s.status === 200);
  const cpu = meter.stop(ok.length);
  await server.eld(true, true);
  await load(server, bodies, concurrency, Math.max(1, Math.min(ELD_WINDOW_S, seconds / 2)));
  const eld = await server.eld(true, false);
  track();
  const stages = ok.map((s) => s.stages).filter((s): s is NonNullable<Sample['stages']> => s !== undefined);
  const step: ServiceStep = {
    concurrency,
    duration_s: elapsedS,
    requests: samples.length,
    ok: ok.length,
    rate_429: samples.filter((s) => s.status === 429).length / samples.length,
    rate_503: samples.filter((s) => s.status === 503).length / samples.length,
    other_errors: samples.filter((s) => ![200, 429, 503].includes(s.status)).length,
    throughput: ok.length / elapsedS,
    p50_ms: percentile(ok.map((s) => s.ms), 50),
    p99_ms: percentile(ok.map((s) => s.ms), 99),
    eld_p50_ms: eld.p50,
    eld_p99_ms: eld.p99,
    eld_max_ms: eld.max,
    rss_main_mib: peak.main / MIB,
    rss_worker_mib: peak.worker / MIB,
    rss_decode_mib: peak.decode / MIB,
    cpu,
    stage_ms: { queue: median(stages.map((s) => s.queue)), decode: median(stages.map((s) => s.decode)), infer: median(stages.map((s) => s.infer)) },
  };
  log(`service${label} c=${concurrency}: ${step.throughput.toFixed(2)} videos/s, p50 ${step.p50_ms.toFixed(0)} ms, p99 ${step.p99_ms.toFixed(0)} ms, 429 ${(100 * step.rate_429).toFixed(0)}%, loop p99 ${step.eld_p99_ms.toFixed(1)} ms`);
  return step;
}

/** Seconds of each step's loop-delay window (at most half the step). */
const ELD_WINDOW_S = 5;

/** The step with the most videos/s. */
export function bestStep(steps: ServiceStep[]): ServiceStep {
  return steps.reduce((a, b) => (b.throughput > a.throughput ? b : a), steps[0] as ServiceStep);
}

/** The same server on other clips: one client, then as many as the saturation step had, after a warm-up on their sizes. */
async function measureProbes(server: ServerHandle, o: ServiceOptions, saturation: number): Promise<NonNullable<ServiceResults['probes']>> {
  const probes: NonNullable<ServiceResults['probes']> = [];
  for (const p of o.probes ?? []) {
    const bodies = await Promise.all(p.files.map((f) => readFile(f)));
    await load(server, bodies, 1, Math.min(2, o.stepSeconds));
    const steps: ServiceStep[] = [];
    for (const c of new Set([1, saturation])) steps.push(await measureStep(server, bodies, c, o.stepSeconds, `, ${p.label},`));
    probes.push({ clips: p.label, steps });
  }
  return probes;
}

export async function measureService(o: ServiceOptions): Promise<ServiceResults> {
  const bodies = await Promise.all(o.files.map((f) => readFile(f)));
  const server = await startServer(o);
  const steps: ServiceStep[] = [];
  let probes: ServiceResults['probes'];
  let soak: ServiceResults['soak'] = null;
  try {
    await load(server, bodies, 1, Math.min(2, o.stepSeconds)); // warm-up: JIT, buffers, first ffmpeg spawns
    for (const c of o.levels) steps.push(await measureStep(server, bodies, c, o.stepSeconds, ''));
    if (o.probes?.length) probes = await measureProbes(server, o, bestStep(steps).concurrency);
    if (o.soakSeconds > 0) {
      log(`soak: ${o.soakConcurrency} clients for ${o.soakSeconds} s`);
      await server.eld(true, true);
      const samples: SoakSample[] = [];
      let pending = Promise.resolve();
      const { samples: reqs, elapsedS } = await load(server, bodies, o.soakConcurrency, o.soakSeconds, {
        tickMs: o.soakSampleS * 1000,
        onTick: (t, completed) => {
          const r = server.rss();
          pending = pending.then(async () => {
            const eld = await server.eld(true).catch((err: Error) => {
              log(`soak sample at ${t.toFixed(0)} s: ${err.message}`);
              return undefined;
            });
            samples.push({ t_s: t, rss_main_mib: r.main / MIB, rss_worker_mib: r.worker / MIB, rss_decode_mib: r.decode / MIB, eld_p99_ms: eld?.p99 ?? Number.NaN, completed });
          });
        },
      });
      await pending;
      const window = (from: number, to: number): Required<SoakWindow> => {
        const xs = samples.filter((s) => s.t_s >= from && s.t_s <= to);
        return { rss_main_mib: mean(xs.map((s) => s.rss_main_mib)), rss_worker_mib: mean(xs.map((s) => s.rss_worker_mib)), rss_decode_mib: mean(xs.map((s) => s.rss_decode_mib ?? 0)) };
      };
      const minute = Math.min(60, elapsedS / 3);
      const first = window(0, minute);
      const last = window(elapsedS - minute, elapsedS + 1);
      const total = (w: Required<SoakWindow>): number => w.rss_main_mib + w.rss_worker_mib + w.rss_decode_mib;
      const growth = total(last) / total(first) - 1;
      const growthByProcess = {
        main: last.rss_main_mib / first.rss_main_mib - 1,
        inference: last.rss_worker_mib / first.rss_worker_mib - 1,
        decode: last.rss_decode_mib / first.rss_decode_mib - 1,
      };
      soak = {
        concurrency: o.soakConcurrency,
        duration_s: elapsedS,
        throughput: reqs.filter((s) => s.status === 200).length / elapsedS,
        samples,
        first_minute: first,
        last_minute: last,
        growth,
        growth_by_process: growthByProcess,
        eld_p99_worst_ms: Math.max(...samples.map((s) => s.eld_p99_ms)),
      };
      log(`soak: ${soak.throughput.toFixed(2)} videos/s, RSS growth ${(100 * growth).toFixed(1)}%`);
    }
  } finally {
    const code = await server.stop();
    log(`server stopped (exit ${code})`);
  }
  const engineBest = Math.max(...o.engineThroughput.map((e) => e.throughput));
  const same = o.engineThroughput.find((e) => e.concurrency === o.concurrency)?.throughput ?? engineBest;
  const best = bestStep(steps);
  return {
    model: o.modelName,
    config: { concurrency: o.concurrency, queue_size: o.queueSize, threads: o.threads },
    engine: o.engineThroughput,
    engine_throughput: engineBest,
    steps,
    saturation: {
      concurrency: best.concurrency,
      throughput: best.throughput,
      ratio: best.throughput / engineBest,
      engine_same_concurrency: same,
      ratio_same_concurrency: best.throughput / same,
      ...cpuLimit(best),
    },
    ...(probes ? { probes } : {}),
    eld_p99_worst_ms: Math.max(...steps.map((s) => s.eld_p99_ms)),
    soak,
  };
}
