/**
 * Writes openapi.yaml at the repository root from the zod schemas (src/http/openapi.ts).
 * `npm run openapi`; test/http/openapi.test.ts fails when the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { openApiYaml } from '../src/http/openapi.js';
import { PACKAGE_ROOT } from '../src/paths.js';

const out = path.join(PACKAGE_ROOT, 'openapi.yaml');
writeFileSync(out, openApiYaml());
process.stdout.write(`wrote ${out}\n`);
