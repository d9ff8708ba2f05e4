/**
 * /live in a real browser: Debian's chromium driven by playwright-core, against the real server
 * process (default model, AUTH_TOKEN, pulling allowed from 127.0.0.1), with a real publisher: a
 * clip whose content changes half way (4 s of testsrc2, then 4 s of rgbtestsrc) served over HTTP
 * on loopback. The page starts the stream from its form and must plot, per window, what the
 * service's own events say, the label change included. Screenshot in test/.artifacts/browser/.
 */
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamEvent } from '../../src/service/stream-events.js';
import { CACHE, ffmpeg } from '../helpers/media.js';
import { ARTIFACTS, launchChromium, startBrowserServer, type BrowserServer } from './harness.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;

const TOKEN = 'live-token-for-the-browser-test';

let server: BrowserServer;
let publisher: http.Server;
let clipUrl: string;
let browser: BrowserContext;
let closeBrowser: (() => Promise<void>) | undefined;

/** 8 s, its content changing at 4 s; keyframes every second, B-frames, as a camera's encoder sends. */
function changingClip(): string {
  const file = path.join(CACHE, 'changes-at-4s.mpegts');
  if (existsSync(file)) return file;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${file}.${process.pid}.mpegts`;
  ffmpeg([
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=4',
    '-f', 'lavfi', '-i', 'rgbtestsrc=size=320x240:rate=25:duration=4',
    '-filter_complex', '[0:v][1:v]concat=n=2:v=1[v]', '-map', '[v]',
    '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-bf', '2', '-pix_fmt', 'yuv420p', '-f', 'mpegts', tmp,
  ]);
  renameSync(tmp, file); // atomic: a parallel run sees the whole file or none
  return file;
}

beforeAll(async () => {
  const clip = readFileSync(changingClip());
  // A file server as any is: byte ranges answered, so that libav can read the end and know the duration.
  publisher = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!range) return void res.writeHead(200, { 'content-type': 'video/mp2t', 'content-length': clip.length, 'accept-ranges': 'bytes' }).end(clip);
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), clip.length - 1) : clip.length - 1;
    if (start >= clip.length) return void res.writeHead(416, { 'content-range': `bytes */${clip.length}` }).end();
    res.writeHead(206, { 'content-type': 'video/mp2t', 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${clip.length}`, 'accept-ranges': 'bytes' }).end(clip.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => publisher.listen(0, '127.0.0.1', resolve));
  clipUrl = `http://127.0.0.1:${(publisher.address() as AddressInfo).port}/changes.ts`;

  ({ browser, close: closeBrowser } = await launchChromium());
  server = await startBrowserServer({ AUTH_TOKEN: TOKEN, PULL_SCHEMES: 'http', PULL_ALLOW: '127.0.0.1/32' });
}, 120_000);

afterAll(async () => {
  await closeBrowser?.();
  server?.child.kill('SIGTERM');
  await server?.exited;
  publisher?.close();
});

describe('/live in chromium', () => {
  it('starts a stream from its form and plots, window by window, what the events say, the label change included', async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1100, height: 1400 });
    const problems: string[] = [];
    // The list is asked for before the token is typed: that 401 is the page working.
    page.on('console', (m) => { if (m.type() === 'error' && !/the server responded with a status of 401/.test(m.text())) problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(`${server.base}/live`);
    await page.fill('#token', TOKEN);
    await page.fill('#url', clipUrl);
    await page.fill('#window_s', '4');
    await page.fill('#stride_s', '4');
    await page.click('button[type=submit]');
    const ended = page.waitForFunction(() => /^ended/.test(document.getElementById('state')?.textContent ?? ''), undefined, { timeout: 90_000 });
    await ended.catch(async (err: unknown) => {
      const seen = await page.evaluate(() => ({ state: document.getElementById('state')?.textContent, error: document.getElementById('error')?.textContent, rows: document.getElementById('streams')?.textContent }));
      throw new Error(`the page never showed the stream's end: ${JSON.stringify(seen)}; problems ${JSON.stringify(problems)}; server log ${server.log().slice(-3000)}`, { cause: err });
    });

    const shown = await page.evaluate(() => ({
      id: document.getElementById('title').textContent as string,
      points: [...document.querySelectorAll('#probability circle')].map((c: any) => ({ t: Number(c.dataset.t), label: c.dataset.label as string, p: Number(c.dataset.value) })),
      tokens: [...document.querySelectorAll('#tokens circle')].map((c: any) => Number(c.dataset.value)),
      gflops: [...document.querySelectorAll('#gflops circle')].map((c: any) => Number(c.dataset.value)),
      changes: [...document.querySelectorAll('#timeline li')].map((li: any) => ({ label: li.dataset.label as string, from: Number(li.dataset.from) })),
      listed: [...document.querySelectorAll('#streams tr')].map((tr: any) => tr.dataset.id as string),
    }));
    await page.screenshot({ path: path.join(ARTIFACTS, 'live.png'), fullPage: true });

    // What the service itself says about that stream.
    const res = await fetch(`${server.base}/v1/streams/${shown.id}/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const events = (await res.text())
      .split('\n\n')
      .filter((b) => b.includes('data: '))
      .map((b) => StreamEvent.parse(JSON.parse((/data: (.*)/.exec(b) as RegExpExecArray)[1] as string)));
    const windows = events.filter((e): e is Extract<StreamEvent, { event: 'window' }> => e.event === 'window');
    expect(windows.map((w) => w.end_s), JSON.stringify(events.filter((e) => e.event !== 'window'))).toEqual([4, 8]);
    // The fixture's premise: its two halves get different labels (else it shows no change).
    expect(windows[0]?.top[0]?.label, 'the two halves of the clip should be classified differently').not.toBe(windows[1]?.top[0]?.label);

    expect(shown.points).toEqual(windows.map((w) => ({ t: w.end_s, label: w.top[0]?.label, p: w.top[0]?.probability })));
    expect(shown.tokens).toEqual(windows.map((w) => w.tokens.total));
    expect(shown.gflops).toEqual(windows.map((w) => w.gflops));
    expect(shown.changes).toEqual([
      { label: windows[0]?.top[0]?.label, from: 4 },
      { label: windows[1]?.top[0]?.label, from: 8 },
    ]);
    expect(shown.listed).toContain(shown.id);
    expect(problems).toEqual([]);
    await page.close();
  }, 150_000);
});
