import { createMetrics, createRegistry } from '../../src/service/metrics.js';

/** The names of every metric the service registers (without Node's default ones). */
export async function exportedMetricNames(): Promise<string[]> {
  const registry = createRegistry({ defaultMetrics: false });
  createMetrics(registry);
  return (await registry.getMetricsAsJSON()).map((m) => m.name);
}
