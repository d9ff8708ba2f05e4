/**
 * One server build against another on the same machine in one run: videos/s at saturation and the
 * CPU each process spends per video, one video at a time and under load. Runs alternate between the
 * variants round by round, so that a machine that slows down or speeds up meanwhile moves them alike.
 *
 *   node --import tsx bench/ab.ts --base DIR [--base-env VAR=value,...] [--seconds 20] [--rounds 2] [--clients 6]
 *   node --import tsx bench/ab.ts --variant 'one thread:INTRA_OP_THREADS=1' --variant 'two:INTRA_OP_THREADS=2'
 *   node --import tsx bench/ab.ts --jaeger --variant 'tracing off:' --variant 'tracing on:OTEL_EXPORTER_OTLP_ENDPOINT=$JAEGER' [--base DIR]
 *
 * DIR is another checkout with its dist/ built (`git worktree add DIR REV && (cd DIR && npx tsc)`,
 * node_modules linked in). With --base the variants are that build ("base"), this tree with ORT's
 * threads spinning (INTRA_OP_SPINNING=true), and this tree as configured by default; with --variant
 * (repeatable, `label:VAR=value,VAR=value`) they are this tree under each environment; with both,
 * the base build and then the variants. --jaeger starts Jaeger v2 on loopback (scripts/monitoring/
 * stack.ts) and puts its OTLP endpoint wherever a variant's value says $JAEGER: its own CPU is not
 * counted in the service's, but it shares the machine with it under load. The clip is a
 * 4 s 640×360 H.264 testsrc2 clip, generated on demand into bench/out/clips. Results: a Markdown
 * table on stdout and bench/out/ab.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { syntheticClip } from './lib/decode.js';
import { log, ROOT, sleep } from './lib/env.js';
import { cpuSecondsOf, load, startServer, type ServerHandle } from './lib/service.js';
import { startJaeger, stopAll } from '../scripts/monitoring/stack.js';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    'base-env': { type: 'string' },
    variant: { type: 'string', multiple: true },
    seconds: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
    clients: { type: 'string', default: '6' },
    model: { type: 'string', default: path.join(ROOT, 'models', 'default') },
    jaeger: { type: 'boolean', default: false },
  },
});
if (!values.base && !values.variant?.length) throw new Error('--base DIR (a checkout of the build to compare against, with dist/ built) or --variant LABEL:VAR=value,...');

const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const clients = Number(values.clients);
const OUT = path.join(ROOT, 'bench', 'out');
mkdirSync(OUT, { recursive: true });
const ffmpeg = process.env.FFMPEG ?? 'ffmpeg';
const clip = readFileSync(syntheticClip(ffmpeg, path.join(OUT, 'clips'), { seconds: 4, width: 640, height: 360, gop: 250 }));

interface Variant {
  name: string;
  root?: string;
  env: Record<string, string>;
}
/** `label:VAR=value,VAR=value` → a variant of this tree under that environment. */
function parseVariant(text: string): Variant {
  const at = text.indexOf(':');
  const pairs = (at < 0 ? '' : text.slice(at + 1)).split(',').filter(Boolean);
  // A value may hold '=' itself (NODE_OPTIONS=--max-semi-space-size=8): split at the first.
  return { name: at < 0 ? text : text.slice(0, at), env: Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)])) };
}
// --base-env 'VAR=value,...': the base's environment, e.g. NODE_OPTIONS=--max-semi-space-size=16 (V8's
// default on x64) for a build from before src/node-flags.ts, which every server here is otherwise started with.
const base: Variant[] = values.base ? [{ name: 'base', root: path.resolve(values.base), env: parseVariant(`base:${values['base-env'] ?? ''}`).env }] : [];
const variants: Variant[] = values.variant?.length
  ? [...base, ...values.variant.map(parseVariant)]
  : [...base, { name: 'this tree, threads spinning', env: { INTRA_OP_SPINNING: 'true' } }, { name: 'this tree, defaults', env: {} }];
if (values.jaeger) {
  const jaeger = await startJaeger(execFileSync(path.join(ROOT, 'scripts', 'monitoring', 'build-jaeger.sh'), { encoding: 'utf8' }).trim());
  process.on('exit', stopAll);
  for (const v of variants) for (const [k, value] of Object.entries(v.env)) v.env[k] = value.replaceAll('$JAEGER', jaeger.otlpHttp);
}

interface Measure {
  videos: number;
  seconds: number;
  /** Median time from sending a video to its answer, ms. */
  p50Ms: number;
  /** CPU seconds per answered video, by process. */
  cpu: { main: number; inference: number; decode: number };
}

/** CPU seconds of the server's processes now. */
function cpuNow(server: ServerHandle): { main: number; inference: number; decode: number } {
  const { main, inference, decode } = server.pids();
  const sum = (pids: number[]): number => pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
  return { main: cpuSecondsOf(main), inference: sum(inference), decode: sum(decode) };
}

async function measure(server: ServerHandle, concurrency: number, forS: number): Promise<Measure> {
  await load(server, [clip], concurrency, 3); // warm-up
  const before = cpuNow(server);
  const { samples, elapsedS } = await load(server, [clip], concurrency, forS);
  const after = cpuNow(server);
  const ok = samples.filter((s) => s.status === 200);
  const videos = ok.length;
  const per = (k: keyof Measure['cpu']): number => (after[k] - before[k]) / Math.max(1, videos);
  const sorted = ok.map((s) => s.ms).sort((a, b) => a - b);
  return { videos, seconds: elapsedS, p50Ms: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN, cpu: { main: per('main'), inference: per('inference'), decode: per('decode') } };
}

const results: Record<string, { one: Measure[]; loaded: Measure[] }> = Object.fromEntries(variants.map((v) => [v.name, { one: [], loaded: [] }]));
for (let round = 1; round <= rounds; round++) {
  for (const v of variants) {
    log(`round ${round}: ${v.name}`);
    const threads = Number(v.env.INTRA_OP_THREADS ?? 0);
    const server = await startServer({ modelDir: path.resolve(values.model as string), threads, concurrency: 2, queueSize: 16, env: v.env, root: v.root });
    try {
      results[v.name]?.one.push(await measure(server, 1, seconds));
      results[v.name]?.loaded.push(await measure(server, clients, seconds));
    } finally {
      await server.stop();
      await sleep(1000);
    }
  }
}

const ms = (s: number): string => (s * 1000).toFixed(1);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const lines = [
  `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores; ${rounds} rounds of ${seconds} s per variant and load, interleaved; clip 4 s 640×360 H.264; CONCURRENCY 2, INTRA_OP_THREADS 0 unless a variant says`,
  '',
  '| variant | one at a time: main / inference / decode / total CPU ms per video | one at a time: p50 ms per video | at saturation (' + clients + ' clients): videos/s | CPU ms per video there (main / inference / decode) |',
  '|---|---|---|---|---|',
];
for (const v of variants) {
  const r = results[v.name] as { one: Measure[]; loaded: Measure[] };
  const avg = (list: Measure[], k: keyof Measure['cpu']): number => mean(list.map((m) => m.cpu[k]));
  const total = (list: Measure[]): number => avg(list, 'main') + avg(list, 'inference') + avg(list, 'decode');
  const rate = r.loaded.map((m) => m.videos / m.seconds);
  lines.push(
    `| ${v.name} | ${ms(avg(r.one, 'main'))} / ${ms(avg(r.one, 'inference'))} / ${ms(avg(r.one, 'decode'))} / **${ms(total(r.one))}** | ${mean(r.one.map((m) => m.p50Ms)).toFixed(1)} | **${mean(rate).toFixed(2)}** (${rate.map((x) => x.toFixed(2)).join(', ')}) | ${ms(avg(r.loaded, 'main'))} / ${ms(avg(r.loaded, 'inference'))} / ${ms(avg(r.loaded, 'decode'))} |`,
  );
}
writeFileSync(path.join(OUT, 'ab.json'), JSON.stringify({ when: new Date().toISOString(), seconds, rounds, clients, results }, null, 2));
process.stdout.write(`${lines.join('\n')}\n`);
