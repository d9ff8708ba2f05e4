import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TINY_MODEL } from './paths.js';

/** A scratch copy of the tiny model folder that a test may damage. */
export function copyTinyModel(): { dir: string; manifest: Record<string, any>; writeManifest: (m: unknown) => void } {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'hvt-model-')), 'tiny');
  cpSync(TINY_MODEL, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, any>;
  return { dir, manifest, writeManifest: (m) => writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m)) };
}
