/**
 * The dashboard and the alerts shipped in deploy/k8s/base/monitoring/: the dashboard file is the
 * builder's (scripts/monitoring/dashboard.ts), every expression of both names only metrics the
 * service registers and parses (promtool, Debian's `prometheus` package), and the alerts pass their
 * `promtool test rules` cases, which fail when a rule is broken.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { buildDashboard } from '../../scripts/monitoring/dashboard.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { exportedMetricNames } from '../helpers/metrics.js';
import { suiteNeeds } from '../helpers/needs.js';

const MONITORING = path.join(PACKAGE_ROOT, 'deploy', 'k8s', 'base', 'monitoring');
const dashboard = JSON.parse(readFileSync(path.join(MONITORING, 'dashboard.json'), 'utf8')) as ReturnType<typeof buildDashboard>;
const rule = parse(readFileSync(path.join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as { spec: { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string }> }> } };
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'monitoring-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const dashboardExprs = (): string[] =>
  (dashboard.panels as Array<{ targets?: Array<{ expr: string }> }>).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
const alertExprs = (): string[] => rule.spec.groups.flatMap((g) => g.rules.map((r) => r.expr));
/** Grafana's variables as Prometheus sees them once Grafana has filled them in. */
const filledIn = (expr: string): string => expr.replaceAll('$__rate_interval', '2m').replaceAll('$namespace', '.*').replaceAll('$pod', '.*');

/** `promtool` over a rule file written here; its exit status and output. */
function promtoolOn(args: string[], files: Record<string, string>): { ok: boolean; output: string } {
  const dir = mkdtempSync(path.join(scratch, 'run-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const run = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}
const alertTests = readFileSync(path.join(MONITORING, 'alerts.test.yaml'), 'utf8');
const rulesFile = (spec = rule.spec): string => stringify(spec);

describe('dashboard and alerts', () => {
  it('ships the dashboard the builder makes (run `npm run dashboard` after changing it)', () => {
    expect(dashboard).toEqual(buildDashboard());
  });

  it('names only metrics the service exports, in every dashboard query and alert', async () => {
    const exported = new Set(await exportedMetricNames());
    const used = new Set([...dashboardExprs(), ...alertExprs()].flatMap((e) => e.match(/\bhaltingvt_\w+/g) ?? []).map((m) => m.replace(/_(bucket|sum|count)$/, '')));
    expect(used.size).toBeGreaterThan(15);
    expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  });

  describe.runIf(suiteNeeds({ 'promtool (apt-get install prometheus)': promtool }))('with promtool', () => {
    it('parses every dashboard query and alert expression', () => {
      const groups = [
        { name: 'dashboard', rules: dashboardExprs().map((expr, i) => ({ record: `dashboard:query:${i}`, expr: filledIn(expr) })) },
        ...rule.spec.groups,
      ];
      const run = promtoolOn(['check', 'rules', 'rules.yaml'], { 'rules.yaml': stringify({ groups }) });
      expect(run.ok, run.output).toBe(true);
      expect(run.output).toMatch(new RegExp(`SUCCESS: ${dashboardExprs().length + alertExprs().length} rules found`));
    });

    it('passes the alerts\' unit tests (each fires on its series, stays silent on healthy ones)', () => {
      const run = promtoolOn(['test', 'rules', 'alerts.test.yaml'], { 'rules.yaml': rulesFile(), 'alerts.test.yaml': alertTests });
      expect(run.ok, run.output).toBe(true);
    });

    it('fails those tests when an alert is broken (a threshold or a label lost)', () => {
      const broken = structuredClone(rule.spec);
      const rules = broken.groups[0]!.rules;
      const errors = rules.find((r) => r.alert === 'HaltingvtErrorRatioHigh')!;
      errors.expr = errors.expr.replace('> 0.05', '> 0.5');
      const lag = rules.find((r) => r.alert === 'HaltingvtStreamLagging')!;
      lag.expr = lag.expr.replace('sum by (namespace, pod, le)', 'sum by (namespace, le)');
      const run = promtoolOn(['test', 'rules', 'alerts.test.yaml'], { 'rules.yaml': rulesFile(broken), 'alerts.test.yaml': alertTests });
      expect(run.ok).toBe(false);
      expect(run.output).toMatch(/HaltingvtErrorRatioHigh/);
      expect(run.output).toMatch(/HaltingvtStreamLagging/);
    });
  });
});
