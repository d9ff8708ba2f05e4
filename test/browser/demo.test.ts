/**
 * /demo in a real browser: Debian's chromium (installed by `make test`'s setup), driven by
 * playwright-core, against the real server process with the default model and AUTH_TOKEN set.
 * Screenshots go to test/.artifacts/browser/ (ignored by git).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClassifyResponse } from '../../src/http/schemas.js';
import { fixture } from '../helpers/media.js';
import { ARTIFACTS, launchChromium, startBrowserServer, type BrowserServer } from './harness.js';

// The page-side callbacks run in chromium; the test program has no DOM types (adding them for the
// whole program would change what fetch and Buffer accept elsewhere), so they are typed loosely here.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
declare const Image: any;

const TOKEN = 'demo-token-for-the-browser-test';
const CLIP = fixture('clip.mp4');

/** The real server for every test of this file. */
let server: BrowserServer;
let browser: BrowserContext;
let closeBrowser: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ browser, close: closeBrowser } = await launchChromium());
  server = await startBrowserServer({ AUTH_TOKEN: TOKEN });
}, 120_000);

afterAll(async () => {
  await closeBrowser?.();
  server?.child.kill('SIGTERM');
  await server?.exited;
});

/** A page on /demo that records console errors and CSP refusals (a page that breaks its own policy fails). */
async function openDemo(viewport: { width: number; height: number }): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  await page.setViewportSize(viewport);
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' && !/the server responded with a status of 4\d\d/.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(`${server.base}/demo`);
  await page.waitForFunction(() => (document.getElementById('model')?.textContent ?? '').includes('GFLOPs'));
  return { page, problems };
}

async function finishedRuns(page: Page): Promise<number> {
  return Number(await page.evaluate(() => document.body.dataset.runs ?? '0'));
}

async function upload(page: Page, file: string | { name: string; mimeType: string; buffer: Buffer }, state: 'done' | 'error'): Promise<void> {
  const counter = state === 'done' ? 'runs' : 'errors';
  const before = Number(await page.evaluate((c: string) => document.body.dataset[c] ?? '0', counter));
  await page.setInputFiles('#file', file);
  await page.waitForFunction(([c, n]) => Number(document.body.dataset[c] ?? '0') > n, [counter, before] as const, { timeout: 60_000 });
  expect(await page.evaluate(() => document.body.dataset.state)).toBe(state);
}

/** The same request the page makes, from here. */
async function classify(fields: Record<string, string>): Promise<ClassifyResponse> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([readFileSync(CLIP)], { type: 'video/mp4' }), 'clip.mp4');
  const res = await fetch(`${server.base}/v1/classify`, { method: 'POST', body: form, headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return ClassifyResponse.parse(await res.json());
}

describe('/demo in chromium', () => {
  it('shows the label, 8 frames with the stop map drawn over them, and re-runs when keep_ratio moves', async () => {
    const { page, problems } = await openDemo({ width: 1100, height: 900 });
    await page.fill('#token', TOKEN);
    await upload(page, CLIP, 'done');

    const knobs = await page.evaluate(() => ({ keep_ratio: document.getElementById('keep_ratio').value, halt_threshold: document.getElementById('halt_threshold').value }));
    expect(knobs).toEqual({ keep_ratio: '0.5', halt_threshold: '0.99' }); // the default model's defaults, as they are
    const expected = await classify({ explain: 'true', top_k: '5', ...knobs });
    expect(await page.textContent('#label')).toBe(expected.top[0]!.label);
    expect(await page.locator('#labels .row').count()).toBe(expected.top.length);

    // Each canvas against its bare thumbnail: the overlay must have changed a good share of the pixels.
    const thumbnails = expected.explain!.thumbnails.data;
    expect(thumbnails).toHaveLength(8);
    const changed = await page.evaluate(async (pngs) => {
      const canvases = Array.from(document.querySelectorAll('#frames canvas')) as any[];
      return Promise.all(
        canvases.map(async (canvas: any, i: number) => {
          const img = new Image();
          img.src = `data:image/png;base64,${pngs[i]}`;
          await img.decode();
          const bare = document.createElement('canvas');
          bare.width = canvas.width;
          bare.height = canvas.height;
          const g = bare.getContext('2d')!;
          g.imageSmoothingEnabled = false;
          g.drawImage(img, 0, 0, bare.width, bare.height);
          const a = g.getImageData(0, 0, bare.width, bare.height).data;
          const b = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
          let differ = 0;
          let lit = 0;
          for (let p = 0; p < a.length; p += 4) {
            if (Math.abs(a[p]! - b[p]!) + Math.abs(a[p + 1]! - b[p + 1]!) + Math.abs(a[p + 2]! - b[p + 2]!) > 24) differ++;
            if (b[p + 3]! > 0) lit++;
          }
          return { differ: differ / (a.length / 4), lit: lit / (a.length / 4) };
        }),
      );
    }, thumbnails);
    expect(changed).toHaveLength(8);
    for (const c of changed) {
      expect(c.lit).toBe(1); // the whole canvas was drawn
      expect(c.differ).toBeGreaterThan(0.2); // and the overlay covers it (dropped patches are dark, the rest tinted)
    }
    expect(await page.locator('#legend span').count()).toBe(expected.explain!.grid.joint_layers + 1);
    expect(await page.locator('#tokens .row').count()).toBeGreaterThanOrEqual(expected.tokens.per_layer.length);
    expect(await page.locator('#timings .row').count()).toBe(5);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-desktop.png'), fullPage: true });

    const gflopsBefore = Number(await page.getAttribute('#gflops', 'data-gflops'));
    expect(gflopsBefore).toBeCloseTo(expected.gflops, 6);
    const runs = await finishedRuns(page);
    await page.focus('#keep_ratio');
    await page.keyboard.press('Home'); // the slider's minimum: the Glimpser keeps the fewest patches
    await page.waitForFunction((n) => Number(document.body.dataset.runs ?? '0') > n, runs, { timeout: 60_000 });
    const gflopsAfter = Number(await page.getAttribute('#gflops', 'data-gflops'));
    expect(gflopsAfter).toBeLessThan(gflopsBefore);
    expect(await page.textContent('#gflops_text')).toContain(gflopsAfter.toFixed(3));

    // Merging: the mode re-runs at once, the ratio when its slider rests; merged tokens get their own bars.
    let before = await finishedRuns(page);
    await page.selectOption('#merge_mode', 'tome');
    await page.waitForFunction((n) => Number(document.body.dataset.runs ?? '0') > n, before, { timeout: 60_000 });
    before = await finishedRuns(page);
    await page.focus('#merge_ratio');
    await page.keyboard.press('End');
    await page.waitForFunction((n) => Number(document.body.dataset.runs ?? '0') > n, before, { timeout: 60_000 });
    const layers = expected.tokens.per_layer.length;
    expect(await page.locator('#tokens .fill.merged').count()).toBe(layers);
    expect(problems).toEqual([]);
    await page.close();
  }, 180_000);

  it('says in words why a file that is not a video, or a missing token, was refused', async () => {
    const { page, problems } = await openDemo({ width: 800, height: 700 });
    await upload(page, CLIP, 'error');
    expect(await page.textContent('#error')).toMatch(/needs a token.*AUTH_TOKEN/);

    await page.fill('#token', TOKEN);
    // (Not a text file: libavformat's tty demuxer renders text as a video, which then classifies.)
    await upload(page, { name: 'notes.pdf', mimeType: 'application/pdf', buffer: readFileSync(fixture('garbage.mp4')) }, 'error');
    let text = await page.textContent('#error');
    expect(text).toMatch(/could not be read as a video.*notes\.pdf.*VIDEO_UNDECODABLE/);
    expect(await page.isVisible('#error')).toBe(true);
    expect(await page.isVisible('#results')).toBe(false);

    await upload(page, fixture('image.png'), 'error');
    text = await page.textContent('#error');
    expect(text).toMatch(/could not be read as a video.*still image.*VIDEO_STILL_IMAGE/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-error.png') });
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);

  it('fits a phone-sized viewport', async () => {
    const { page, problems } = await openDemo({ width: 390, height: 844 });
    await page.fill('#token', TOKEN);
    await upload(page, CLIP, 'done');
    const fit = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, view: window.innerWidth }));
    expect(fit.scroll).toBeLessThanOrEqual(fit.view);
    expect(await page.locator('#frames canvas').count()).toBe(8);
    const first = await page.locator('#frames canvas').first().boundingBox();
    expect(first!.width).toBeGreaterThan(100); // frames stay big enough to see
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-phone.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);
});
