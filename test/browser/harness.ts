/**
 * What the browser tests share: the real server process (default model, CPU, its own upload
 * folder, `env` added) waited for until ready, and Debian's chromium driven by playwright-core in a
 * fresh profile. Screenshots go to ARTIFACTS (ignored by git).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { expect } from 'vitest';
import { ROOT } from '../http/helpers.js';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { freePort, status } from '../http/server-process.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'test', '.artifacts', 'browser');

export interface BrowserServer {
  child: ChildProcess;
  base: string;
  exited: Promise<unknown>;
  log: () => string;
}

export async function startBrowserServer(env: Record<string, string>): Promise<BrowserServer> {
  const port = await freePort();
  const uploadDir = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-browser-uploads-'));
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', path.join(ROOT, 'src', 'server.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      GRPC_PORT: '0',
      MODEL_DIR: path.join(ROOT, 'models', 'default'),
      EXECUTION_PROVIDERS: 'cpu',
      INTRA_OP_THREADS: '1',
      UPLOAD_DIR: uploadDir,
      SHUTDOWN_DELAY_MS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise((resolve) => child.on('exit', resolve)).finally(() => rmSync(uploadDir, { recursive: true, force: true }));
  const server = { child, base: `http://127.0.0.1:${port}`, exited, log: () => log };
  for (let i = 0; i < 300 && (await status(`${server.base}/readyz`)) !== 200; i++) await new Promise((r) => setTimeout(r, 200));
  expect(await status(`${server.base}/readyz`), server.log()).toBe(200);
  return server;
}

/** Chromium in a fresh profile; `close()` closes it and removes the profile. */
export async function launchChromium(): Promise<{ browser: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make test\` as root (it installs Debian's chromium), or apt-get install chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-chromium-'));
  // A persistent context is how playwright takes a fresh --user-data-dir (it passes the flag itself).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
