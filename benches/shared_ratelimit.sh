#!/usr/bin/env bash
# What asking Redis for each request's token costs: p50/p99 and req/s of a rate-limited hook on a
# gateway without `[ratelimit]` next to the same hook on a gateway sharing its buckets through a
# real redis-server (no persistence, as docs/instances.md advises for rate state), same backend, same
# run. Each gateway flat out (8 connections) and paced (each connection waits 1 ms after each
# answer, so the cores are not saturated). The limits are high enough never to refuse.
#
# Usage: benches/shared_ratelimit.sh [SECONDS_PER_RUN] [ROUNDS]   (make bench runs it; needs
# nginx, wrk, curl, redis-server)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-6}
rounds=${2:-3}
source benches/common.sh

backend_port=$(free_port); redis_port=$(free_port)
mkdir -p "$work/redis"
ok_backend "$backend_port"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --save '' --appendonly no \
  --logfile redis.log & pids+=($!)

cargo build --release --quiet
declare -A ports admins
for name in local shared; do
  mkdir -p "$work/rules-$name"
  extra=""
  [ "$name" = shared ] && extra="[ratelimit]
redis_url = \"redis://127.0.0.1:$redis_port\""
  cat > "$work/rules-$name/bench.toml" <<EOF
$extra

[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:$backend_port"

[[hooks]]
name = "limited"
key = "benchkey"
backend = "chat"
backend_key = "abc"
rate = 1000000
burst = 1000000
EOF
  port=$(free_port); admin=$(free_port); ports[$name]=$port; admins[$name]=$admin
  ./target/release/hookgate serve --rules "$work/rules-$name" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --pid-file "$work/$name.pid" --upgrade-sock "$work/$name.sock" >/dev/null 2>"$work/$name.log" & pids+=($!)
done
wait_port "$backend_port"; wait_port "$redis_port"; wait_port "${ports[local]}"; wait_port "${ports[shared]}"

cat > "$work/flat.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"text":"Build *#4521* of hookgate/main passed in 3m12s: 214 tests, 0 failures.","channel":"builds"}'
wrk.headers["Content-Type"] = "application/json"
EOF
sed 's/^wrk.method/function delay() return 1 end\nwrk.method/' "$work/flat.lua" > "$work/paced.lua"
for name in local shared; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"text":"x"}' "http://127.0.0.1:${ports[$name]}/hooks/benchkey")
  [ "$code" = 200 ] || { echo "$name answered $code" >&2; exit 1; }
done

echo "machine: $(nproc) cores, $(uname -r); $(redis-server --version | cut -d' ' -f1-3); wrk -t1 -c8, ${secs}s per run, $rounds rounds"
printf '%-6s %-18s %10s %10s %10s %8s\n' round load req/s p50_us p99_us non-2xx
for round in $(seq 1 "$rounds"); do
  for load in flat paced; do
    for name in local shared; do
      wrk -t1 -c8 -d"${secs}s" --latency -s "$work/$load.lua" "http://127.0.0.1:${ports[$name]}/hooks/benchkey" |
        wrk_row "$load/$name" "$round"
    done
  done
done
errors=$(curl -s "http://127.0.0.1:${admins[shared]}/metrics" | awk '$1 == "hookgate_ratelimit_shared_errors_total" {print $2}')
echo "requests the shared gateway decided alone (Redis errors): ${errors:-none}"
