/**
 * Regenerates docs/trace.png and docs/dashboard.png from a short run of the real service: the
 * service (dist/, `make build`; the embedded default model) with tracing on, Jaeger v2 receiving its
 * spans, Prometheus scraping it, and a load of uploads (one in ten a broken file) beside one pushed
 * live stream. Then:
 *
 * - docs/trace.png: one classify request's trace as Jaeger returns it, drawn as a waterfall (the
 *   Jaeger binary built from the Go module proxy carries no UI: its web assets are a separate npm
 *   project that is not published);
 * - docs/dashboard.png: deploy/k8s/base/monitoring/dashboard.json, each panel's queries run against
 *   that Prometheus over the run and drawn where Grafana would put them (Grafana is neither on npm
 *   nor in Debian, so this stands in for it: same JSON, same PromQL, same layout).
 *
 *   npx tsx scripts/monitoring/screenshots.ts [--seconds 90]
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { freePort, startJaeger, startPrometheus, stopAll, until, type Prometheus, type Span } from './stack.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '90' } } });
const seconds = Number(values.seconds);
const work = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-screenshots-'));
const ffmpeg = (args: string[]): void => void execFileSync('ffmpeg', ['-y', '-v', 'error', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });

async function main(): Promise<void> {
  const clip = path.join(work, 'clip.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=4', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', clip]);
  const broken = path.join(work, 'broken.mp4');
  writeFileSync(broken, randomBytes(4096));
  const live = path.join(work, 'live.ts');
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=25:duration=${Math.min(60, seconds)}`, '-c:v', 'libx264', '-g', '25', '-pix_fmt', 'yuv420p', '-f', 'mpegts', live]);

  const jaeger = await startJaeger(execFileSync(path.join(PACKAGE_ROOT, 'scripts', 'monitoring', 'build-jaeger.sh'), { encoding: 'utf8' }).trim());
  const port = await freePort();
  const service = spawn(process.execPath, [...NODE_FLAGS, path.join(PACKAGE_ROOT, 'dist', 'server.js')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', GRPC_PORT: '0', OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpHttp, OTEL_BSP_SCHEDULE_DELAY: '500', LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await until(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 'the service to be ready', 60_000);
    const prometheus = await startPrometheus(`127.0.0.1:${port}`);
    const startS = Date.now() / 1000;

    const post = async (file: string, traceparent?: string): Promise<void> => {
      const form = new FormData();
      form.append('file', new Blob([readFileSync(file)]), path.basename(file));
      await (await fetch(`${base}/v1/classify`, { method: 'POST', body: form, headers: traceparent ? { traceparent } : {} })).arrayBuffer();
    };
    const stream = spawn('sh', ['-c', `ffmpeg -v error -re -i '${live}' -c copy -f mpegts - | curl -sS -N -T - -X POST -H 'content-type: video/mp2t' '${base}/v1/streams?window_s=2' > /dev/null`]);
    const deadline = Date.now() + seconds * 1000;
    const client = async (n: number): Promise<void> => {
      for (let i = n; Date.now() < deadline; i += 2) {
        await post(i % 10 === 9 ? broken : clip);
        await new Promise((r) => setTimeout(r, 150 + 150 * Math.sin(i / 7) ** 2)); // a load that rises and falls
      }
    };
    await Promise.all([client(0), client(1)]);
    stream.kill();
    // The pictured request: on its own, once the load is over.
    const traceId = randomBytes(16).toString('hex');
    await post(clip, `00-${traceId}-${randomBytes(8).toString('hex')}-01`);
    const spans = await jaeger.trace(traceId, 7);
    await new Promise((r) => setTimeout(r, 2000)); // one more scrape
    const endS = Date.now() / 1000;

    await shoot(traceHtml(spans), path.join(PACKAGE_ROOT, 'docs', 'trace.png'), 900);
    await shoot(await dashboardHtml(prometheus, startS, endS), path.join(PACKAGE_ROOT, 'docs', 'dashboard.png'), 1500);
  } finally {
    service.kill('SIGTERM');
    stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

const escape = (s: unknown): string => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
const STYLE = 'body{font:13px system-ui,sans-serif;margin:16px;color:#222;background:#fff} h1{font-size:16px;margin:0 0 10px} .muted{color:#777}';
const COLOURS: Record<string, string> = { main: '#3b7dd8', decode: '#d8833b', inference: '#3bab5a' };

/** The trace as a waterfall: one row per span, indented by depth, a bar for its time, its process and key attributes. */
function traceHtml(spans: Span[]): string {
  const byParent = new Map<string | undefined, Span[]>();
  const ids = new Set(spans.map((s) => s.id));
  for (const s of spans) {
    const parent = s.parent && ids.has(s.parent) ? s.parent : undefined;
    byParent.set(parent, [...(byParent.get(parent) ?? []), s]);
  }
  const start = Math.min(...spans.map((s) => s.start));
  const end = Math.max(...spans.map((s) => s.start + s.duration));
  const rows: string[] = [];
  const walk = (parent: string | undefined, depth: number): void => {
    for (const s of (byParent.get(parent) ?? []).sort((a, b) => a.start - b.start)) {
      const role = String(s.process['haltingvt.process']);
      const left = ((s.start - start) / (end - start)) * 100;
      const width = Math.max(0.3, (s.duration / (end - start)) * 100);
      const facts = Object.entries(s.tags)
        .filter(([k]) => /^haltingvt\.(tokens\.per_layer|gflops|frames\.decoded|batch\.size|video\.(width|height))$|^http\.response\.status_code$/.test(k))
        .map(([k, v]) => `${escape(k.replace('haltingvt.', ''))}=${escape(v)}`)
        .join(' · ');
      rows.push(
        `<tr><td style="padding-left:${8 + depth * 16}px">${escape(s.name)}<div class="muted">${facts}</div></td><td><span style="color:${COLOURS[role] ?? '#555'}">■</span> ${escape(role)} <span class="muted">pid ${escape(s.process['process.pid'])}</span></td>` +
          `<td><div style="position:relative;height:14px"><div style="position:absolute;left:${left}%;width:${width}%;height:14px;background:${COLOURS[role] ?? '#555'}"></div></div></td><td style="text-align:right">${(s.duration / 1000).toFixed(1)} ms</td></tr>`,
      );
      walk(s.id, depth + 1);
    }
  };
  walk(undefined, 0);
  return `<!doctype html><style>${STYLE} table{border-collapse:collapse;width:100%;table-layout:fixed} td{border-bottom:1px solid #eee;padding:5px 8px;vertical-align:top} td:nth-child(1){width:40%} td:nth-child(2){width:16%} td:nth-child(4){width:9%;white-space:nowrap}</style>
<h1>One POST /v1/classify, as Jaeger holds it <span class="muted">trace ${escape(spans[0]?.traceId ?? '')} · ${spans.length} spans · 3 processes · ${((end - start) / 1000).toFixed(1)} ms</span></h1>
<table>${rows.join('')}</table>`;
}

/** Every panel of the committed dashboard, its queries run over the run, drawn at its gridPos. */
async function dashboardHtml(prometheus: Prometheus, startS: number, endS: number): Promise<string> {
  const dashboard = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'deploy', 'k8s', 'base', 'monitoring', 'dashboard.json'), 'utf8')) as {
    panels: Array<{ type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; fieldConfig?: { defaults: { unit: string } }; targets?: Array<{ expr: string; legendFormat: string }> }>;
  };
  const step = Math.max(1, Math.round((endS - startS) / 120));
  const cells: string[] = [];
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos;
    const box = `position:absolute;left:${(x / 24) * 100}%;top:${y * 30}px;width:calc(${(w / 24) * 100}% - 8px);height:${h * 30 - 8}px`;
    if (panel.type === 'row') {
      cells.push(`<div style="${box};font-weight:600;font-size:14px">${escape(panel.title)}</div>`);
      continue;
    }
    const series: Array<{ name: string; points: Array<[number, number]> }> = [];
    for (const target of panel.targets ?? []) {
      // The dashboard's variables as "All" and Grafana's rate interval as 4 scrapes of this run.
      const expr = target.expr.replaceAll('$namespace', '.*').replaceAll('$pod', '.*').replaceAll('$__rate_interval', '4s');
      for (const s of await prometheus.range(expr, startS, endS, step)) {
        const name = target.legendFormat.replace(/\{\{(\w+)\}\}/g, (_, k: string) => s.metric[k] ?? '');
        series.push({ name, points: s.values.map(([t, v]) => [t, Number(v)] as [number, number]).filter(([, v]) => Number.isFinite(v)) });
      }
    }
    cells.push(`<div style="${box};border:1px solid #ddd;border-radius:4px;padding:6px;box-sizing:border-box"><div style="font-weight:600">${escape(panel.title)} <span class="muted">${escape(panel.fieldConfig?.defaults.unit ?? '')}</span></div>${chart(series, startS, endS, h * 30 - 60)}</div>`);
  }
  const height = Math.max(...dashboard.panels.map((p) => (p.gridPos.y + p.gridPos.h) * 30));
  return `<!doctype html><style>${STYLE}</style><h1>haltingvt dashboard <span class="muted">deploy/k8s/base/monitoring/dashboard.json over a ${Math.round(endS - startS)} s run (Prometheus; drawn here in place of Grafana)</span></h1><div style="position:relative;height:${height}px">${cells.join('')}</div>`;
}

const PALETTE = ['#3b7dd8', '#d8833b', '#3bab5a', '#c8463d', '#8e5fc2', '#8c6d31', '#d36fb0', '#6f6f6f'];
function chart(series: Array<{ name: string; points: Array<[number, number]> }>, startS: number, endS: number, height: number): string {
  const width = 460;
  const all = series.flatMap((s) => s.points.map(([, v]) => v));
  if (all.length === 0) return `<div class="muted" style="padding-top:${height / 2 - 10}px;text-align:center">no data in this run</div>`;
  const top = Math.max(...all, 0) * 1.1 || 1;
  const px = (t: number): number => ((t - startS) / (endS - startS)) * width;
  const py = (v: number): number => height - 16 - (v / top) * (height - 20);
  const lines = series.map((s, i) => `<polyline fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.5" points="${s.points.map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(' ')}"/>`);
  const legend = series
    .slice(0, 6)
    .map((s, i) => `<span style="color:${PALETTE[i % PALETTE.length]}">■</span> ${escape(s.name)}`)
    .join(' ');
  return `<svg viewBox="0 0 ${width} ${height - 14}" preserveAspectRatio="none" style="width:100%;height:${height - 14}px"><text x="2" y="10" font-size="10" fill="#777">${top.toPrecision(3)}</text><line x1="0" x2="${width}" y1="${height - 16}" y2="${height - 16}" stroke="#ccc"/>${lines.join('')}</svg><div style="font-size:11px;white-space:nowrap;overflow:hidden">${legend}</div>`;
}

async function shoot(html: string, out: string, width: number): Promise<void> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, viewport: { width, height: 600 }, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    const page = await context.newPage();
    await page.setContent(html);
    await page.screenshot({ path: out, fullPage: true });
    process.stdout.write(`wrote ${out}\n`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

await main();
