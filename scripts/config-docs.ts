/**
 * Writes the configuration table into README.md from src/config.ts's schema (src/config-docs.ts).
 * `npm run config-docs`; test/http/config.test.ts fails when the committed README is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withConfigTable } from '../src/config-docs.js';
import { PACKAGE_ROOT } from '../src/paths.js';

const readme = path.join(PACKAGE_ROOT, 'README.md');
writeFileSync(readme, withConfigTable(readFileSync(readme, 'utf8')));
process.stdout.write(`wrote the configuration table in ${readme}\n`);
