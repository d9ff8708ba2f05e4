/**
 * /metrics in either format from one OpenMetrics registry: OpenMetrics (with exemplars) for a
 * scraper that asks, the classic text format for everyone else, which promtool must accept.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { exposition, toPrometheusText, wantsOpenMetrics } from '../../src/service/exposition.js';
import { createMetrics, createRegistry } from '../../src/service/metrics.js';
import { suiteNeeds } from '../helpers/needs.js';

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
const exemplar = { trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331' };

/** A registry with a traced and an untraced request, a label value made to look like an exemplar, and an error counted. */
async function sample(): Promise<ReturnType<typeof createRegistry>> {
  const registry = createRegistry();
  const metrics = createMetrics(registry);
  metrics.observeRequest('http', '/v1/classify', 'POST', 200, 0.12, exemplar);
  metrics.observeRequest('http', '/v1/classify', 'POST', 200, 3);
  metrics.observeRequest('http', '/odd # {x="1"} 2 3', 'GET', 404, 0.001, exemplar);
  metrics.modelReady({ name: 'm "quoted" \\ back', version: '1', executionProvider: 'cpu' });
  return registry;
}

describe('the metrics exposition', () => {
  it.each([
    [undefined, false],
    ['*/*', false],
    ['text/plain;version=0.0.4;q=0.3,*/*;q=0.2', false],
    ['application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', true],
    ['Application/OpenMetrics-Text', true],
    ['application/openmetrics-text;q=0', false],
  ])('Accept %j asks for OpenMetrics: %s', (accept, expected) => {
    expect(wantsOpenMetrics(accept)).toBe(expected);
  });

  it('gives OpenMetrics, exemplars and all, to a scraper that asks', async () => {
    const { contentType, body } = await exposition(await sample(), 'application/openmetrics-text; version=1.0.0');
    expect(contentType).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(body.endsWith('# EOF\n')).toBe(true);
    expect(body).toContain('# TYPE haltingvt_requests counter');
    expect(body).toMatch(/^haltingvt_request_duration_seconds_bucket\{le="0\.25",protocol="http",route="\/v1\/classify",method="POST"\} 1 # \{trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"\} 0\.12 \d+/m);
  });

  it('gives the text format to everyone else: no exemplar, no EOF, counters named with _total', async () => {
    const { contentType, body } = await exposition(await sample(), '*/*');
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(body).not.toContain('# EOF');
    expect(body).not.toContain('trace_id');
    expect(body).toContain('# HELP haltingvt_requests_total Requests answered');
    expect(body).toContain('# TYPE haltingvt_requests_total counter');
    expect(body).toContain('# TYPE process_cpu_seconds_total counter');
    // A label value that looks like an exemplar is the label's, and stays.
    expect(body).toContain('haltingvt_request_duration_seconds_bucket{le="0.005",protocol="http",route="/odd # {x=\\"1\\"} 2 3",method="GET"} 1\n');
    expect(body).toContain('haltingvt_request_duration_seconds_bucket{le="0.25",protocol="http",route="/v1/classify",method="POST"} 1\n');
    expect(body).toContain('model="m \\"quoted\\" \\\\ back"');
  });

  it('converts line by line: HELP and TYPE of a counter renamed, samples and other families as they are', () => {
    const openMetrics = ['# HELP a_b Things done', '# TYPE a_b counter', 'a_b_total{x="1"} 3 # {trace_id="t"} 1 1.5', '# HELP g A gauge', '# TYPE g gauge', 'g 2', '# EOF', ''].join('\n');
    expect(toPrometheusText(openMetrics)).toBe(['# HELP a_b_total Things done', '# TYPE a_b_total counter', 'a_b_total{x="1"} 3', '# HELP g A gauge', '# TYPE g gauge', 'g 2', ''].join('\n'));
  });

  if (suiteNeeds({ "promtool (Debian's prometheus package)": promtool })) {
    it('is promtool clean in the text format, exemplars recorded', async () => {
      const { body } = await exposition(await sample(), undefined);
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
      expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    });
  }
});
