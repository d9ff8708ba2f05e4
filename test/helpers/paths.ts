import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';

export const ROOT = PACKAGE_ROOT;
export const TINY_MODEL = path.join(ROOT, 'models', 'fixtures', 'tiny');
export const GOLDEN = path.join(ROOT, 'models', 'golden');
export const hasTinyModel = existsSync(path.join(TINY_MODEL, 'manifest.json'));

export function golden<T>(name: string): T {
  return JSON.parse(readFileSync(path.join(GOLDEN, name), 'utf8')) as T;
}
