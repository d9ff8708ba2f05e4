import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WorkerEntry } from './pool.js';

/**
 * The worker module next to `moduleUrl` (`basename` without extension): the compiled .js, or the
 * TypeScript source run through tsx's loader when the caller itself runs from source (tests, tsx).
 */
export function workerEntry(moduleUrl: string, basename: string): WorkerEntry {
  if (moduleUrl.endsWith('.ts')) {
    const tsx = createRequire(moduleUrl).resolve('tsx');
    return { file: fileURLToPath(new URL(`./${basename}.ts`, moduleUrl)), execArgv: ['--import', pathToFileURL(tsx).href] };
  }
  return { file: fileURLToPath(new URL(`./${basename}.js`, moduleUrl)), execArgv: [] };
}
