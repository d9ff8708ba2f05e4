/**
 * The main process's CPU per upload for one of bench/lib/main-floor-server.mjs's servers (a bare
 * node:http server doing only the service's hand-offs, the service with a canned engine, or the whole
 * service), fed one upload at a time: target 5g's reference, used by `make bench` and
 * bench/main-floor.ts. The canned and service servers run dist/ (`make build`; bench/main-floor.ts
 * checks it is current), so no TypeScript loader runs in them; the bare one loads nothing of ours.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import path from 'node:path';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { ROOT } from './env.js';
import { cpuSecondsOf, postVideo } from './service.js';

export interface MainFloorRun {
  /** MODE and GAP_MS of main-floor-server.mjs. */
  env: { MODE: 'bare' | 'canned' | 'service'; GAP_MS: string };
  clipFile: string;
  clip: Buffer;
  uploads: number;
  /** Uploads before the CPU is read: JIT, buffers. */
  warm: number;
}

/** Main-process CPU ms per upload, from /proc of the server over `uploads` sequential uploads. */
export async function mainCpuPerUpload(run: MainFloorRun): Promise<number> {
  const server: ChildProcess = fork(path.join(ROOT, 'bench', 'lib', 'main-floor-server.mjs'), [], {
    execArgv: [...NODE_FLAGS],
    env: { ...process.env, MODEL_DIR: path.join(ROOT, 'models', 'default'), CLIP: run.clipFile, ...run.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      server.once('message', resolve);
      server.once('exit', (code) => reject(new Error(`the main-floor server exited (${code})`)));
    });
    const url = new URL(`http://127.0.0.1:${port}/v1/classify`);
    const post = async (): Promise<void> => {
      const { status, text } = await postVideo(url, run.clip, agent);
      if (status !== 200) throw new Error(`main-floor server: HTTP ${status}: ${text}`);
    };
    for (let i = 0; i < run.warm; i++) await post();
    const before = cpuSecondsOf(server.pid as number);
    for (let i = 0; i < run.uploads; i++) await post();
    return ((cpuSecondsOf(server.pid as number) - before) * 1000) / run.uploads;
  } finally {
    agent.destroy();
    server.kill('SIGKILL');
  }
}
