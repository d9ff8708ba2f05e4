/**
 * The V8 flags every process of the service runs with. The workers get them through fork's execArgv
 * (engine/workers/entry.ts); the main process through its command line: the Dockerfile's CMD,
 * `make run` and `npm start` name them (test/deploy/node-flags.test.ts holds the three to this list),
 * and server.ts says at start when they are missing.
 *
 * --max-semi-space-size=4: V8's default young generation (16 MB semi-spaces on x64) was larger than
 * the room a small old generation leaves under its limit (23 of 46 MB in the main process), and
 * V8 then starts an incremental mark-compact whenever it can: under load the main process ran a
 * full mark-compact about once a second and no scavenges at all (--trace-gc: 15 mark-compacts, 0
 * scavenges over 400 uploads of a 4 s 360p clip, 4 clients). With 4 MB semi-spaces: no
 * mark-compact, 19 scavenges, and 3.6-3.8 ms of main-process CPU per video instead of 4.9-5.8 (2 and
 * 8 MB measured alike, 2 cores, 2026-12-07). The whole service side by side (bench/ab.ts, 3 rounds):
 * main 6.2 -> 4.8 ms per video at saturation, the workers unchanged (docs/decisions.md).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** The flags of NODE_FLAGS that neither the command line nor NODE_OPTIONS gave this process. */
export function missingNodeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map(flagName));
  return NODE_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/**
 * A worker's flags: the main process's own value of each flag where its command line gave one (an
 * operator's choice reaches the workers), NODE_FLAGS' value where neither it nor NODE_OPTIONS (which
 * the workers inherit, and which a command-line flag would override) did.
 */
export function workerNodeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const ours = new Set(NODE_FLAGS.map(flagName));
  return [...execArgv.filter((arg) => ours.has(flagName(arg))), ...missingNodeFlags(execArgv, nodeOptions)];
}

/** `--max-semi-space-size` of `--max-semi-space-size=4` (and of `--max_semi_space_size=8`, V8's spelling). */
function flagName(arg: string): string {
  const at = arg.indexOf('=');
  return (at < 0 ? arg : arg.slice(0, at)).replaceAll('_', '-');
}
