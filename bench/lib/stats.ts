/** Small, dependency-free statistics for the benchmark: medians of repetitions, latency percentiles. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100): the smallest value with at least p% of the data at or below it. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

/**
 * Growth of RSS samples: the peak of the last third over the peak of the first, the first sample left
 * out as warm-up (0 with fewer than 4). A garbage collector lets RSS rise and fall in between, and the
 * peak is what a memory limit meets.
 */
export function peakGrowth(samples: readonly number[]): number {
  const rest = samples.slice(1);
  if (rest.length < 3) return 0;
  const third = Math.max(1, Math.floor(rest.length / 3));
  return Math.max(...rest.slice(-third)) / Math.max(...rest.slice(0, third)) - 1;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : sum(xs) / xs.length;
}

export function sum(xs: readonly number[]): number {
  let total = 0;
  for (const x of xs) total += x;
  return total;
}

export interface Summary {
  n: number;
  median: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    median: median(xs),
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    min: xs.length ? Math.min(...xs) : Number.NaN,
    max: xs.length ? Math.max(...xs) : Number.NaN,
    mean: mean(xs),
  };
}

/** Fixed significant digits for tables; NaN and undefined print as "–". */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const abs = Math.abs(x);
  if (abs >= 10 ** digits) return x.toFixed(0);
  return Number(x.toPrecision(digits)).toString();
}

export function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(digits)}%`;
}
