/**
 * Writes deploy/k8s/base/monitoring/dashboard.json from scripts/monitoring/dashboard.ts.
 * `npm run dashboard`; test/deploy/monitoring.test.ts fails when the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { buildDashboard } from './monitoring/dashboard.js';

const out = path.join(PACKAGE_ROOT, 'deploy', 'k8s', 'base', 'monitoring', 'dashboard.json');
writeFileSync(out, `${JSON.stringify(buildDashboard(), null, 2)}\n`);
process.stdout.write(`wrote ${out}\n`);
