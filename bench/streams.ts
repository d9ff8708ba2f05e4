/**
 * `make bench-streams` (and the end of `make bench`): live streams on the real server process with
 * the embedded model, 25 fps 640×360 H.264 MPEG-TS pushed to POST /v1/streams in real time from
 * this process (paced by the clip's own bitrate), windows of 4 s every 2 s (the defaults).
 *
 *   1. The limit: CPU-seconds per stream-second of decoding alone (the stream decoder's own CPU, from
 *      its `ended` summary) plus inference alone (the inference worker's CPU over the same windows,
 *      from /proc), both from one stream pushed as fast as the service takes it (policy block);
 *      limit = cores ÷ their sum.
 *   2. Streams per 2 cores: N streams at once in real time with policy drop_oldest; held when no
 *      window is dropped and p99 lag stays under one stride. N climbs until it is not held, then is
 *      bisected. Window latency (lag_s: the window's last frame arriving → its event) p50 and p99 at
 *      one stream and at the most held.
 *   3. Memory: RSS of the main process and the inference worker over 200 streams opened and closed,
 *      and of every process (the stream's decoder too) over one long stream (10 minutes; --quick: 1).
 *
 * Writes bench/out/streams.json and bench/results-streams.md.
 *   node --import tsx bench/streams.ts [--quick] [--model DIR] [--trial N]
 * `--trial N` only runs N streams once and prints the trial (for iterating on one figure).
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultModelDir } from '../src/paths.js';
import { log, ROOT, sleep } from './lib/env.js';
import { cpuSecondsOf, machineCpu, rssOf, startServer, type ServerHandle } from './lib/service.js';

/** Busy CPU seconds of the machine, niced work included. */
const busy = (m: ReturnType<typeof machineCpu>): number => m.busy + m.niced;
import { peakGrowth, percentile } from './lib/stats.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, model: { type: 'string' }, trial: { type: 'string' } } });
const quick = values.quick ?? false;
const modelDir = values.model ? path.resolve(values.model) : defaultModelDir([ROOT]);
const OUT = path.join(ROOT, 'bench', 'out');
const CLIP_S = quick ? 12 : 30;
/** Trial streams start spread over this, as cameras connecting one after another: all run at once for the rest of the clip. */
const SPREAD_S = quick ? 4 : 10;
const SOAK_S = quick ? 60 : 600;
const CHURN = quick ? 40 : 200;
const STRIDE_S = 2;

interface Event {
  event: string;
  seq?: number;
  lag_s?: number;
  timings_s?: { queue: number; infer: number; post: number };
  reason?: string;
  summary?: { windows: number; dropped: number; stream_s: number; decoder_cpu_s: number | null; decoder_startup_cpu_s: number | null; decoded_frames: number | null };
}

function clip(seconds: number): string {
  mkdirSync(path.join(OUT, 'clips'), { recursive: true });
  const file = path.join(OUT, 'clips', `stream-${seconds}s.mpegts`);
  if (existsSync(file)) return file;
  // The bench's usual test pattern with moving content; a keyframe every 2 s and B-frames, as cameras and encoders send.
  execFileSync('ffmpeg', ['-y', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=25:duration=${seconds}`, '-c:v', 'libx264', '-preset', 'veryfast', '-g', '50', '-bf', '2', '-pix_fmt', 'yuv420p', '-f', 'mpegts', file]);
  return file;
}

/**
 * One stream: `bytes` posted to /v1/streams, paced to `seconds` of real time (0: as fast as the
 * server reads), every event collected.
 */
function push(server: ServerHandle, bytes: Buffer, seconds: number, query: string): Promise<Event[]> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${server.url}/v1/streams?${query}`, { method: 'POST', headers: { 'content-type': 'video/mp2t' } });
    let text = '';
    request.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event)));
    });
    request.on('error', reject);
    // About a frame's worth of bytes per write, as an encoder sends them (a coarser pacing would make
    // windows wait for the burst that holds the frame after them).
    const chunk = seconds === 0 ? 64 * 1024 : Math.max(1024, Math.round(bytes.length / (seconds * 25)));
    const started = performance.now();
    let at = 0;
    const next = (): void => {
      while (at < bytes.length) {
        const due = seconds === 0 ? 0 : started + (at / bytes.length) * seconds * 1000;
        const wait = due - performance.now();
        if (wait > 0) return void setTimeout(next, wait);
        const ok = request.write(bytes.subarray(at, at + chunk));
        at += chunk;
        if (!ok) return void request.once('drain', next);
      }
      request.end();
    };
    next();
  });
}

const lagsOf = (events: Event[]): number[] => events.flatMap((e) => (e.event === 'window' && e.lag_s !== undefined ? [e.lag_s] : []));
const endedOf = (events: Event[]): Event | undefined => events.find((e) => e.event === 'ended');

interface Trial {
  streams: number;
  windows: number;
  dropped: number;
  errors: number;
  lag_p50_s: number;
  lag_p99_s: number;
  held: boolean;
  cpu_fraction: number;
  /** Cores each part used on average over the trial: the server's main process, inference worker, stream decoders (their CPU at exit included), and this process (the publishers). */
  cores_used: { main: number; inference: number; decoders: number; publishers: number };
  /** Of the lag: the window's wait for the inference worker and its run (its timings_s.queue + infer). */
  inference_p50_s: number;
  inference_p99_s: number;
}

async function trial(server: ServerHandle, bytes: Buffer, n: number): Promise<Trial> {
  const machine0 = machineCpu();
  const { main, inference } = server.pids();
  const main0 = cpuSecondsOf(main);
  const inference0 = inference.reduce((a, p) => a + cpuSecondsOf(p), 0);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  // Starts spread out, as cameras connect one after another (each start costs its decoder process's
  // start-up); all N run at once for the last CLIP_S − SPREAD_S seconds.
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => sleep((i * SPREAD_S * 1000) / n).then(() => push(server, bytes, CLIP_S, 'policy=drop_oldest'))));
  const wall = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const cores_used = {
    main: (cpuSecondsOf(main) - main0) / wall,
    inference: (inference.reduce((a, p) => a + cpuSecondsOf(p), 0) - inference0) / wall,
    decoders: runs.reduce((a, r) => a + (endedOf(r)?.summary?.decoder_cpu_s ?? 0), 0) / wall,
    publishers: (self.user + self.system) / 1e6 / wall,
  };
  const lags = runs.flatMap(lagsOf);
  const inInference = runs.flatMap((r) => r.flatMap((e) => (e.event === 'window' && e.timings_s ? [e.timings_s.queue + e.timings_s.infer] : [])));
  const dropped = runs.reduce((a, r) => a + (endedOf(r)?.summary?.dropped ?? 0), 0);
  const errors = runs.filter((r) => endedOf(r)?.reason !== 'end_of_stream').length;
  const p99 = lags.length > 0 ? percentile(lags, 99) : Number.POSITIVE_INFINITY;
  const t: Trial = {
    streams: n,
    windows: lags.length,
    dropped,
    errors,
    lag_p50_s: lags.length > 0 ? percentile(lags, 50) : Number.NaN,
    lag_p99_s: p99,
    held: dropped === 0 && errors === 0 && p99 < STRIDE_S,
    cpu_fraction: (busy(machineCpu()) - busy(machine0)) / wall / os.availableParallelism(),
    cores_used,
    inference_p50_s: inInference.length > 0 ? percentile(inInference, 50) : Number.NaN,
    inference_p99_s: inInference.length > 0 ? percentile(inInference, 99) : Number.NaN,
  };
  log(`${n} streams: ${t.windows} windows, ${dropped} dropped, ${errors} not ended cleanly, lag p50 ${t.lag_p50_s.toFixed(3)} s, p99 ${p99.toFixed(3)} s (of which inference p50 ${t.inference_p50_s.toFixed(3)}, p99 ${t.inference_p99_s.toFixed(3)}), CPU ${(t.cpu_fraction * 100).toFixed(0)}% (cores: main ${cores_used.main.toFixed(2)}, inference ${cores_used.inference.toFixed(2)}, decoders ${cores_used.decoders.toFixed(2)}, publishers ${cores_used.publishers.toFixed(2)}): ${t.held ? 'held' : 'not held'}`);
  return t;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const started = new Date().toISOString();
  const cores = os.availableParallelism();
  const bytes = readFileSync(clip(CLIP_S));
  const server = await startServer({ modelDir, threads: 0, concurrency: 2, queueSize: 16, env: { MAX_STREAMS: '256', STREAM_IDLE_TIMEOUT_MS: '30000' } });
  try {
    // Warm-up: the first stream pays for page-ins.
    await push(server, bytes, 0, 'policy=block');
    if (values.trial) {
      console.log(JSON.stringify(await trial(server, bytes, Number(values.trial))));
      return;
    }

    // 1. The limit, from one stream pushed as fast as it is taken.
    const inference = server.pids().inference;
    const main0 = cpuSecondsOf(server.pids().main);
    const infer0 = inference.reduce((a, p) => a + cpuSecondsOf(p), 0);
    const alone = await push(server, bytes, 0, 'policy=block');
    const inferS = inference.reduce((a, p) => a + cpuSecondsOf(p), 0) - infer0;
    const mainS = cpuSecondsOf(server.pids().main) - main0;
    const summary = endedOf(alone)?.summary;
    if (!summary?.decoder_cpu_s || !summary.stream_s) throw new Error(`the lone stream did not end with a summary: ${JSON.stringify(endedOf(alone))}`);
    // The decoder's start-up (Node and libav loading) is paid once per stream: in the limit for
    // streams as long as the clip, and shown apart.
    const perStreamS = { decode: summary.decoder_cpu_s / CLIP_S, decode_startup_s: summary.decoder_startup_cpu_s ?? 0, inference: inferS / CLIP_S, main: mainS / CLIP_S };
    const limit = cores / (perStreamS.decode + perStreamS.inference);
    log(`alone, per stream-second: decode ${perStreamS.decode.toFixed(4)} s, inference ${perStreamS.inference.toFixed(4)} s, main ${perStreamS.main.toFixed(4)} s: limit ${limit.toFixed(1)} streams on ${cores} cores`);

    // 2. Streams per 2 cores.
    const trials: Trial[] = [await trial(server, bytes, 1)];
    let good = 1;
    let bad: number | undefined;
    for (let n = Math.max(2, Math.floor(limit * 0.5)); bad === undefined && n <= limit * 1.5 + 2; n = Math.ceil(n * 1.25)) {
      const t = await trial(server, bytes, n);
      trials.push(t);
      if (t.held) good = n;
      else bad = n;
    }
    for (let round = 0; bad !== undefined && bad - good > 1 && round < (quick ? 1 : 3); round++) {
      const n = Math.floor((good + bad) / 2);
      const t = await trial(server, bytes, n);
      trials.push(t);
      if (t.held) good = n;
      else bad = n;
    }
    const best = trials.filter((t) => t.held).sort((a, b) => b.streams - a.streams)[0];

    // 3a. Memory over streams opened and closed: short streams, four at a time.
    const short = readFileSync(clip(4));
    const rss = (): { main: number; inference: number } => ({ main: rssOf(server.pids().main), inference: server.pids().inference.reduce((a, p) => a + rssOf(p), 0) });
    const churn: Array<{ streams: number; main_mib: number; inference_mib: number }> = [];
    for (let done = 0; done < CHURN; done += 4) {
      await Promise.all(Array.from({ length: 4 }, () => push(server, short, 0, 'policy=block')));
      if ((done + 4) % Math.max(4, Math.floor(CHURN / 10 / 4) * 4) === 0 || done + 4 >= CHURN) {
        const r = rss();
        churn.push({ streams: done + 4, main_mib: r.main / 2 ** 20, inference_mib: r.inference / 2 ** 20 });
      }
    }
    log(`churn: ${churn.map((c) => `${c.streams}: main ${c.main_mib.toFixed(1)} MiB, inference ${c.inference_mib.toFixed(1)} MiB`).join('; ')}`);

    // 3b. One long stream: ffmpeg loops the clip with continuous timestamps, in real time.
    const soak: Array<{ s: number; main_mib: number; inference_mib: number; decoder_mib: number }> = [];
    const soakRun = new Promise<Event[]>((resolve, reject) => {
      const publisher = spawn('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-i', clip(CLIP_S), '-t', String(SOAK_S), '-c', 'copy', '-f', 'mpegts', '-']);
      const request = http.request(`${server.url}/v1/streams?policy=drop_oldest`, { method: 'POST', headers: { 'content-type': 'video/mp2t' } });
      let text = '';
      request.on('response', (res) => res.on('data', (d: Buffer) => (text += d.toString())).on('end', () => resolve(text.trim().split('\n').map((l) => JSON.parse(l) as Event))));
      request.on('error', reject);
      publisher.stdout.pipe(request);
    });
    const soakStart = performance.now();
    while (performance.now() - soakStart < SOAK_S * 1000 - 5000) {
      await sleep(Math.min(30_000, SOAK_S * 100));
      const r = rss();
      const decoder = server.pids().live.reduce((a, p) => a + rssOf(p), 0);
      soak.push({ s: Math.round((performance.now() - soakStart) / 1000), main_mib: r.main / 2 ** 20, inference_mib: r.inference / 2 ** 20, decoder_mib: decoder / 2 ** 20 });
    }
    const soakEvents = await soakRun;
    const soakEnded = endedOf(soakEvents);
    log(`soak: ${soak.map((x) => `${x.s}s main ${x.main_mib.toFixed(1)} decoder ${x.decoder_mib.toFixed(1)} inference ${x.inference_mib.toFixed(1)}`).join('; ')}; ended ${JSON.stringify(soakEnded?.summary ?? soakEnded)}`);

    const churnGrowth = { main: peakGrowth(churn.map((c) => c.main_mib)), inference: peakGrowth(churn.map((c) => c.inference_mib)) };
    const soakGrowth = { main: peakGrowth(soak.map((x) => x.main_mib)), inference: peakGrowth(soak.map((x) => x.inference_mib)), decoder: peakGrowth(soak.map((x) => x.decoder_mib)) };
    const results = {
      started,
      command: `node --import tsx bench/streams.ts${quick ? ' --quick' : ''}`,
      cores,
      model: path.basename(modelDir),
      clip: { seconds: CLIP_S, size: '640x360', fps: 25, codec: 'h264', gop: 50, b_frames: 2, container: 'mpegts' },
      per_stream_second_cpu_s: perStreamS,
      decoded_frames: summary.decoded_frames,
      limit_streams: limit,
      trials,
      most_held: best?.streams ?? 0,
      ratio_to_limit: (best?.streams ?? 0) / limit,
      latency: { one: trials[0], at_most_held: best },
      churn,
      churn_growth: churnGrowth,
      soak: { seconds: SOAK_S, samples: soak, growth: soakGrowth, ended: soakEnded?.summary ?? null },
    };
    writeFileSync(path.join(OUT, 'streams.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(path.join(ROOT, 'bench', 'results-streams.md'), report(results));
    log('wrote bench/results-streams.md');
  } finally {
    await server.stop();
  }
}

function report(r: {
  started: string;
  command: string;
  cores: number;
  model: string;
  per_stream_second_cpu_s: { decode: number; decode_startup_s: number; inference: number; main: number };
  decoded_frames: number | null;
  limit_streams: number;
  trials: Trial[];
  most_held: number;
  ratio_to_limit: number;
  latency: { one: Trial | undefined; at_most_held: Trial | undefined };
  churn: Array<{ streams: number; main_mib: number; inference_mib: number }>;
  churn_growth: { main: number; inference: number };
  soak: { seconds: number; samples: Array<{ s: number; main_mib: number; inference_mib: number; decoder_mib: number }>; growth: { main: number; inference: number; decoder: number } };
}): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const ms = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : `${(x * 1000).toFixed(0)} ms`);
  const c = r.per_stream_second_cpu_s;
  return [
    '# Live streams: streams per core, window latency, memory',
    '',
    `Run ${r.started} (\`${r.command}\`), ${r.cores} cores, model \`${r.model}\`; 25 fps 640×360 H.264 (GOP 50, 2 B-frames) MPEG-TS pushed to \`POST /v1/streams\` in real time, windows of 4 s every 2 s.`,
    '',
    '| figure | value | target |',
    '|---|---|---|',
    `| CPU per stream-second, decoding alone (the stream's decoder process, its start-up spread over the ${CLIP_S} s clip) | ${c.decode.toFixed(4)} s | |`,
    `| of which the decoder process's start-up, once per stream | ${c.decode_startup_s.toFixed(3)} s | |`,
    `| CPU per stream-second, inference alone (inference worker, same windows) | ${c.inference.toFixed(4)} s | |`,
    `| CPU per stream-second, main process (not in the limit) | ${c.main.toFixed(4)} s | |`,
    `| limit: cores ÷ (decoding + inference) | ${r.limit_streams.toFixed(1)} streams | |`,
    `| most streams held (no window dropped, p99 lag < one stride) | ${r.most_held} | |`,
    `| held ÷ limit | ${pct(r.ratio_to_limit)} | ≥ 80% |`,
    `| window latency at 1 stream, p50 / p99 | ${ms(r.latency.one?.lag_p50_s)} / ${ms(r.latency.one?.lag_p99_s)} | |`,
    `| window latency at ${r.most_held} streams, p50 / p99 | ${ms(r.latency.at_most_held?.lag_p50_s)} / ${ms(r.latency.at_most_held?.lag_p99_s)} | p99 < ${STRIDE_S} s |`,
    `| RSS growth over ${r.churn[r.churn.length - 1]?.streams ?? 0} streams opened and closed: main / inference worker | ${pct(r.churn_growth.main)} / ${pct(r.churn_growth.inference)} | ≤ 5% |`,
    `| RSS growth over a ${r.soak.seconds / 60}-minute stream: main / inference worker / the stream's decoder | ${pct(r.soak.growth.main)} / ${pct(r.soak.growth.inference)} / ${pct(r.soak.growth.decoder)} | ≤ 5% |`,
    '',
    '## Trials',
    '',
    '| streams | windows | dropped | not ended cleanly | lag p50 | lag p99 | machine CPU | cores: main / inference / decoders / publishers | held |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.trials.map(
      (t) =>
        `| ${t.streams} | ${t.windows} | ${t.dropped} | ${t.errors} | ${ms(t.lag_p50_s)} | ${ms(t.lag_p99_s)} | ${pct(t.cpu_fraction)} | ${[t.cores_used.main, t.cores_used.inference, t.cores_used.decoders, t.cores_used.publishers].map((x) => x.toFixed(2)).join(' / ')} | ${t.held ? 'yes' : 'no'} |`,
    ),
    '',
    '## Memory',
    '',
    '| streams opened and closed | main MiB | inference worker MiB |',
    '|---|---|---|',
    ...r.churn.map((x) => `| ${x.streams} | ${x.main_mib.toFixed(1)} | ${x.inference_mib.toFixed(1)} |`),
    '',
    '| seconds into the long stream | main MiB | inference worker MiB | stream decoder MiB |',
    '|---|---|---|---|',
    ...r.soak.samples.map((x) => `| ${x.s} | ${x.main_mib.toFixed(1)} | ${x.inference_mib.toFixed(1)} | ${x.decoder_mib.toFixed(1)} |`),
    '',
    `Growth: the peak of the last third of the samples (the first left out as warm-up) over the peak of the first third. The limit takes each part measured on one stream pushed as fast as the service reads it (policy block); the trials push in real time (about one frame of bytes per write) with policy drop_oldest, their starts spread over the first ${SPREAD_S} s of the ${CLIP_S} s clip.`,
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
