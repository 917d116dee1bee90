#!/usr/bin/env bash
# The NATS engine's cost on loopback: accepted messages per second and p50/p99 of a spooled hook
# with `engine = "nats"` on one nats-server and on a three-node JetStream cluster (replicas = 3),
# next to the embedded spool and a direct hook, in the same run, against the same nginx backend.
# Each gateway takes 32 connections flat out. The NATS servers are Debian's (2.9, which fsyncs
# on its own schedule, not per message: see docs/instances.md). Stored
# messages are not delivered during the runs: this measures what each engine accepts.
#
# Usage: benches/nats.sh [SECONDS_PER_RUN] [ROUNDS]   (make bench runs it; needs nginx, wrk,
# curl, nats-server)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-6}
rounds=${2:-2}
conns=32
source benches/common.sh

backend_port=$(free_port)
ok_backend "$backend_port"

# nats_node NAME PORT [CLUSTER_PORT ROUTE_PORTS...]: one nats-server with JetStream in $work/NAME.
nats_node() {
  local name=$1 port=$2 dir="$work/$1"
  mkdir -p "$dir"
  { echo "listen: 127.0.0.1:$port"; echo "jetstream { store_dir: \"$dir/js\" }"
    if [ $# -gt 2 ]; then
      local own=$3; shift 3
      echo "server_name: $name"
      echo "cluster { name: bench, listen: 127.0.0.1:$own, routes: [$(printf 'nats-route://127.0.0.1:%s,' "$@" | sed 's/,$//')] }"
    fi; } > "$dir/nats.conf"
  nats-server -c "$dir/nats.conf" -l "$dir/nats.log" & pids+=($!)
}
single=$(free_port); nats_node single "$single"
cluster=($(free_port) $(free_port) $(free_port)); routes=($(free_port) $(free_port) $(free_port))
for i in 0 1 2; do nats_node "n$i" "${cluster[$i]}" "${routes[$i]}" "${routes[@]}"; done

# gateway NAME SPOOL_TABLE: a gateway with a direct and a spooled hook; sets ports[NAME].
declare -A ports
gateway() {
  local name=$1 port admin; port=$(free_port); admin=$(free_port)
  mkdir -p "$work/rules-$name"
  cat > "$work/rules-$name/bench.toml" <<EOF
$2

[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:$backend_port"

[[hooks]]
name = "direct"
key = "directkey"
backend = "chat"
backend_key = "abc"
rate = 0

# Delivery is parked (nothing listens on port 1; the worker backs off), so every run measures
# accepting alone and no run pays for delivering an earlier run's backlog.
[backends.parked]
kind = "mattermost"
url = "http://127.0.0.1:1"

[[hooks]]
name = "spooled"
key = "spoolkey"
backend = "parked"
backend_key = "abc"
rate = 0
delivery = "spool"
EOF
  ./target/release/hookgate serve --rules "$work/rules-$name" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --pid-file "$work/$name.pid" --upgrade-sock "$work/$name.sock" >/dev/null 2>"$work/$name.log" & pids+=($!)
  ports[$name]=$port
}

cargo build --release --quiet
wait_port "$backend_port"; wait_port "$single"
for p in "${cluster[@]}"; do wait_port "$p"; done
# A cluster takes streams once its JetStream meta group has a leader.
for _ in $(seq 1 100); do
  ok=0; for i in 0 1 2; do grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" "$work/n$i/nats.log" && ok=1; done
  [ $ok = 1 ] && break; sleep 0.2
done
sleep 1
gateway embedded "[spool]
path = \"$work/embedded-spool\""
gateway nats1 "[spool]
engine = \"nats\"
nats_urls = [\"nats://127.0.0.1:$single\"]"
gateway nats3 "[spool]
engine = \"nats\"
nats_urls = [\"nats://127.0.0.1:${cluster[0]}\", \"nats://127.0.0.1:${cluster[1]}\", \"nats://127.0.0.1:${cluster[2]}\"]
replicas = 3"
for name in embedded nats1 nats3; do
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/${ports[$name]}") 2>/dev/null && break; sleep 0.05; done
  code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"text":"x"}' "http://127.0.0.1:${ports[$name]}/hooks/spoolkey" || true)
  [ "$code" = 200 ] || { echo "$name answered $code" >&2; cat "$work/$name.log" >&2; exit 1; }
done

cat > "$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"text":"Build *#4521* of hookgate/main passed in 3m12s: 214 tests, 0 failures.","channel":"builds"}'
wrk.headers["Content-Type"] = "application/json"
EOF

echo "machine: $(nproc) cores, $(uname -r); $(nats-server --version); wrk -t1 -c$conns, ${secs}s per run, $rounds rounds"
printf '%-6s %-18s %10s %10s %10s %8s\n' round run req/s p50_us p99_us non-2xx
for round in $(seq 1 "$rounds"); do
  for run in direct:embedded:directkey embedded:embedded:spoolkey nats-1-node:nats1:spoolkey nats-3-nodes:nats3:spoolkey; do
    IFS=: read -r label name key <<< "$run"
    wrk -t1 -c$conns -d"${secs}s" --latency -s "$work/post.lua" "http://127.0.0.1:${ports[$name]}/hooks/$key" |
      wrk_row "$label" "$round"
  done
done
