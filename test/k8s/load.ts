/**
 * The bounded client loop of `make k8s-test`: N workers POST one video to a URL (each request on a
 * connection of its own, so the Service's load balancing sees every request) until a request count,
 * a time limit or a stop file ends it. One JSON line per request goes to --out: when it started and
 * ended (epoch ms), the status (0: no answer), the pod that answered (`x-served-by`) and the error.
 *
 * A connection refused is retried (every 250 ms, for up to 5 s) and counted: nothing reached a
 * server, which is what a well-behaved client does while a Service still routes to a pod whose
 * container just died (until the kubelet sees it and the endpoints drop it).
 *
 *   tsx test/k8s/load.ts --url http://10.43.0.10:8080/v1/classify --video clip.mp4 \
 *     --concurrency 4 --max-requests 400 --max-seconds 120 [--stop-file F] --out requests.jsonl
 */
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

export interface RequestRecord {
  start: number;
  end: number;
  status: number;
  pod?: string;
  error?: string;
  refusedRetries: number;
}

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    video: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
    'max-requests': { type: 'string', default: '200' },
    'max-seconds': { type: 'string', default: '120' },
    'stop-file': { type: 'string' },
    out: { type: 'string' },
  },
});
if (!values.url || !values.video || !values.out) throw new Error('--url, --video and --out are required');
const url = new URL(values.url);
const body = readFileSync(values.video);
const maxRequests = Number(values['max-requests']);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
const out = createWriteStream(values.out);
let started = 0;
const REFUSED_RETRY_MS = 5_000;

function post(): Promise<{ status: number; pod?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'video/mp4', 'content-length': body.length }, timeout: 60_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, pod: res.headers['x-served-by'] as string | undefined }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

async function worker(): Promise<void> {
  while (started < maxRequests && Date.now() < deadline && !(values['stop-file'] && existsSync(values['stop-file']))) {
    started += 1;
    const record: RequestRecord = { start: Date.now(), end: 0, status: 0, refusedRetries: 0 };
    for (;;) {
      try {
        Object.assign(record, await post());
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ECONNREFUSED' && Date.now() - record.start < REFUSED_RETRY_MS) {
          record.refusedRetries += 1;
          await sleep(250);
          continue;
        }
        record.error = code ?? (err as Error).message;
        break;
      }
    }
    record.end = Date.now();
    out.write(`${JSON.stringify(record)}\n`);
  }
}

await Promise.all(Array.from({ length: Number(values.concurrency) }, worker));
await new Promise<void>((resolve) => out.end(resolve));
