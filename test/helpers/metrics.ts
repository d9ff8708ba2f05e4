import { exposition } from '../../src/service/exposition.js';
import { createMetrics, createRegistry, type MetricsRegistry } from '../../src/service/metrics.js';

/** The names of every metric the service registers (without Node's default ones). */
export async function exportedMetricNames(): Promise<string[]> {
  const registry = createRegistry({ defaultMetrics: false });
  createMetrics(registry);
  return (await registry.getMetricsAsJSON()).map((m) => m.name);
}

/**
 * One metric family as /metrics shows it to a plain client (the text format), HELP and TYPE lines
 * included. Read through the exposition, not prom-client's getSingleMetricAsString: on an
 * OpenMetrics registry that names a counter's samples `_total_total` until the first scrape.
 */
export async function familyText(registry: MetricsRegistry, name: string): Promise<string> {
  const { body } = await exposition(registry, undefined);
  return body
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `) || line.startsWith(`# HELP ${name} `) || line.startsWith(`# TYPE ${name} `))
    .join('\n');
}
