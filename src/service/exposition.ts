/**
 * The metrics exposition in the format the scraper asks for. The registry writes OpenMetrics 1.0
 * (the format exemplars need); Prometheus asks for it in its Accept header. Everyone else (curl, an
 * old scraper, `promtool check metrics`) gets the classic text format 0.0.4, made from the same
 * text: exemplars and `# EOF` dropped, and counters' families named with their `_total`, which
 * OpenMetrics leaves out of a counter's HELP and TYPE lines.
 */
import type { MetricsRegistry } from './metrics.js';

export const OPENMETRICS_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
export const TEXT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Whether an Accept header asks for OpenMetrics (any version; q=0 is a refusal). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    return type === 'application/openmetrics-text' && !params.some((p) => /^q=0(\.0*)?$/.test(p));
  });
}

export async function exposition(registry: MetricsRegistry, accept: string | undefined): Promise<{ contentType: string; body: string }> {
  const openMetrics = await registry.metrics();
  return wantsOpenMetrics(accept) ? { contentType: OPENMETRICS_TYPE, body: openMetrics } : { contentType: TEXT_TYPE, body: toPrometheusText(openMetrics) };
}

/** OpenMetrics text (as prom-client writes it) as the Prometheus text format. */
export function toPrometheusText(openMetrics: string): string {
  const out: string[] = [];
  let help: { name: string; line: string } | undefined;
  for (const line of openMetrics.split('\n')) {
    if (line === '' || line === '# EOF') continue;
    if (line.startsWith('# HELP ')) {
      // Held until its TYPE line says whether the family is a counter.
      help = { name: line.slice(7, line.indexOf(' ', 7)), line };
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name = '', type] = line.slice(7).split(' ');
      const family = type === 'counter' && !name.endsWith('_total') ? `${name}_total` : name;
      if (help) out.push(help.name === name ? `# HELP ${family}${help.line.slice(7 + name.length)}` : help.line);
      help = undefined;
      out.push(`# TYPE ${family} ${type === 'unknown' ? 'untyped' : type}`);
      continue;
    }
    if (help) out.push(help.line);
    help = undefined;
    out.push(line.startsWith('#') ? line : withoutExemplar(line));
  }
  return `${out.join('\n')}\n`;
}

/** A sample line without its ` # {…} value timestamp` exemplar; label values may hold any text, so the labels are skipped quote-aware. */
function withoutExemplar(line: string): string {
  let i = line.indexOf('{');
  const space = line.indexOf(' ');
  if (i >= 0 && (space < 0 || i < space)) {
    // Inside the label set: skip quoted values (with their escapes) up to the closing brace.
    let quoted = false;
    for (i += 1; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '\\') i++;
        else if (c === '"') quoted = false;
      } else if (c === '"') quoted = true;
      else if (c === '}') break;
    }
  } else i = Math.max(space, 0);
  const mark = line.indexOf(' # ', i);
  return mark < 0 ? line : line.slice(0, mark);
}
