/**
 * The only place that starts a process (the architecture test holds it to that): a worker of a pool,
 * or a live stream's worker, which also reads the stream's bytes on its stdin.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { WorkerEntry } from './pool.js';

export type { ChildProcess } from 'node:child_process';

export function forkWorker(entry: WorkerEntry, options: { stdin: boolean; env?: Record<string, string> | undefined }): ChildProcess {
  return fork(entry.file, [], {
    execArgv: entry.execArgv,
    serialization: 'advanced',
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'ipc'],
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
  });
}
