#!/usr/bin/env node
// The CLI, compiled by `npm run build` into dist/.
import '../dist/cli.js';
