/**
 * Writes openapi.yaml at the repository root from the zod schemas (src/http/openapi.ts).
 * `npm run openapi`; test/http/openapi.test.ts fails when the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApiYaml } from '../src/http/openapi.js';

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'openapi.yaml');
writeFileSync(out, openApiYaml());
process.stdout.write(`wrote ${out}\n`);
