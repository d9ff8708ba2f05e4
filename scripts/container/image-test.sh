#!/usr/bin/env bash
# `make image-test`: builds the image, then smoke-tests the real container as a user would run it:
# read-only root filesystem, a tmpfs /tmp, non-root. Fails on the first check that does not hold.
set -euo pipefail
source "$(dirname "$0")/engine.sh"
"$(dirname "$0")/build.sh"

name=haltingvt-smoke-$$
work=$(mktemp -d)
cleanup() { engine rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
checks=0
pass() { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail() { echo "not ok - $*" >&2; echo "--- container log" >&2; engine logs "$name" 2>&1 | tail -40 >&2; exit 1; }

echo "# image $IMAGE: $(engine image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
echo "# biggest layers:"
engine history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | awk -F'\t' '
  { n = $1 + 0; u = toupper($1); gsub(/[^KMG]/, "", u)   # "214 MB" (podman), "214MB" (docker)
    what = $2; sub(/.*#\(nop\) /, "", what); sub(/ (dir|file):[0-9a-f]+ in /, " ", what)
    printf "%.1f\t%s\n", n * (u == "G" ? 1000 : u == "M" ? 1 : u == "K" ? 0.001 : 0.000001), substr(what, 1, 70) }' \
  | sort -g -r | head -5 | awk -F'\t' '{printf "#   %7.1f MB  %s\n", $1, $2}'

# Inputs made here, deterministically: two 2-second clips and a file that is not a video.
ffmpeg -loglevel error -f lavfi -i testsrc2=size=320x240:rate=25 -t 2 -pix_fmt yuv420p -c:v libx264 -g 25 "$work/clip.mp4"
ffmpeg -loglevel error -f lavfi -i mandelbrot=size=256x192:rate=20 -t 2 -c:v libvpx-vp9 -b:v 200k "$work/clip.webm"
printf 'this is not a video\n' > "$work/notes.txt"
# A large upload for the drain test: sent slowly, it is still in flight when SIGTERM arrives.
head -c $((6 * 1024 * 1024)) /dev/urandom > "$work/padding.bin"
cat "$work/clip.mp4" "$work/padding.bin" > "$work/slow.mp4"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
engine run -d --name "$name" --read-only --tmpfs /tmp:rw,size=512m,mode=1777 \
  -e SHUTDOWN_DELAY_MS=500 -p "127.0.0.1:$port:8080" "$IMAGE" >/dev/null 2>"$work/run.err" \
  || { cat "$work/run.err" >&2; exit 1; }
base="http://127.0.0.1:$port"

for _ in $(seq 1 120); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
  [ "$(engine inspect --format '{{.State.Running}}' "$name")" = true ] || fail "container exited before ready"
  sleep 0.5
done
curl -fsS "$base/readyz" >/dev/null || fail "/readyz never answered 200"
pass "ready: /readyz 200 ($(engine logs "$name" 2>&1 | grep -c . ) log lines so far)"

json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

answer=$(curl -fsS -F "file=@$work/clip.mp4" "$base/v1/classify?top_k=2") || fail "multipart classify"
echo "$answer" | json 'd["top"][0]["label"], d["tokens"]["per_layer"], d["gflops"]' >/dev/null \
  || fail "multipart answer lacks labels, tokens or GFLOPs: $answer"
pass "multipart classify: $(echo "$answer" | json '"%s, tokens per layer %s, %.3f GFLOPs" % (d["top"][0]["label"], d["tokens"]["per_layer"], d["gflops"])')"

answer=$(curl -fsS --data-binary "@$work/clip.webm" -H 'content-type: video/webm' "$base/v1/classify?keep_ratio=0.3") \
  || fail "raw-body classify"
[ "$(echo "$answer" | json 'd["tokens"]["total"] > 0 and d["gflops"] > 0')" = True ] || fail "raw answer: $answer"
pass "raw-body classify: $(echo "$answer" | json '"%d tokens, %.3f GFLOPs" % (d["tokens"]["total"], d["gflops"])')"

answer=$(curl -sS -F "file=@$work/clip.mp4" -F "file=@$work/notes.txt" -F "file=@$work/clip.webm" "$base/v1/classify:batch") \
  || fail "batch"
[ "$(echo "$answer" | json '[i["ok"] for i in d["items"]]')" = "[True, False, True]" ] || fail "batch answer: $answer"
pass "batch of 3 with a non-video in the middle: $(echo "$answer" | json '[i["ok"] and i["result"]["top"][0]["label"] or i["error"]["code"] for i in d["items"]]')"

metrics=$(curl -fsS "$base/metrics") || fail "/metrics"
for series in haltingvt_videos_total haltingvt_video_flops haltingvt_video_tokens haltingvt_queue_depth haltingvt_model_ready; do
  grep -q "^$series" <<<"$metrics" || fail "/metrics lacks $series"
done
pass "/metrics has the haltingvt series ($(grep -c '^haltingvt_' <<<"$metrics") samples)"

if [ "$CONTAINER_ENGINE" = podman ]; then
  engine healthcheck run "$name" || fail "healthcheck unhealthy"
  pass "HEALTHCHECK healthy (podman healthcheck run)"
else
  for _ in $(seq 1 40); do
    [ "$(engine inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] && break
    sleep 1
  done
  [ "$(engine inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] || fail "healthcheck not healthy"
  pass "HEALTHCHECK healthy"
fi

# Every process of the container, PID 1 (tini) included, runs as the service user.
if [ "$CONTAINER_ENGINE" = podman ]; then users=$(engine top "$name" user pid args | tail -n +2)
else users=$(engine top "$name" -o uid,pid,args | tail -n +2); fi
echo "$users" | awk '{print $1}' | grep -qvx 10001 && fail "a process is not uid 10001: $users"
echo "$users" | head -1 | grep -q tini || fail "PID 1 is not tini: $users"
pass "non-root: $(echo "$users" | wc -l) processes, all uid 10001, tini first"

engine exec "$name" sh -c 'touch /app/x' 2>/dev/null && fail "root filesystem is writable"
pass "read-only root filesystem (writes to /app fail)"

# Pulled streams' decoders load the connect guard: it must be in the image and load with its glibc.
probe='const net = require("node:net"); const go = (h) => new Promise((r) => { const s = net.connect(8080, h); s.on("connect", () => { s.destroy(); r("connected"); }); s.on("error", (e) => r(e.code)); }); Promise.all([go("127.0.0.1"), go("127.0.0.2")]).then((o) => console.log(o.join(" ")));'
guarded=$(engine exec -e HALTINGVT_CONNECT_ALLOW=127.0.0.1 -e LD_PRELOAD=/app/dist/native/connect-guard.so "$name" node -e "$probe") || fail "node under the connect guard"
[ "$guarded" = "connected EACCES" ] || fail "connect guard: allowed / other address gave $guarded"
pass "connect guard loads: 127.0.0.1 connected, 127.0.0.2 refused (EACCES)"

# SIGTERM while an upload is in flight: that request still gets its 200, then the process exits 0.
curl -sS -o "$work/slow.json" -w '%{http_code}' --limit-rate 2M -F "file=@$work/slow.mp4" \
  "$base/v1/classify" > "$work/slow.code" 2>"$work/slow.err" &
upload=$!
sleep 1
engine kill --signal TERM "$name" >/dev/null
wait "$upload" || true
[ "$(cat "$work/slow.code")" = 200 ] || fail "in-flight upload during SIGTERM: HTTP $(cat "$work/slow.code") $(cat "$work/slow.json" "$work/slow.err")"
code=$(engine wait "$name")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
pass "SIGTERM during an upload: that request 200, then exit code 0"

echo "$checks passed, 0 failed"
