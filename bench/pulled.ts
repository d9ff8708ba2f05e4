/**
 * `make bench-pulled` (also run by `make bench-streams`): pulled streams on the real server process
 * with the embedded model, the sources published live over HTTP on 127.0.0.1 by ffmpeg.
 *
 *   1. What a stream costs per hour, quiet vs busy: one pulled stream of each clip for DURATION_S in
 *      real time (25 fps 640×360 H.264 MPEG-TS looped by ffmpeg), windows of 4 s every 2 s, from its
 *      first window on. CPU-seconds of every process it uses (its decoder, the inference worker and the
 *      main process, from /proc) and the GFLOPs its windows spent, per hour. The
 *      quiet clip is a still scene, the busy one moving content, both with a camera's sensor noise.
 *      What a window costs follows how soon the model is sure (halting) and what the Glimpser keeps,
 *      not motion as such: the figures say which is dearer for the model served.
 *   2. Memory over pulled streams added and removed: each POST /v1/streams, its first window, then
 *      DELETE, four at a time; RSS of the main process and the inference worker.
 *
 * Writes bench/out/pulled.json and bench/results-pulled.md.
 *   node --import tsx bench/pulled.ts [--quick] [--model DIR]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultModelDir } from '../src/paths.js';
import { log, ROOT, sleep } from './lib/env.js';
import { cpuSecondsOf, freePort, rssOf, startServer, type ServerHandle } from './lib/service.js';
import { peakGrowth, percentile } from './lib/stats.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, model: { type: 'string' } } });
const quick = values.quick ?? false;
const modelDir = values.model ? path.resolve(values.model) : defaultModelDir([ROOT]);
const OUT = path.join(ROOT, 'bench', 'out');
const DURATION_S = quick ? 30 : 120;
const CHURN = quick ? 40 : 200;

const CLIPS = {
  // A still scene (colour bars) and a camera's sensor noise, changing every frame.
  quiet: { source: 'smptebars=size=640x360:rate=25', filter: 'noise=alls=6:allf=t' },
  // Moving content (the bench's usual test pattern), with the same sensor noise.
  busy: { source: 'testsrc2=size=640x360:rate=25', filter: 'noise=alls=6:allf=t' },
} as const;
type ClipName = keyof typeof CLIPS;

interface Event {
  event: string;
  lag_s?: number;
  gflops?: number;
  tokens?: { per_layer: number[] };
  summary?: { windows: number; stream_s: number; wall_s: number; gflops: number; decoder_cpu_s: number | null; decoder_startup_cpu_s: number | null };
}

function clip(name: ClipName): string {
  mkdirSync(path.join(OUT, 'clips'), { recursive: true });
  const file = path.join(OUT, 'clips', `pulled-${name}-20s-v2.mpegts`);
  if (!existsSync(file)) {
    execFileSync('ffmpeg', ['-y', '-v', 'error', '-f', 'lavfi', '-i', `${CLIPS[name].source}:duration=20`, '-vf', CLIPS[name].filter, '-c:v', 'libx264', '-preset', 'veryfast', '-g', '50', '-bf', '2', '-pix_fmt', 'yuv420p', '-f', 'mpegts', file]);
  }
  return file;
}

/** ffmpeg serving `file` looped, live, to one HTTP client at a time. */
function publish(file: string, port: number): ChildProcess {
  return spawn('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'mpegts', '-listen', '1', `http://127.0.0.1:${port}/live.ts`], { stdio: 'ignore' });
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (res.status === 204 ? undefined : await res.json()) as T };
}

/** Starts a pulled stream and collects its events (SSE) until `ended`. */
async function pull(server: ServerHandle, source: string, windowS = 4): Promise<{ id: string; events: Event[]; ended: Promise<Event[]> }> {
  const created = await json<{ id: string }>(`${server.url}/v1/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: { url: source }, window_s: windowS }) });
  if (created.status !== 201) throw new Error(`POST /v1/streams answered ${created.status}: ${JSON.stringify(created.body)}`);
  const { id } = created.body;
  const events: Event[] = [];
  const ended = new Promise<Event[]>((resolve, reject) => {
    http
      .get(`${server.url}/v1/streams/${id}/events`, (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buffer += d;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const data = /^data: (.*)$/m.exec(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (data) events.push(JSON.parse(data[1] as string) as Event);
          }
        });
        res.on('end', () => resolve(events));
      })
      .on('error', reject);
  });
  return { id, events, ended };
}

async function until(what: string, ok: () => boolean, seconds: number): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await sleep(50);
  }
}

interface Cost {
  clip: ClipName;
  stream_s: number;
  windows: number;
  gflops_per_window: number;
  tokens_per_layer: number[];
  lag_p50_s: number;
  cpu_s_per_hour: { decoder: number; inference: number; main: number; total: number };
  gflops_per_hour: number;
}

async function cost(server: ServerHandle, name: ClipName): Promise<Cost> {
  const port = await freePort();
  const publisher = publish(clip(name), port);
  try {
    await sleep(500);
    const { main, inference } = server.pids();
    const stream = await pull(server, `http://127.0.0.1:${port}/live.ts`);
    await until('its first window', () => stream.events.some((e) => e.event === 'window'), 30);
    // From the first window on, the stream is in its steady state: the decoder's start-up is in its summary apart.
    const decoders = server.pids().live;
    if (decoders.length !== 1) throw new Error(`expected the stream's one decoder process, found ${decoders.length}`);
    const cpu = (): { main: number; inference: number; decoder: number } => ({
      main: cpuSecondsOf(main),
      inference: inference.reduce((a, p) => a + cpuSecondsOf(p), 0),
      decoder: cpuSecondsOf(decoders[0] as number),
    });
    const cpu0 = cpu();
    const t0 = performance.now();
    await sleep(DURATION_S * 1000);
    const cpu1 = cpu();
    const wall = (performance.now() - t0) / 1000;
    await json(`${server.url}/v1/streams/${stream.id}`, { method: 'DELETE' });
    const events = await stream.ended;
    const summary = events.find((e) => e.event === 'ended')?.summary;
    if (!summary?.windows) throw new Error(`no summary for the ${name} stream: ${JSON.stringify(events.at(-1))}`);
    const windows = events.filter((e) => e.event === 'window');
    const layers = windows[0]?.tokens?.per_layer.length ?? 0;
    const perHour = (x: number): number => (x / wall) * 3600;
    const c: Cost = {
      clip: name,
      stream_s: summary.stream_s,
      windows: summary.windows,
      gflops_per_window: summary.gflops / summary.windows,
      tokens_per_layer: Array.from({ length: layers }, (_, l) => windows.reduce((a, w) => a + (w.tokens?.per_layer[l] ?? 0), 0) / windows.length),
      lag_p50_s: percentile(windows.map((w) => w.lag_s ?? 0), 50),
      cpu_s_per_hour: { decoder: perHour(cpu1.decoder - cpu0.decoder), inference: perHour(cpu1.inference - cpu0.inference), main: perHour(cpu1.main - cpu0.main), total: 0 },
      gflops_per_hour: (summary.gflops / summary.stream_s) * 3600,
    };
    c.cpu_s_per_hour.total = c.cpu_s_per_hour.decoder + c.cpu_s_per_hour.inference + c.cpu_s_per_hour.main;
    log(`${name}: ${c.windows} windows over ${c.stream_s.toFixed(0)} s, ${c.gflops_per_window.toFixed(3)} GFLOPs per window, tokens per layer ${c.tokens_per_layer.map((t) => t.toFixed(0)).join('/')}; per hour: ${c.cpu_s_per_hour.total.toFixed(0)} CPU-s (decoder ${c.cpu_s_per_hour.decoder.toFixed(0)}, inference ${c.cpu_s_per_hour.inference.toFixed(0)}, main ${c.cpu_s_per_hour.main.toFixed(0)}), ${c.gflops_per_hour.toFixed(0)} GFLOPs`);
    return c;
  } finally {
    publisher.kill('SIGKILL');
  }
}

/** A finite file over HTTP: each pulled stream reads it whole at its own pace. */
function serveFile(file: string): Promise<{ url: string; close(): void }> {
  const body = readFileSync(file);
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'video/mp2t', 'content-length': body.length }).end(body));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/clip.ts`, close: () => server.close() })));
}

async function churn(server: ServerHandle): Promise<Array<{ streams: number; main_mib: number; inference_mib: number }>> {
  const source = await serveFile(clip('busy'));
  const samples: Array<{ streams: number; main_mib: number; inference_mib: number }> = [];
  try {
    for (let done = 0; done < CHURN; done += 4) {
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          const stream = await pull(server, source.url, 2);
          await until('a first window', () => stream.events.some((e) => e.event === 'window' || e.event === 'ended'), 60);
          await json(`${server.url}/v1/streams/${stream.id}`, { method: 'DELETE' });
          await stream.ended;
        }),
      );
      if ((done + 4) % Math.max(4, Math.floor(CHURN / 10 / 4) * 4) === 0) {
        const { main, inference } = server.pids();
        samples.push({ streams: done + 4, main_mib: rssOf(main) / 2 ** 20, inference_mib: inference.reduce((a, p) => a + rssOf(p), 0) / 2 ** 20 });
      }
    }
  } finally {
    source.close();
  }
  log(`churn: ${samples.map((c) => `${c.streams}: main ${c.main_mib.toFixed(1)} MiB, inference ${c.inference_mib.toFixed(1)} MiB`).join('; ')}`);
  return samples;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const started = new Date().toISOString();
  const server = await startServer({ modelDir, threads: 0, concurrency: 2, queueSize: 16, env: { PULL_SCHEMES: 'http', PULL_ALLOW: '127.0.0.1', MAX_STREAMS: '64', STREAM_EVENTS_KEPT: '4096' } });
  try {
    const costs = [await cost(server, 'quiet'), await cost(server, 'busy')];
    const samples = await churn(server);
    const results = {
      started,
      command: `node --import tsx bench/pulled.ts${quick ? ' --quick' : ''}`,
      cores: os.availableParallelism(),
      model: path.basename(modelDir),
      clips: CLIPS,
      duration_s: DURATION_S,
      costs,
      churn: samples,
      churn_growth: { main: peakGrowth(samples.map((s) => s.main_mib)), inference: peakGrowth(samples.map((s) => s.inference_mib)) },
    };
    writeFileSync(path.join(OUT, 'pulled.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(path.join(ROOT, 'bench', 'results-pulled.md'), report(results));
    log('wrote bench/results-pulled.md');
  } finally {
    await server.stop();
  }
}

function report(r: { started: string; command: string; cores: number; model: string; duration_s: number; costs: Cost[]; churn: Array<{ streams: number; main_mib: number; inference_mib: number }>; churn_growth: { main: number; inference: number } }): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const [quiet, busy] = r.costs as [Cost, Cost];
  const row = (label: string, f: (c: Cost) => string): string => `| ${label} | ${f(quiet)} | ${f(busy)} |`;
  return [
    '# Pulled streams: what one costs per hour, and memory over streams added and removed',
    '',
    `Run ${r.started} (\`${r.command}\`), ${r.cores} cores, model \`${r.model}\`. Each source is a 20 s 640×360 25 fps H.264 clip (GOP 50, 2 B-frames) that ffmpeg loops live over HTTP on 127.0.0.1; the service pulls it for ${r.duration_s} s after its first window, windows of 4 s every 2 s. Quiet: still colour bars; busy: the moving test pattern; both with a camera's sensor noise.`,
    '',
    '| per hour of stream | quiet | busy |',
    '|---|---|---|',
    row('CPU-seconds, all of its processes', (c) => c.cpu_s_per_hour.total.toFixed(0)),
    row('… its decoder process (start-up excluded)', (c) => c.cpu_s_per_hour.decoder.toFixed(0)),
    row('… inference worker', (c) => c.cpu_s_per_hour.inference.toFixed(0)),
    row('… main process', (c) => c.cpu_s_per_hour.main.toFixed(0)),
    row('cores busy on average', (c) => (c.cpu_s_per_hour.total / 3600).toFixed(3)),
    row('GFLOPs', (c) => c.gflops_per_hour.toFixed(0)),
    row('GFLOPs per window', (c) => c.gflops_per_window.toFixed(3)),
    row('tokens per layer (mean over windows)', (c) => c.tokens_per_layer.map((t) => t.toFixed(0)).join(' / ')),
    row('windows (stream seconds)', (c) => `${c.windows} (${c.stream_s.toFixed(0)} s)`),
    row('window lag p50', (c) => `${(c.lag_p50_s * 1000).toFixed(0)} ms`),
    '',
    `The busy stream costs ${(busy.cpu_s_per_hour.total / quiet.cpu_s_per_hour.total).toFixed(2)}× the quiet one's CPU and ${(busy.gflops_per_hour / quiet.gflops_per_hour).toFixed(2)}× its GFLOPs. Measured from each stream's first window on: its decoder process's start-up (Node and libav loading, once per stream and per reconnection) is not in these figures.`,
    '',
    '## Memory over pulled streams added and removed',
    '',
    `Each: POST /v1/streams (a 20 s file over HTTP, read at the service's pace), its first window, DELETE; four at a time. RSS growth (peak of the last third of the samples over the first, the first sample left out): main ${pct(r.churn_growth.main)}, inference worker ${pct(r.churn_growth.inference)} (target ≤ 5%).`,
    '',
    '| streams added and removed | main MiB | inference worker MiB |',
    '|---|---|---|',
    ...r.churn.map((x) => `| ${x.streams} | ${x.main_mib.toFixed(1)} | ${x.inference_mib.toFixed(1)} |`),
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
