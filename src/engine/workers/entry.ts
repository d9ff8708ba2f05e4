import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { workerNodeFlags } from '../../node-flags.js';
import type { WorkerEntry } from './pool.js';

/**
 * The worker module next to `moduleUrl` (`basename` without extension): the compiled .js, or the
 * TypeScript source run through tsx's loader when the caller itself runs from source (tests, tsx).
 * It runs with the service's V8 flags as the main process has them (node-flags.ts, workerNodeFlags).
 */
export function workerEntry(moduleUrl: string, basename: string): WorkerEntry {
  const flags = workerNodeFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (moduleUrl.endsWith('.ts')) {
    const tsx = createRequire(moduleUrl).resolve('tsx');
    return { file: fileURLToPath(new URL(`./${basename}.ts`, moduleUrl)), execArgv: [...flags, '--import', pathToFileURL(tsx).href] };
  }
  return { file: fileURLToPath(new URL(`./${basename}.js`, moduleUrl)), execArgv: flags };
}
