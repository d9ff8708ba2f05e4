#!/usr/bin/env bash
# make k8s-test: our manifests on a real Kubernetes. A one-node k3s built from the Go module proxy
# (scripts/k8s/build-k3s.sh) runs the image `make image` built, loaded offline, with a bridge CNI and
# no add-ons; Prometheus (Debian's package) scrapes the pods and prometheus-adapter (built from the Go
# module proxy) serves haltingvt_queue_depth to the HPA through the custom metrics API. The checks
# and the figures they print are listed in deploy/README.md. Everything the run set up is torn down
# at the end, also after a failure or an interrupt: processes by pid, mounts, the bridge, iptables
# rules, /etc/rancher, kubelet folders. Traffic stays on this machine: the host talks to the pods
# over the bridge (Service IPs, pod IPs) and through `kubectl port-forward` on 127.0.0.1; every load
# loop is bounded in requests and seconds. Needs root (iptables, mounts, namespaces).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
W=${K8S_TEST_DIR:-/tmp/haltingvt-k8s-test}
NS=haltingvt-test
IMAGE=${K8S_TEST_IMAGE:-localhost/haltingvt:latest}
VIDEO=$root/models/golden/frames/landscape.mp4
PROM_PORT=19090 ADAPTER_PORT=16443 FORWARD_HTTP=18080 FORWARD_GRPC=18081

T0=$(date +%s%N)
ms() { echo $(( $(date +%s%N) / 1000000 )); }
since() { awk -v a="$1" -v b="$(ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
log() { printf '[%6s s] %s\n' "$(since $((T0 / 1000000)))" "$*"; }
failures=0
check() { # name, command...
  local name=$1; shift
  if "$@"; then log "PASS $name"; else log "FAIL $name"; failures=$((failures + 1)); fi
}
die() { log "ERROR $*"; exit 2; }
report() { echo "$1" >> "$W/report.txt"; log "$1"; }

[ "$(id -u)" = 0 ] || { echo "make k8s-test needs root (iptables, mounts, network namespaces)" >&2; exit 2; }
for tool in runc iptables podman gcc jq curl prometheus ffmpeg node; do
  command -v "$tool" >/dev/null || { echo "make k8s-test needs $tool (Debian: runc iptables podman gcc jq curl prometheus containernetworking-plugins)" >&2; exit 2; }
done
[ -x /usr/lib/cni/bridge ] || { echo "make k8s-test needs the CNI plugins in /usr/lib/cni (Debian: containernetworking-plugins)" >&2; exit 2; }
{ pgrep -x k3s || pgrep -f "containerd-shim-runc-v2 .*-address /run/k3s/"; } >/dev/null && { echo "a k3s (or its containers) already runs on this machine; stop it first" >&2; exit 2; }

K3S=$("$root/scripts/k8s/build-k3s.sh") || die "k3s could not be built"
ADAPTER=$("$root/scripts/k8s/build-adapter.sh") || die "prometheus-adapter could not be built"
KUSTOMIZE=$("$root/scripts/k8s/kustomize.sh") || die "kustomize could not be built"
CLIENTS=$("$root/scripts/python-clients-env.sh") || die "the OIP clients' venv could not be made"
TSX="$root/node_modules/.bin/tsx"
[ -x "$TSX" ] || die "node_modules is missing: make node-deps"
log "tools ready (k3s, prometheus-adapter, kustomize, clients)"

# --- Teardown: only what this run started or made -------------------------------------------
pids=()
netns_was_mounted=$(mountpoint -q /run/netns && echo yes || echo no)
descendants() { # pid: it and all its descendants
  local child
  echo "$1"
  for child in $(pgrep -P "$1"); do descendants "$child"; done
}
kill_tree() { # pid, signal: the process and all its descendants, children first
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child" "$2"; done
  kill "-$2" "$1" 2>/dev/null
}
teardown() {
  set +e
  trap - EXIT INT TERM
  log "tearing down"
  export KUBECONFIG=$W/kubeconfig PATH=$W/bin:$PATH
  for p in "${pids[@]}"; do kill_tree "$p" TERM; done
  if [ -f "$W/k3s.pid" ]; then
    local k3s_pid; k3s_pid=$(cat "$W/k3s.pid")
    report "CPU of k3s (server, apiserver, kubelet; containerd apart): $(awk '{ printf "%.1f s", ($14 + $15 + $16 + $17) / 100 }' "/proc/$k3s_pid/stat" 2>/dev/null)"
    kill_tree "$k3s_pid" TERM   # the server and its containerd: the kubelet restarts nothing after this
    for _ in $(seq 1 20); do kill -0 "$k3s_pid" 2>/dev/null || break; sleep 0.5; done
    kill_tree "$k3s_pid" KILL
  fi
  # The shims (and the containers under them) outlive containerd by design: ours run from the cache.
  for p in $(pgrep -f "^$K3S/bin/containerd-shim-runc-v2 "); do kill_tree "$p" KILL; done
  sleep 1
  for m in $(awk '{ print $2 }' /proc/self/mounts | grep -E "^(/run/k3s|$W/|/run/netns/cni-|/var/lib/kubelet)" | sort -r); do umount -l "$m" 2>/dev/null; done
  # The CNI plugins make /run/netns a mount point when they first need it.
  [ "$netns_was_mounted" = yes ] || { mountpoint -q /run/netns && umount /run/netns 2>/dev/null; }
  ip link delete cni0 2>/dev/null
  for t in iptables ip6tables; do
    "$t-save" 2>/dev/null | grep -vE 'KUBE-|CNI-|FLANNEL' | "$t-restore" 2>/dev/null
  done
  rm -rf /etc/rancher/k3s /etc/rancher/node /run/k3s /var/lib/kubelet /var/lib/rancher/k3s \
    /var/lib/cni/networks/k3s-test /var/log/pods/"${NS}"_* /var/log/containers/*_"${NS}"_* /run/netns/cni-*
  rmdir /etc/rancher 2>/dev/null
  [ -n "${KEEP_K8S_TEST_DIR:-}" ] || rm -rf "$W/data" "$W/kubelet" "$W/images"
  log "torn down; failures: $failures (report: $W/report.txt)"
}

rm -rf "$W" && mkdir -p "$W/bin" "$W/cni/net.d" "$W/data/agent/images" "$W/data/agent/etc/containerd" "$W/images"
trap teardown EXIT
trap 'exit 130' INT TERM
: > "$W/report.txt"

# --- The node's software and images ---------------------------------------------------------
for name in k3s containerd ctr crictl kubectl; do ln -s "$K3S/bin/k3s" "$W/bin/$name"; done
ln -s "$K3S/bin/containerd-shim-runc-v2" "$W/bin/containerd-shim-runc-v2"
export PATH=$W/bin:/usr/lib/cni:/usr/sbin:/usr/bin:/sbin:/bin KUBECONFIG=$W/kubeconfig

# containerd: k3s's own template, with two sandbox fixes. runc cannot lower oom_score_adj without
# CAP_SYS_RESOURCE (restrict_oom_score_adj, as in a user namespace), and with no flannel containerd
# must be pointed at Debian's CNI plugins and our network config.
sed -e 's/{{ if .IsRunningInUserNS }}/{{ if true }}/' \
    -e 's|{{- if or .NodeConfig.AgentConfig.CNIBinDir .NodeConfig.AgentConfig.CNIConfDir }}|{{- if true }}|' \
    -e 's|{{ with .NodeConfig.AgentConfig.CNIBinDir }}bin_dirs = \[{{ printf "%q" . }}\]{{ end }}|bin_dirs = ["/usr/lib/cni"]|' \
    -e "s|{{ with .NodeConfig.AgentConfig.CNIConfDir }}conf_dir = {{ printf \"%q\" . }}{{ end }}|conf_dir = \"$W/cni/net.d\"|" \
    "$K3S/containerd-config-v3.toml.tmpl" > "$W/data/agent/etc/containerd/config-v3.toml.tmpl"
grep -q "conf_dir = \"$W/cni/net.d\"" "$W/data/agent/etc/containerd/config-v3.toml.tmpl" || die "the containerd template did not take the CNI folders"
cat > "$W/cni/net.d/10-k3s-test.conflist" <<EOF
{ "cniVersion": "1.0.0", "name": "k3s-test",
  "plugins": [
    { "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$W/cni/ipam", "ranges": [[{ "subnet": "10.42.0.0/24" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } } ] }
EOF

# No registry answers here: the pod sandbox image is built from test/k8s/pause.c, and both images go
# into the folder k3s imports from at start.
gcc -static -Os -o "$W/images/pause" "$root/test/k8s/pause.c" || die "pause.c did not build (needs libc6-dev)"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$W/images/Containerfile"
podman build -q -t localhost/pause:3.10 "$W/images" >/dev/null || die "the pause image did not build"
podman image exists "$IMAGE" || die "$IMAGE is missing: make image"
podman tag "$IMAGE" localhost/haltingvt:k8s-test
podman save -q -o "$W/data/agent/images/pause.tar" localhost/pause:3.10 || die "podman save failed"
podman save -q -o "$W/data/agent/images/haltingvt.tar" localhost/haltingvt:k8s-test || die "podman save failed"
log "images saved for import ($(du -sh "$W/data/agent/images" | cut -f1))"

"$KUSTOMIZE" build "$root/test/k8s/overlay" > "$W/rendered.yaml" || die "the test overlay does not render"
# Without the PrometheusRule: its CRD is not available offline (promtool checks the rules in make test).
"$KUSTOMIZE" build "$root/deploy/k8s/overlays/gpu" | (cd "$root" && node -e '
  const yaml = require("yaml");
  const docs = yaml.parseAllDocuments(require("fs").readFileSync(0, "utf8")).filter((d) => d.get("kind") !== "PrometheusRule");
  process.stdout.write(docs.map(String).join("---\n"));
') > "$W/rendered-gpu.yaml" || die "the GPU overlay does not render"

# --- The cluster ---------------------------------------------------------------------------
started=$(ms)
(
  exec k3s server --data-dir "$W/data" --write-kubeconfig "$W/kubeconfig" --write-kubeconfig-mode 600 \
    --disable traefik,servicelb,metrics-server,coredns,local-storage --disable-network-policy \
    --disable-helm-controller --disable-cloud-controller --flannel-backend none \
    --pause-image localhost/pause:3.10 --node-name k3s-test \
    --kube-controller-manager-arg horizontal-pod-autoscaler-sync-period=5s \
    --kubelet-arg root-dir="$W/kubelet" --kubelet-arg fail-cgroupv1=false
) > "$W/k3s.log" 2>&1 &
echo $! > "$W/k3s.pid"
wait_for() { # seconds, description, command...
  local limit=$1 what=$2; shift 2
  local until=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$until" ] || { log "timed out after ${limit} s waiting for $what"; return 1; }
    kill -0 "$(cat "$W/k3s.pid")" 2>/dev/null || { tail -20 "$W/k3s.log"; die "k3s exited"; }
    sleep 0.5
  done
}
wait_for 90 "the API server" kubectl get --raw /readyz || die "no API server (log: $W/k3s.log)"
node_ready() { kubectl get node k3s-test -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True; }
wait_for 90 "the node" node_ready || die "the node never turned Ready"
image_imported() { ctr -n k8s.io images ls -q | grep -q localhost/haltingvt:k8s-test; }
wait_for 120 "the image import" image_imported || die "the image was not imported"
report "cluster: API server, node Ready and images imported $(since "$started") s after start"

kubectl apply --server-side -f "$root/test/k8s/crds/podmonitor.yaml" -f "$root/test/k8s/crds/kserve-isvc.yaml" >/dev/null || die "CRDs refused"
wait_for 60 "the CRDs" kubectl wait --for=condition=Established --timeout=5s crd/podmonitors.monitoring.coreos.com crd/inferenceservices.serving.kserve.io || die "CRDs not established"

# --- Apply and come up ----------------------------------------------------------------------
applied=$(ms)
check "the base (test overlay) applied server-side, PodMonitor included, no warnings" \
  bash -c "kubectl apply --server-side --field-manager=k8s-test -f '$W/rendered.yaml' 2> '$W/apply.err' >/dev/null && ! grep -qi warning '$W/apply.err'"
check "the namespace enforces the restricted Pod Security Standard" \
  bash -c "[ \"\$(kubectl get ns $NS -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')\" = restricted ]"
ready_replicas() { kubectl -n "$NS" get deploy haltingvt -o jsonpath='{.status.readyReplicas}'; }
ready_at_least() { [ "$(ready_replicas)" -ge "$1" ] 2>/dev/null; }
wait_for 180 "a Ready pod" ready_at_least 1
report "apply → first pod Ready: $(since "$applied") s"
check "a pod Ready through its startup and readiness probes" ready_at_least 1
wait_for 120 "two Ready pods" ready_at_least 2
report "apply → both replicas Ready: $(since "$applied") s"
check "both replicas scheduled and Ready on the 2-core node" ready_at_least 2
check "the PodDisruptionBudget allows a disruption" \
  bash -c "[ \"\$(kubectl -n $NS get pdb haltingvt -o jsonpath='{.status.disruptionsAllowed}')\" -ge 1 ]"

SVC=$(kubectl -n "$NS" get svc haltingvt -o jsonpath='{.spec.clusterIP}')
kubectl -n "$NS" port-forward --address 127.0.0.1 svc/haltingvt "$FORWARD_HTTP:8080" "$FORWARD_GRPC:8081" > "$W/port-forward.log" 2>&1 &
pids+=($!)
wait_for 30 "the port-forward" curl -fsS -m 2 "http://127.0.0.1:$FORWARD_HTTP/readyz"
check "classify through the Service (port-forward on 127.0.0.1)" \
  bash -c "curl -fsS -m 60 -H 'content-type: video/mp4' --data-binary @'$VIDEO' http://127.0.0.1:$FORWARD_HTTP/v1/classify | jq -e '.top[0].label and (.tokens.per_layer | length > 0)' >/dev/null"
MODEL=$(curl -fsS -m 5 "http://127.0.0.1:$FORWARD_HTTP/v1/models" | jq -r '.models[0].name')
check "gRPC (OIP) through the Service, Triton's stock client" \
  "$CLIENTS/bin/python" "$root/test/k8s/grpc_check.py" "127.0.0.1:$FORWARD_GRPC" "$MODEL" "$VIDEO"
check "classify through the Service's cluster IP" \
  bash -c "curl -fsS -m 60 -H 'content-type: video/mp4' --data-binary @'$VIDEO' http://$SVC:8080/v1/classify | jq -e '.top[0].label' >/dev/null"

# --- Load shared by two replicas -----------------------------------------------------------
load() { # name, concurrency, max requests, max seconds (runs in the background; stops at $W/stop-NAME)
  "$TSX" "$root/test/k8s/load.ts" --url "http://$SVC:8080/v1/classify" --video "$VIDEO" \
    --concurrency "$2" --max-requests "$3" --max-seconds "$4" --stop-file "$W/stop-$1" --out "$W/requests-$1.jsonl" &
  load_pid=$!
}
classified_by_pod() { # pod ip → classify requests answered 200 so far, from the pod's own /metrics
  curl -fsS -m 5 "http://$1:8080/metrics" | awk '/^haltingvt_requests_total\{/ && /route="\/v1\/classify"/ && /status="200"/ { n += $NF } END { print n + 0 }'
}
pod_ips=$(kubectl -n "$NS" get pods -l app.kubernetes.io/name=haltingvt -o jsonpath='{range .items[*]}{.status.podIP}{" "}{end}')
declare -A before
for ip in $pod_ips; do before[$ip]=$(classified_by_pod "$ip"); done
load spread 4 60 90; wait "$load_pid"
shares=""
spread_ok=true
for ip in $pod_ips; do
  n=$(( $(classified_by_pod "$ip") - before[$ip] )); shares+="$ip: $n  "
  [ "$n" -ge 12 ] || spread_ok=false   # at least a fifth of the 60 each
done
report "load spread over the two pods, from their /metrics: $shares"
check "two replicas share load (each answered at least a fifth)" $spread_ok

# --- A pulled stream answered through either replica --------------------------------------------
# The source: a live MPEG-TS over HTTP on the bridge's address (allowed by the overlay's PULL_ALLOW).
ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 -t 10 -c:v libx264 -preset veryfast -g 25 -pix_fmt yuv420p -f mpegts "$W/live.ts" || die "the test clip could not be made"
ffmpeg -v error -re -stream_loop -1 -i "$W/live.ts" -c copy -f mpegts -listen 1 http://10.42.0.1:18090/live.ts > "$W/publisher.log" 2>&1 &
pids+=($!)
sleep 1
stream_id=$(curl -fsS -m 10 -H 'content-type: application/json' -d '{"source":{"url":"http://10.42.0.1:18090/live.ts"},"window_s":1}' "http://$SVC:8080/v1/streams" | jq -r .id)
check "a stream pulled through the Service (201, a routed id)" [ "$(tr -cd . <<< "$stream_id")" = .. ]
owner_ip=$(node -e 'console.log(new URL(Buffer.from(process.argv[1].split(".")[1], "base64url").toString()).hostname)' "$stream_id")
: > "$W/stream-gets.log"
for _ in $(seq 1 20); do
  curl -sS -m 10 -o /dev/null -D - "http://$SVC:8080/v1/streams/$stream_id" | tr -d '\r' \
    | awk 'NR == 1 { status = $2 } tolower($1) == "x-served-by:" { pod = $2 } END { print status, pod }' >> "$W/stream-gets.log"
done
answered=$(awk '$1 == 200' "$W/stream-gets.log" | wc -l)
fronts=$(awk '$1 == 200 { print $2 }' "$W/stream-gets.log" | sort -u | wc -l)
forwarded=0
for ip in $pod_ips; do
  [ "$ip" = "$owner_ip" ] && continue
  forwarded=$(curl -fsS -m 5 "http://$ip:8080/metrics" | awk '/^haltingvt_stream_forwards_total\{outcome="answered"\}/ { print $NF }')
done
report "pulled stream $stream_id (held by $owner_ip): 20 GETs through the Service, $answered answered 200, by $fronts pods; the other pod forwarded ${forwarded:-0}"
check "a pulled stream answers through either replica (every GET 200, both pods reached, the other one forwarded)" \
  bash -c "[ $answered = 20 ] && [ $fronts = 2 ] && [ \"${forwarded:-0}\" -ge 1 ]"
windows=$(curl -sS -N -m 8 "http://$SVC:8080/v1/streams/$stream_id/events" 2>/dev/null | grep -c '^event: window')
check "its events through the Service as server-sent events (windows within 8 s)" [ "$windows" -ge 1 ]
check "deleted through the Service" \
  bash -c "[ \"\$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X DELETE http://$SVC:8080/v1/streams/$stream_id)\" = 204 ]"

# --- Rolling update under load ---------------------------------------------------------------
watch_ready() { # a line per pod event: epoch ms, pod, Ready
  kubectl -n "$NS" get pods -l app.kubernetes.io/name=haltingvt -w \
    -o jsonpath='{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}' \
    | while read -r line; do echo "$(ms) $line"; done >> "$W/ready.log" &
  pids+=($!)
}
kubectl -n "$NS" get pods -l app.kubernetes.io/name=haltingvt \
  -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
  | while read -r line; do echo "$(ms) $line"; done > "$W/ready.log"
watch_ready
load rollout 3 1000 240
sleep 3
rollout_started=$(ms)
kubectl -n "$NS" rollout restart deploy/haltingvt >/dev/null
kubectl -n "$NS" rollout status deploy/haltingvt --timeout=200s >/dev/null; rolled=$?
rollout_s=$(since "$rollout_started")
sleep 3; touch "$W/stop-rollout"; wait "$load_pid"
check "the rollout finished" [ "$rolled" = 0 ]
verdict=$("$TSX" "$root/test/k8s/verify.ts" no-fail "$W/requests-rollout.jsonl" "$W/ready.log"); rollout_ok=$?
report "rollout restart under load: $rollout_s s; $verdict"
check "rolling update under load: no failed request, each answered by a Ready pod" [ "$rollout_ok" = 0 ]

# --- A container killed under load --------------------------------------------------------
wait_for 120 "two Ready pods" ready_at_least 2
load kill 3 1000 120
sleep 4
victim=$(kubectl -n "$NS" get pods -l app.kubernetes.io/name=haltingvt --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
restarts=$(kubectl -n "$NS" get pod "$victim" -o jsonpath='{.status.containerStatuses[0].restartCount}')
cid=$(kubectl -n "$NS" get pod "$victim" -o jsonpath='{.status.containerStatuses[0].containerID}'); cid=${cid#containerd://}
cpid=$(crictl -r unix:///run/k3s/containerd/containerd.sock inspect "$cid" 2>/dev/null | jq -r '.info.pid')
# The requests in flight are those that overlap the container's death: from the signal until the
# last of its processes (tini, the service and its workers) has exited, which takes some milliseconds.
container_pids=$(descendants "$cpid")
killed_at=$(ms)
kill -9 "$cpid"
for _ in $(seq 1 1000); do
  alive=0
  for p in $container_pids; do [ -r "/proc/$p/stat" ] && [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive=1; done
  [ "$alive" = 0 ] && break
  sleep 0.005
done
died_at=$(ms)
restarted() { [ "$(kubectl -n "$NS" get pod "$victim" -o jsonpath='{.status.containerStatuses[0].restartCount}')" -gt "$restarts" ] && ready_at_least 2; }
wait_for 120 "the killed container to restart and turn Ready" restarted; back=$?
report "SIGKILL of $victim's container (pid $cpid): all its processes gone after $((died_at - killed_at)) ms, Ready again after $(since "$killed_at") s"
sleep 3; touch "$W/stop-kill"; wait "$load_pid"
check "the killed container restarted and its pod turned Ready" [ "$back" = 0 ]
verdict=$("$TSX" "$root/test/k8s/verify.ts" kill "$W/requests-kill.jsonl" "$killed_at" "$died_at" "$victim"); killed_ok=$?
report "kill: $verdict"
check "container killed under load: failures only among requests in flight, the other pod kept serving" [ "$killed_ok" = 0 ]

# --- A pod deleted under load (graceful) --------------------------------------------------------
load delete 3 1000 120
sleep 4
victim=$(kubectl -n "$NS" get pods -l app.kubernetes.io/name=haltingvt --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
deleted_at=$(ms)
kubectl -n "$NS" delete pod "$victim" --wait=true >/dev/null
report "pod deletion of $victim: gone after $(since "$deleted_at") s (preStop 5 s, then the drain)"
wait_for 120 "the replacement pod" ready_at_least 2; replaced=$?
report "pod deletion: two Ready pods again $(since "$deleted_at") s after the deletion"
sleep 3; touch "$W/stop-delete"; wait "$load_pid"
check "the replacement pod turned Ready" [ "$replaced" = 0 ]
verdict=$("$TSX" "$root/test/k8s/verify.ts" no-fail "$W/requests-delete.jsonl" "$W/ready.log"); deleted_ok=$?
report "delete: $verdict"
check "pod deleted under load: no failed request, each answered by a Ready pod" [ "$deleted_ok" = 0 ]

# --- The autoscaler on queue depth -----------------------------------------------------------------
. "$root/scripts/k8s/metrics-stack.sh"
start_metrics_stack || die "Prometheus or prometheus-adapter did not start"
queue_metric() { kubectl get --raw "/apis/custom.metrics.k8s.io/v1beta1/namespaces/$NS/pods/*/haltingvt_queue_depth" | jq -e '.items | length >= 1' >/dev/null; }
wait_for 120 "haltingvt_queue_depth through the custom metrics API" queue_metric
check "the custom metrics API serves haltingvt_queue_depth per pod" queue_metric
kubectl -n "$NS" patch hpa haltingvt --type merge -p '{"spec":{"minReplicas":1}}' >/dev/null
replicas() { kubectl -n "$NS" get deploy haltingvt -o jsonpath='{.spec.replicas}'; }
scaled_to() { [ "$(replicas)" = "$1" ] && [ "$(ready_replicas)" = "$1" ]; }
hpa_started=$(ms)
(while :; do echo "$(since "$hpa_started") $(replicas) $(ready_replicas) $(kubectl -n "$NS" get hpa haltingvt -o jsonpath='{.status.currentMetrics[0].pods.current.averageValue}')"; sleep 2; done) > "$W/replicas.log" 2>/dev/null &
pids+=($!)
wait_for 120 "the HPA to scale an idle Deployment down to 1" scaled_to 1; idle_down=$?
check "an idle Deployment scaled down to 1 replica" [ "$idle_down" = 0 ]
burst_at=$(ms)
load burst 9 600 150
wait_for 150 "the HPA to scale up to 2 on queue depth" scaled_to 2; up=$?
scaled_up_s=$(since "$burst_at")
touch "$W/stop-burst"; wait "$load_pid"
check "a burst scaled the Deployment from 1 to 2 replicas (queue depth)" [ "$up" = 0 ]
report "burst: 2 Ready replicas $scaled_up_s s after it began; $("$TSX" "$root/test/k8s/verify.ts" summary "$W/requests-burst.jsonl")"
burst_end=$(ms)
wait_for 240 "the HPA to scale back down to 1" scaled_to 1; down=$?
check "after the burst, back down to 1 replica" [ "$down" = 0 ]
report "scale-down to 1 replica $(since "$burst_end") s after the burst ended"
report "replicas over time (s since the HPA could scale, replicas, ready, queue depth per pod):"
sed 's/^/    /' "$W/replicas.log" >> "$W/report.txt"

# --- The other manifests against the real API server ----------------------------------------------
check "KServe InferenceService accepted by its CRD on the API server" \
  bash -c "kubectl -n $NS apply --server-side --dry-run=server -f '$root/deploy/kserve/inferenceservice.yaml' >/dev/null"
# Its namespace (the base's, first in the rendering) must exist for a dry run of what goes in it.
awk '/^---$/ { exit } { print }' "$W/rendered-gpu.yaml" | kubectl apply --server-side -f - >/dev/null
check "the GPU overlay accepted by the API server (dry run)" \
  bash -c "kubectl apply --server-side --dry-run=server -f '$W/rendered-gpu.yaml' >/dev/null"

report "total $(since $((T0 / 1000000))) s; failures: $failures"
exit $(( failures > 0 ? 1 : 0 ))
