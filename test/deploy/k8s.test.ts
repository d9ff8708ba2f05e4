/**
 * The Kubernetes manifests, rendered with kustomize and validated offline against the Kubernetes
 * schemas (PyPI kubernetes-validate, strict: unknown fields fail), then held to the service's own
 * contract: env names and values pass the config schema, probes hit documented routes, ports,
 * grace periods, upload volume and the autoscaling metric agree with the code.
 * Needs KUSTOMIZE and HALTINGVT_PYTHON (with kubernetes-validate), both set by `make test`; under
 * `make test` their absence fails rather than skips (helpers/needs.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { EnvSchema, loadConfig } from '../../src/config.js';
import { exportedMetricNames } from '../helpers/metrics.js';
import { suiteNeeds } from '../helpers/needs.js';
import { ROOT } from '../helpers/paths.js';

const KUSTOMIZE = process.env.KUSTOMIZE;
const PYTHON = process.env.HALTINGVT_PYTHON;
const DEPLOY = path.join(ROOT, 'deploy', 'k8s');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'haltingvt-k8s-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec: any };

function render(kustomization: string): { text: string; docs: Doc[] } {
  const text = execFileSync(KUSTOMIZE!, ['build', path.join(DEPLOY, kustomization)], { encoding: 'utf8' });
  return { text, docs: parseAllDocuments(text).map((d) => d.toJS() as Doc) };
}

/** kubernetes-validate on one file: its exit status and what it said. */
function validate(text: string): { ok: boolean; output: string } {
  const file = path.join(scratch, `manifest-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  const run = spawnSync(PYTHON!, ['-m', 'kubernetes_validate', '--strict', '--no-warn', file], { encoding: 'utf8' });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}

const only = <T extends Doc>(docs: Doc[], kind: string): T => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return found[0] as T;
};
const BUILT_IN = /^(v1|apps\/v1|policy\/v1|autoscaling\/v2)$/;
const quantityBytes = (q: string): number => {
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  const m = /^(\d+)(Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) throw new Error(`unsupported quantity ${q}`);
  return Number(m[1]) * (m[2] ? units[m[2]]! : 1);
};
const quantityCores = (q: string | number): number => {
  const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(String(q));
  if (!m) throw new Error(`unsupported CPU quantity ${q}`);
  return Number(m[1]) / (m[2] ? 1000 : 1);
};
/** Kubernetes sets: `valueFrom` values stand in for what the cluster fills in, then `$(NAME)` references are expanded. */
const FILLED_IN: Record<string, string> = { 'status.podIP': '10.42.0.17', 'haltingvt-stream-routing/key': 'k'.repeat(64) };
type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } };
function podEnv(vars: EnvVar[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of vars) {
    const from = v.valueFrom?.fieldRef?.fieldPath ?? (v.valueFrom?.secretKeyRef && `${v.valueFrom.secretKeyRef.name}/${v.valueFrom.secretKeyRef.key}`);
    const value = from === undefined ? v.value : FILLED_IN[from];
    if (value === undefined) throw new Error(`env ${v.name}: no value and nothing this test fills in for ${from}`);
    env[v.name] = value.replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? `$(${name})`);
  }
  return env;
}
/** Variables only there to be referenced by another's `$(NAME)`, which the service never reads. */
const referenced = (vars: EnvVar[]): string[] => vars.map((v) => v.name).filter((name) => vars.some((o) => o.value?.includes(`$(${name})`)));
/** A rendered kustomization and the parts the checks read. */
function inspect(kustomization: string) {
  const { text, docs } = render(kustomization);
  const deployment = only(docs, 'Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const env = podEnv(container.env);
  return { text, docs, deployment, pod, container, env, config: loadConfig(env) };
}

const openApiPaths = Object.keys((parse(readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8')) as { paths: object }).paths);

const canRun = suiteNeeds({
  'KUSTOMIZE (the kustomize binary, from scripts/k8s/kustomize.sh)': KUSTOMIZE,
  'HALTINGVT_PYTHON (a Python with kubernetes-validate, from make python-test-deps)': PYTHON,
});

describe.runIf(canRun)('Kubernetes manifests', () => {
  it('fail validation when a field is wrong (the validator can fail)', () => {
    const { text } = render('base');
    const broken = text.replace('terminationGracePeriodSeconds: 35', 'terminationGracePeriodSeconds: "soon"');
    expect(broken).not.toBe(text);
    expect(validate(broken).ok).toBe(false);
    expect(validate(text.replace('readOnlyRootFilesystem: true', 'readOnlyRootFileSystem: true')).ok).toBe(false);
  });

  for (const kustomization of ['base', 'overlays/gpu']) {
    describe(kustomization, () => {
      let rendered: ReturnType<typeof inspect> | undefined;
      const get = () => (rendered ??= inspect(kustomization));

      it('renders the built-in resources valid against the Kubernetes 1.37 schemas', () => {
        const { text, docs } = get();
        expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule', 'Service']);
        const builtIn = docs.filter((d) => BUILT_IN.test(d.apiVersion));
        expect(builtIn).toHaveLength(6);
        const result = validate(text);
        expect(result.ok, result.output).toBe(true);
        expect(result.output.match(/passed for resource/g)).toHaveLength(6);
      });

      it('sets only variables the config schema knows, with values it accepts', () => {
        const { container, env, config } = get();
        const inputs = referenced(container.env);
        const unknown = Object.keys(env).filter((name) => !(name in EnvSchema.shape) && !inputs.includes(name));
        expect(unknown).toEqual([]);
        // With the routing Secret in place, pulled streams answer through any replica, at this pod's address.
        expect(config.service.streams.routing?.selfUrl).toBe(`http://${FILLED_IN['status.podIP']}:${config.port}`);
        const port = (name: string) => container.ports.find((p: { name: string }) => p.name === name)?.containerPort;
        expect(config.port).toBe(port('http'));
        expect(config.grpcPort).toBe(port('grpc'));
        expect(config.service.uploadDir).toBe(container.volumeMounts.find((m: { name: string }) => m.name === 'uploads').mountPath);
      });

      it('probes documented routes on the named port the Service and PodMonitor use', () => {
        const { docs, deployment, container } = get();
        const portName = container.ports[0].name;
        for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
          expect(openApiPaths).toContain(container[probe].httpGet.path);
          expect(container[probe].httpGet.port).toBe(portName);
        }
        expect(container.readinessProbe.httpGet.path).toBe('/readyz');
        expect(only(docs, 'Service').spec.ports.map((p: { targetPort: string }) => p.targetPort).sort()).toEqual(container.ports.map((p: { name: string }) => p.name).sort());
        const endpoint = only(docs, 'PodMonitor').spec.podMetricsEndpoints[0];
        expect(endpoint).toMatchObject({ port: portName, path: '/metrics' });
        expect(only(docs, 'PodMonitor').spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
        expect(only(docs, 'PodDisruptionBudget').spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
      });

      it('gives shutdown the time preStop, SHUTDOWN_DELAY_MS and SHUTDOWN_GRACE_MS need', () => {
        const { pod, container, config } = get();
        const [cmd, seconds] = container.lifecycle.preStop.exec.command as [string, string];
        expect(cmd).toBe('sleep');
        const needed = Number(seconds) + (config.shutdown.delayMs + config.shutdown.graceMs) / 1000;
        expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(needed + 5);
      });

      it('runs as the image user, non-root, on a read-only root with /tmp sized for every upload it admits', () => {
        const { pod, container, config } = get();
        const dockerUser = /^USER (\d+):(\d+)$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
        expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: Number(dockerUser![1]), runAsGroup: Number(dockerUser![2]) });
        expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
        const uploads = pod.volumes.find((v: { name: string }) => v.name === 'uploads');
        const admitted = config.service.maxUploadBytes * (config.service.queueSize + config.service.concurrency);
        expect(quantityBytes(uploads.emptyDir.sizeLimit)).toBeGreaterThanOrEqual(admitted);
        expect(quantityBytes(container.resources.limits['ephemeral-storage'])).toBeGreaterThanOrEqual(quantityBytes(uploads.emptyDir.sizeLimit));
      });

      // What offline validation let through and a real cluster refused (make k8s-test runs it there).
      it('can start from a node-loaded image, schedules two replicas plus a surge pod on small nodes, and lets one pod go', () => {
        const { docs, container, deployment } = get();
        expect(container.imagePullPolicy).toBe('IfNotPresent');
        const hpa = only(docs, 'HorizontalPodAutoscaler');
        const pods = hpa.spec.minReplicas + Number(deployment.spec.strategy.rollingUpdate.maxSurge);
        // The smallest nodes they will meet: 2 cores (about 1.9 allocatable on managed clusters); GPU
        // nodes with 8. A pod fits on one, and a rollout (replicas + surge) on two.
        const allocatable = (kustomization === 'overlays/gpu' ? 8 : 2) * 0.95;
        const request = quantityCores(container.resources.requests.cpu);
        expect(request).toBeLessThanOrEqual(allocatable);
        expect(pods * request).toBeLessThanOrEqual(2 * allocatable);
        const pdb = only(docs, 'PodDisruptionBudget').spec;
        const allowed = pdb.maxUnavailable ?? hpa.spec.minReplicas - pdb.minAvailable;
        expect(allowed).toBeGreaterThanOrEqual(1);
      });

      it('ships the dashboard for Grafana\'s sidecar and the alerts beside the pods', () => {
        const { docs, deployment } = get();
        const dashboard = only(docs, 'ConfigMap') as Doc & { data: Record<string, string> };
        expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1');
        expect(dashboard.data['dashboard.json']).toBe(readFileSync(path.join(DEPLOY, 'base', 'monitoring', 'dashboard.json'), 'utf8'));
        const rules = only(docs, 'PrometheusRule');
        expect(rules.metadata.namespace).toBe(deployment.metadata.namespace);
        expect(rules.spec.groups[0].rules.length).toBeGreaterThanOrEqual(6);
      });

      it('puts the pods in a namespace that enforces the restricted Pod Security Standard', () => {
        const { docs, deployment } = get();
        const namespace = only(docs, 'Namespace');
        expect(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
        expect(deployment.metadata.namespace).toBe(namespace.metadata.name);
      });

      it('autoscales on a queue gauge the service exports', async () => {
        const { docs, deployment } = get();
        const exported = await exportedMetricNames();
        const hpa = only(docs, 'HorizontalPodAutoscaler');
        const custom = hpa.spec.metrics.find((m: { type: string }) => m.type === 'Pods').pods.metric.name;
        expect(exported).toContain(custom);
        expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });
        const adapter = parse(readFileSync(path.join(DEPLOY, 'prometheus-adapter', 'rules.yaml'), 'utf8'));
        expect(adapter.rules.custom.map((r: { name: { as: string } }) => r.name.as)).toContain(custom);
      });

      if (kustomization === 'overlays/gpu') {
        it('asks for one GPU, runs the CUDA image and prefers the CUDA provider', () => {
          const { container, config } = get();
          expect(container.resources.limits['nvidia.com/gpu']).toBe(1);
          expect(container.image).toMatch(/:cuda$/);
          expect(config.engine.executionProviders[0]).toBe('cuda');
        });
      } else {
        it('runs the CPU image with the CPU provider only', () => {
          const { container, config } = get();
          expect(container.resources.limits['nvidia.com/gpu']).toBeUndefined();
          expect(config.engine.executionProviders).toEqual(['cpu']);
        });
      }
    });
  }
});
