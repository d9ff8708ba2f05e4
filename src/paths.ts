/**
 * Where the package lives and which model it serves when none is named: one answer for the
 * service, the CLI, the gRPC proto and the benchmarks.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: src/ or dist/ sits right under it. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The connect guard pulled streams' decoders load (src/native/connect-guard.c, built by `make build`). */
export const CONNECT_GUARD = path.join(PACKAGE_ROOT, 'dist', 'native', 'connect-guard.so');

/**
 * The embedded default model (models/default) under the first root that has one, else the tiny test
 * fixture (models/fixtures/tiny) under the first root that has it, else models/default under the
 * first root (so that the error names the folder a user expects).
 */
export function defaultModelDir(roots: readonly string[] = [PACKAGE_ROOT], exists: (file: string) => boolean = existsSync): string {
  for (const folder of [path.join('models', 'default'), path.join('models', 'fixtures', 'tiny')]) {
    for (const root of roots) {
      const dir = path.join(root, folder);
      if (exists(path.join(dir, 'manifest.json'))) return dir;
    }
  }
  return path.join(roots[0] ?? PACKAGE_ROOT, 'models', 'default');
}
