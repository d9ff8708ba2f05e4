/**
 * Regenerates docs/demo.png, the README's picture of /demo: a running service (BASE, default
 * http://127.0.0.1:8080; TOKEN if it sets AUTH_TOKEN), Debian's chromium, and one video.
 *
 *   npx tsx scripts/demo-screenshot.ts VIDEO [OUT=docs/demo.png]
 *
 * The committed picture (a held-out clip of `python -m haltingvt synth`) was then reduced to a
 * 256-colour palette (PIL quantize, median cut, no dither) to stay under 150 KB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

// Page-side predicates are functions (the page's CSP refuses strings: they need eval); no DOM types here.
/* eslint-disable @typescript-eslint/no-explicit-any */

const [video, out = 'docs/demo.png'] = process.argv.slice(2);
if (!video) {
  console.error('usage: npx tsx scripts/demo-screenshot.ts VIDEO [OUT]');
  process.exit(2);
}
const base = process.env.BASE ?? 'http://127.0.0.1:8080';
const profile = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 760, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await context.newPage();
  await page.goto(`${base}/demo`);
  await page.waitForFunction(() => String((globalThis as any).document.getElementById('model')?.textContent ?? '').includes('GFLOPs'));
  if (process.env.TOKEN) await page.fill('#token', process.env.TOKEN);
  await page.setInputFiles('#file', video);
  await page.waitForFunction(() => ['done', 'error'].includes((globalThis as any).document.body.dataset.state), undefined, { timeout: 60_000 });
  // The label, the frames with their overlay, the token bars and GFLOPs: what the README shows.
  const top = await page.locator('#results .card').first().boundingBox();
  const tokens = await page.locator('#results .card').nth(3).boundingBox();
  if (!top || !tokens) throw new Error('no result on the page');
  await page.screenshot({ path: out, fullPage: true, clip: { x: top.x, y: top.y, width: top.width, height: tokens.y + tokens.height - top.y } });
  console.log(`wrote ${out}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
