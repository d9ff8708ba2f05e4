/**
 * What the main process's CPU per video could be on this machine, side by side in one run: a bare
 * node:http server doing only the hand-offs the service's main process must do per upload, the
 * service with its engine replaced by a canned answer, and the whole service, each fed one upload of
 * the 4 s 640×360 clip at a time. The bare and canned servers run twice: answering at once (back to
 * back) and after GAP ms (what a video's decoding and inference take), since on some hosts the same
 * code costs far more CPU when the process sleeps between requests (docs/decisions.md, "The main
 * process"). Rounds alternate the variants so that drift moves them alike. Main-process CPU from /proc.
 *
 *   make build && node --import tsx bench/main-floor.ts [--uploads 300] [--rounds 3] [--gap 70]
 *
 * Results: a Markdown table on stdout.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { syntheticClip } from './lib/decode.js';
import { log, ROOT } from './lib/env.js';
import { mainCpuPerUpload, type MainFloorRun } from './lib/main-floor.js';
import { staleBuild } from './lib/service.js';
import { median } from './lib/stats.js';

const { values } = parseArgs({ options: { uploads: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, gap: { type: 'string', default: '70' } } });
// The canned and service variants run dist/ with no TypeScript loader: an old build would measure old code.
const dist = path.join(ROOT, 'dist', 'server.js');
if (!existsSync(dist) || staleBuild(dist)) throw new Error('dist/ is missing or older than src/: `make build` first');
const uploads = Number(values.uploads);
const rounds = Number(values.rounds);
const gap = Number(values.gap);
const clipFile = syntheticClip(process.env.FFMPEG ?? 'ffmpeg', path.join(ROOT, 'bench', 'out', 'clips'), { seconds: 4, width: 640, height: 360, gop: 250 });
const clip = readFileSync(clipFile);

const variants: Array<{ name: string; env: MainFloorRun['env'] }> = [
  { name: 'bare node:http, back to back', env: { MODE: 'bare', GAP_MS: '0' } },
  { name: `bare node:http, ${gap} ms gap`, env: { MODE: 'bare', GAP_MS: String(gap) } },
  { name: 'service, canned answer, back to back', env: { MODE: 'canned', GAP_MS: '0' } },
  { name: `service, canned answer, ${gap} ms gap`, env: { MODE: 'canned', GAP_MS: String(gap) } },
  { name: 'service, real engine', env: { MODE: 'service', GAP_MS: '0' } },
];

const results = new Map<string, number[]>(variants.map((v) => [v.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const v of variants) {
    const ms = await mainCpuPerUpload({ env: v.env, clipFile, clip, uploads, warm: 100 });
    results.get(v.name)?.push(ms);
    log(`round ${round}: ${v.name}: ${ms.toFixed(2)} main-process CPU ms per upload`);
  }
}
console.log(`\n${os.cpus()[0]?.model.trim() ?? 'CPU'}, ${os.availableParallelism()} cores; ${rounds} rounds of ${uploads} uploads per variant, interleaved; clip 4 s 640×360 H.264 (${clip.length} bytes)\n`);
console.log('| server | main-process CPU ms per upload (median) | per round |\n|---|---|---|');
for (const [name, xs] of results) console.log(`| ${name} | **${median(xs).toFixed(2)}** | ${xs.map((x) => x.toFixed(2)).join(', ')} |`);
