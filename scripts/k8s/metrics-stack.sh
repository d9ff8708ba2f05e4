# Sourced by k8s-test.sh: what the HPA reads haltingvt_queue_depth through, on the test cluster.
# Prometheus (Debian's package) runs on the host and scrapes the pods over the bridge, by their
# prometheus.io/* annotations; prometheus-adapter (built from the Go
# module proxy) runs on the host with our rule (deploy/k8s/prometheus-adapter/rules.yaml) and is
# registered as the custom.metrics.k8s.io APIService through a Service whose endpoint is the bridge's
# address. Both run on the host because no registry is reachable to pull their images; what the API
# server, the HPA and the adapter do is the same as in pods. Uses W, NS, root, ADAPTER, PROM_PORT,
# ADAPTER_PORT, pids, log and wait_for from the caller.

start_metrics_stack() {
  local bridge=10.42.0.1
  mkdir -p "$W/prometheus" "$W/adapter"
  # Debian builds Prometheus without Kubernetes discovery: a loop here writes the pods as a file of
  # targets (kept fresh every 2 s, replaced atomically), labelled as the Kubernetes discovery would be.
  cat > "$W/prometheus/prometheus.yml" <<EOF
global: { scrape_interval: 2s, evaluation_interval: 2s }
scrape_configs:
  - job_name: haltingvt-pods
    file_sd_configs: [{ files: ["$W/prometheus/targets.json"], refresh_interval: 2s }]
EOF
  echo '[]' > "$W/prometheus/targets.json"
  (while :; do
    kubectl -n "$NS" get pods -o json | jq '[.items[]
      | select(.metadata.annotations["prometheus.io/scrape"] == "true" and .status.podIP != null)
      | { targets: ["\(.status.podIP):\(.metadata.annotations["prometheus.io/port"])"],
          labels: { namespace: .metadata.namespace, pod: .metadata.name, __metrics_path__: .metadata.annotations["prometheus.io/path"] } }]' \
      > "$W/prometheus/targets.next" 2>/dev/null && mv "$W/prometheus/targets.next" "$W/prometheus/targets.json"
    sleep 2
  done) &
  pids+=($!)
  prometheus --config.file="$W/prometheus/prometheus.yml" --storage.tsdb.path="$W/prometheus/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" > "$W/prometheus/log" 2>&1 &
  pids+=($!)
  wait_for 30 "Prometheus" curl -fsS -m 2 "http://127.0.0.1:$PROM_PORT/-/ready" || { tail -3 "$W/prometheus/log"; return 1; }
  # The adapter's own config is the chart values' `rules.custom` list under `rules:`.
  (cd "$root" && node -e '
    const yaml = require("yaml");
    const values = yaml.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    process.stdout.write(yaml.stringify({ rules: values.rules.custom }));
  ' deploy/k8s/prometheus-adapter/rules.yaml) > "$W/adapter/config.yaml" || return 1
  "$ADAPTER" --secure-port="$ADAPTER_PORT" --bind-address="$bridge" --cert-dir="$W/adapter/certs" \
    --lister-kubeconfig="$W/kubeconfig" --authentication-kubeconfig="$W/kubeconfig" \
    --authorization-kubeconfig="$W/kubeconfig" --prometheus-url="http://127.0.0.1:$PROM_PORT/" \
    --metrics-relist-interval=5s --config="$W/adapter/config.yaml" > "$W/adapter/log" 2>&1 &
  pids+=($!)
  kubectl apply -f - > /dev/null 2>&1 <<EOF
apiVersion: v1
kind: Namespace
metadata: { name: $NS-metrics }
---
apiVersion: v1
kind: Service
metadata: { name: prometheus-adapter, namespace: $NS-metrics }
spec:
  ports: [{ port: 443, targetPort: $ADAPTER_PORT, protocol: TCP }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: prometheus-adapter, namespace: $NS-metrics }
subsets: [{ addresses: [{ ip: $bridge }], ports: [{ port: $ADAPTER_PORT, protocol: TCP }] }]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: { name: v1beta1.custom.metrics.k8s.io }
spec:
  service: { name: prometheus-adapter, namespace: $NS-metrics, port: 443 }
  group: custom.metrics.k8s.io
  version: v1beta1
  # The adapter serves a self-signed certificate made at its start.
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
  available() { kubectl get apiservice v1beta1.custom.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' | grep -q True; }
  wait_for 90 "the custom metrics APIService" available || { tail -5 "$W/adapter/log" "$W/prometheus/log"; return 1; }
  log "Prometheus on 127.0.0.1:$PROM_PORT and prometheus-adapter on $bridge:$ADAPTER_PORT; custom.metrics.k8s.io Available"
}
