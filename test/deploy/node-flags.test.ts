/**
 * The main process gets the service's V8 flags from its command line; the three places that start
 * it must name them all (src/node-flags.ts says why they matter).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { workerEntry } from '../../src/engine/workers/entry.js';
import { missingNodeFlags, NODE_FLAGS, workerNodeFlags } from '../../src/node-flags.js';
import { ROOT } from '../http/helpers.js';

function commandLine(where: string): string[] {
  const text = readFileSync(path.join(ROOT, where), 'utf8');
  if (where === 'Dockerfile') return JSON.parse(/^CMD (\[.*\])$/m.exec(text)![1]!) as string[];
  if (where === 'Makefile') return /^run:.*\n\t(.*)$/m.exec(text)![1]!.split(/\s+/);
  return (JSON.parse(text) as { scripts: Record<string, string> }).scripts.start!.split(/\s+/);
}

describe('the V8 flags of every process', () => {
  it.each(['Dockerfile', 'Makefile', 'package.json'])('%s starts the main process with them, before the script', (where) => {
    const argv = commandLine(where);
    expect(argv[0]).toBe('node');
    const script = argv.findIndex((a) => a.endsWith('server.js'));
    expect(script).toBeGreaterThan(0);
    expect(missingNodeFlags(argv.slice(1, script), undefined)).toEqual([]);
  });

  it('are given to the workers, except those NODE_OPTIONS sets (the command line would override them)', () => {
    const saved = process.env.NODE_OPTIONS;
    try {
      delete process.env.NODE_OPTIONS;
      expect(workerEntry('file:///srv/dist/engine/decode/pool.js', 'worker').execArgv).toEqual([...NODE_FLAGS]);
      process.env.NODE_OPTIONS = '--max_semi_space_size=32 --enable-source-maps';
      expect(workerEntry('file:///srv/dist/engine/decode/pool.js', 'worker').execArgv).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
  });

  it('count as given by name, whatever value the operator chose, from either source', () => {
    expect(missingNodeFlags([], undefined)).toEqual([...NODE_FLAGS]);
    expect(missingNodeFlags(['--max-semi-space-size=64'], undefined)).toEqual([]);
    expect(missingNodeFlags(['--import', 'tsx'], '  --max-semi-space-size=2 ')).toEqual([]);
    expect(missingNodeFlags(['--max-old-space-size=8'], '')).toEqual([...NODE_FLAGS]);
  });

  it("follow the main process's own value when its command line gave one", () => {
    expect(workerNodeFlags(['--max-semi-space-size=16', '--enable-source-maps'], undefined)).toEqual(['--max-semi-space-size=16']);
    expect(workerNodeFlags(['--enable-source-maps'], undefined)).toEqual([...NODE_FLAGS]);
    expect(workerNodeFlags([], '--max-semi-space-size=8')).toEqual([]);
  });
});
