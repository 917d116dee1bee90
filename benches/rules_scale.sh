#!/usr/bin/env bash
# Rules at scale: generated rule sets of 1,000, 10,000 and 100,000 hooks (each a sha256: key, a
# name, a backend, a backend_key and a channel). For each: `hookgate check` time and peak RSS,
# `serve` time to /readyz 200 and its peak RSS, SIGHUP reload time, p99 of requests during
# reloads next to p99 without (flat out and at a paced 4,000 requests per second), and CPU per
# request for the last hook (the key lookup cost). The hooks post to a Mattermost backend that
# answers `ok` at once (benches/common.sh), as in benches/e2e.sh.
# Targets at 100,000 hooks: check < 1 s and < 150 MB, ready < 2 s, reload < 1 s.
#
# Usage: [HOOKGATE_BIN=BINARY] benches/rules_scale.sh [HOOK COUNTS...]   (make bench runs it; needs
# wrk and curl; HOOKGATE_BIN measures another build instead of this one)
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(3 1000 10000 100000)
source benches/common.sh
bin=${HOOKGATE_BIN:-}
if [ -z "$bin" ]; then cargo build --release --quiet; bin=./target/release/hookgate; fi
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

backend_port=$(free_port)
ok_backend "$backend_port"
wait_port "$backend_port"

generate() { # hooks dir
  mkdir -p "$2"
  python3 - "$1" "$2/rules.toml" "$backend_port" <<'PY'
import hashlib, sys
n, out, port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "w") as f:
    f.write(f'[backends.chat]\nkind = "mattermost"\nurl = "http://127.0.0.1:{port}"\n\n')
    for i in range(n):
        d = hashlib.sha256(f"key-{i}".encode()).hexdigest()
        f.write(f'[[hooks]]\nname = "hook-{i}"\nkey = "sha256:{d}"\nbackend = "chat"\n'
                f'backend_key = "generated{i:018d}"\nchannel = "chan-{i % 100}"\nrate = 0\n\n')
PY
}

# Two loads: flat out (each of 8 connections sends its next request on the answer, so the
# machine is saturated and p99 is mostly queueing), and paced at 4,000 requests per second (each
# connection waits 2 ms between requests), the latency a request sees on a machine with room.
for load in flat paced; do
  cat > "$work/$load.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"text":"Build *#4521* passed in 3m12s: 214 tests, 0 failures."}'
wrk.headers["Content-Type"] = "application/json"
EOF
done
echo 'function delay() return 2 end' >> "$work/paced.lua"

reloads() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^hookgate_rules_reloads_total\{result="ok"\}/ {print int($2)}'; }
p99() { percentile_us 99; }

# p99 of the given load while three SIGHUPs arrive 1.5 s apart. Each reload's time, from the
# signal to the new rules swapped in, is the took_ms of its log line: polling for it would load
# the machine the requests are measured on.
during_reloads() { # load
  wrk -t1 -c8 -d6s --latency -s "$work/$1.lua" "$url" > "$work/wrk-reload" &
  local wrk_pid=$!
  sleep 0.5
  for _ in 1 2 3; do kill -HUP "$pid"; sleep 1.5; done
  wait "$wrk_pid"
  p99 < "$work/wrk-reload"
}

printf '%-8s %8s %8s %8s %8s %8s %22s %22s %10s\n' hooks check_s check_MB ready_s serve_MB reload_s \
  "p99_flat_us(-/reload)" "p99_paced_us(-/reload)" cpu_us/req
for n in "${counts[@]}"; do
  dir="$work/rules-$n"; generate "$n" "$dir"
  read -r check_s check_kb < <( { /usr/bin/time -f "%e %M" "$bin" check --rules "$dir" >/dev/null; } 2>&1 | tail -1)
  port=$(free_port); admin=$(free_port)
  started=$(now)
  "$bin" serve --rules "$dir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --pid-file "$work/$n.pid" --upgrade-sock "$work/$n.sock" >/dev/null 2>"$work/$n.log" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz")" = 200 ] && break; sleep 0.02
  done
  ready_s=$(since "$started")
  serve_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  url="http://127.0.0.1:$port/hooks/key-$((n - 1))"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -d '{"text":"x"}' "$url")" = 200 ] || { echo "hook key-$((n - 1)) not served" >&2; exit 1; }
  wrk -t1 -c8 -d2s -s "$work/flat.lua" "$url" >/dev/null
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c8 -d6s --latency -s "$work/flat.lua" "$url")
  after=$(cpu_ticks "$pid")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  cpu_us=$(python3 -c "print(f'{($after - $before) / $tck * 1e6 / $reqs:.1f}')")
  p99_flat=$(echo "$out" | p99)
  p99_flat_reload=$(during_reloads flat)
  p99_paced=$(wrk -t1 -c8 -d6s --latency -s "$work/paced.lua" "$url" | p99)
  p99_paced_reload=$(during_reloads paced)
  [ "$(reloads "$admin")" = 6 ] || { echo "$n hooks: $(reloads "$admin") of 6 reloads done" >&2; exit 1; }
  reload_s=$(grep -o 'rules reloaded.*took_ms=[0-9]*' "$work/$n.log" | grep -o '[0-9]*$' | sort -n | tail -1 |
    python3 -c 'import sys; print(f"{int(sys.stdin.read()) / 1000:.2f}")')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-8s %8s %8.0f %8s %8.0f %8s %22s %22s %10s\n' "$n" "$check_s" "$((check_kb / 1024))" "$ready_s" \
    "$((serve_kb / 1024))" "$reload_s" "$p99_flat / $p99_flat_reload" "$p99_paced / $p99_paced_reload" "$cpu_us"
done
echo "reload_s: the slowest of six reloads under load; p99 from wrk -c8 over 6 s each; one log line per request"
