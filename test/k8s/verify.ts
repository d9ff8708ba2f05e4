/**
 * The verdicts of `make k8s-test` on what test/k8s/load.ts recorded. Each prints one JSON line
 * (the figures the test reports) and exits 1 when the property does not hold.
 *
 *   tsx test/k8s/verify.ts summary  requests.jsonl
 *   tsx test/k8s/verify.ts no-fail  requests.jsonl ready.log   every request answered 200, each by a
 *                                                              pod that had turned Ready before it
 *   tsx test/k8s/verify.ts kill     requests.jsonl KILLED_AT_MS DIED_AT_MS KILLED_POD
 *                                                              failures only among requests in flight
 *                                                              while the container died (from the
 *                                                              signal to its last process's exit);
 *                                                              the other pod kept answering
 *
 * ready.log has a line per watch event of the pods: `<epoch ms> <pod> <Ready status>`.
 */
import { readFileSync } from 'node:fs';
import type { RequestRecord } from './load.js';

const [verdict, file, ...rest] = process.argv.slice(2);
if (!verdict || !file) throw new Error('usage: verify.ts summary|no-fail|kill requests.jsonl …');
const records = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as RequestRecord);
const failed = records.filter((r) => r.status !== 200);
const byPod: Record<string, number> = {};
for (const r of records) if (r.status === 200) byPod[r.pod ?? '?'] = (byPod[r.pod ?? '?'] ?? 0) + 1;
const summary = {
  requests: records.length,
  ok: records.length - failed.length,
  failed: failed.length,
  refused_and_retried: records.reduce((n, r) => n + r.refusedRetries, 0),
  by_pod: byPod,
  failures: failed.slice(0, 5).map((r) => ({ status: r.status, error: r.error, start: r.start, end: r.end })),
};
const problems: string[] = [];

if (records.length === 0) problems.push('no request was sent');
if (verdict === 'no-fail') {
  if (failed.length > 0) problems.push(`${failed.length} requests failed`);
  const readyAt = firstReady(readFileSync(rest[0] ?? '', 'utf8'));
  for (const r of records) {
    if (r.status !== 200) continue;
    const at = r.pod === undefined ? undefined : readyAt.get(r.pod);
    // A second of slack: the watch sees a pod turn Ready about when the endpoints learn it.
    if (at === undefined || at > r.end + 1000) problems.push(`a request ending at ${r.end} was answered by ${r.pod ?? 'an unnamed pod'}, not Ready before then`);
  }
} else if (verdict === 'kill') {
  const killedAt = Number(rest[0]);
  const diedAt = Number(rest[1]);
  const killed = rest[2] ?? '';
  const overlaps = (r: RequestRecord) => r.start <= diedAt && r.end >= killedAt;
  const inFlight = records.filter(overlaps).length;
  const outside = failed.filter((r) => !overlaps(r));
  if (outside.length > 0) problems.push(`${outside.length} failed requests were not in flight while the container died`);
  if (failed.length > inFlight) problems.push(`${failed.length} failures, more than the ${inFlight} requests in flight`);
  const servedAfter = records.filter((r) => r.status === 200 && r.start > killedAt && r.pod !== killed).length;
  if (servedAfter === 0) problems.push('no other pod answered after the kill');
  Object.assign(summary, { in_flight_while_dying: inFlight, died_in_ms: diedAt - killedAt, answered_by_others_after_kill: servedAfter });
} else if (verdict !== 'summary') {
  throw new Error(`unknown verdict ${verdict}`);
}

process.stdout.write(`${JSON.stringify({ verdict, ...summary, problems: problems.slice(0, 5) })}\n`);
process.exit(problems.length === 0 ? 0 : 1);

/** When each pod was first seen Ready, from the watch log. */
function firstReady(log: string): Map<string, number> {
  const at = new Map<string, number>();
  for (const line of log.split('\n')) {
    const [ms, pod, ready] = line.trim().split(/\s+/);
    if (ms && pod && ready === 'True' && !at.has(pod)) at.set(pod, Number(ms));
  }
  return at;
}
