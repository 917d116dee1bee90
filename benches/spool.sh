#!/usr/bin/env bash
# The spool's cost on loopback: accepted messages per second and p50/p99 for a `delivery = "spool"`
# hook (each `ok` after its commit reached the disk) next to a direct hook in the same gateway and
# the same run, against the same nginx backend; and how many commits the spool made per second,
# which shows how many requests share one fsync (group commit). Target on this 2-core VM: at
# least 10,000 durably accepted messages per second with p99 under 10 ms, direct mode unchanged.
#
# Usage: benches/spool.sh [SECONDS_PER_RUN] [ROUNDS]   (make bench runs it; needs nginx, wrk, curl)
# HOOKGATE_BIN runs another hookgate binary (the one before a change, say) instead of this build.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-3}
conns=32
source benches/common.sh

metric() { curl -s "http://127.0.0.1:$admin_port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

backend_port=$(free_port); port=$(free_port); admin_port=$(free_port)
mkdir -p "$work/rules"
ok_backend "$backend_port"
# The store on the same disk as the rules: what a real deployment's fsync costs.
spool_dir="$(pwd)/target/bench-spool"
rm -rf "$spool_dir"
cat > "$work/rules/bench.toml" <<EOF
[spool]
path = "$spool_dir"

[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:$backend_port"

[[hooks]]
name = "direct"
key = "directkey"
backend = "chat"
backend_key = "abc"
rate = 0

[[hooks]]
name = "spooled"
key = "spoolkey"
backend = "chat"
backend_key = "abc"
rate = 0
delivery = "spool"
EOF
bin=${HOOKGATE_BIN:-}
if [ -z "$bin" ]; then cargo build --release --quiet; bin=./target/release/hookgate; fi
"$bin" serve --rules "$work/rules" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" \
  --pid-file "$work/h.pid" --upgrade-sock "$work/h.sock" >/dev/null 2>"$work/hookgate.log" & pid=$!; pids+=($pid)
wait_port "$backend_port"; wait_port "$port"

cat > "$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"text":"Build *#4521* of hookgate/main passed in 3m12s: 214 tests, 0 failures.","channel":"builds"}'
wrk.headers["Content-Type"] = "application/json"
EOF
# Paced: each connection waits 2 ms after every answer, which is about 12,000 requests a second
# in all, past the target of 10,000, with the cores no longer saturated by the load itself.
sed 's/^wrk.method/function delay() return 2 end\nwrk.method/' "$work/post.lua" > "$work/paced.lua"
for key in directkey spoolkey; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"text":"x"}' "http://127.0.0.1:$port/hooks/$key")
  [ "$code" = 200 ] || { echo "$key answered $code" >&2; exit 1; }
done

results="$work/results.tsv"
: > "$results"
run() { # name key [script]
  local commits_before commits_after out
  commits_before=$(metric hookgate_spool_commit_duration_seconds_count)
  out=$(wrk -t1 -c$conns -d${secs}s --latency -s "$work/${3:-post}.lua" "http://127.0.0.1:$port/hooks/$2")
  commits_after=$(metric hookgate_spool_commit_duration_seconds_count)
  echo "$out" | python3 -c '
import re, sys
name, commits, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
out = sys.stdin.read()
def dur(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = dur(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = dur(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{name}\t{rps:.0f}\t{p50:.0f}\t{p99:.0f}\t{commits / secs:.0f}\t{int(errors.group(1)) if errors else 0}")
' "$1" "$((${commits_after%.*} - ${commits_before%.*}))" "$secs" >> "$results"
}

echo "machine: $(nproc) cores, $(uname -r); store in $spool_dir ($(df -T "$(dirname "$spool_dir")" | awk 'NR==2 {print $2}')); wrk -t1 -c$conns, ${secs}s per run, $rounds rounds"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then run direct directkey; run spool spoolkey; else run spool spoolkey; run direct directkey; fi
  run spool-paced spoolkey paced
  # Give the worker time to deliver some of the backlog; it delivers one message at a time per
  # hook (each removal a commit), far fewer a second than are accepted, so it does not catch up.
  for _ in $(seq 1 100); do
    [ "$(metric 'hookgate_spool_messages{hook="spooled",state="pending"}')" = 0 ] && break; sleep 0.1
  done
done
delivered=$(metric 'hookgate_spool_attempts_total{hook="spooled",result="delivered"}')
pending=$(metric 'hookgate_spool_messages{hook="spooled",state="pending"}')

python3 - "$results" "$delivered" "$pending" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
by = {}
for name, rps, p50, p99, commits, bad in rows:
    by.setdefault(name, []).append((float(rps), float(p50), float(p99), float(commits), int(bad)))
med = lambda n, i: statistics.median(r[i] for r in by[n])
print(f"{'run':<12}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}{'commits/s':>12}{'per commit':>12}{'non-2xx':>10}")
for name in ("direct", "spool", "spool-paced"):
    per = med(name, 0) / med(name, 3) if med(name, 3) else 0
    print(f"{name:<12}{med(name,0):>10.0f}{med(name,1):>10.0f}{med(name,2):>10.0f}{med(name,3):>12.0f}{per:>12.1f}{sum(r[4] for r in by[name]):>10}")
print(f"medians over rounds; spool/direct req/s {med('spool',0)/med('direct',0):.2f}x; "
      f"target: spool >= 10000 req/s with p99 < 10000 us")
print("per run:")
for name, rps, p50, p99, commits, bad in rows:
    print(f"  {name:<12}{float(rps):>10.0f}{float(p50):>10.0f}{float(p99):>10.0f}")
print(f"delivered from the spool by the end: {sys.argv[2]}, still pending: {sys.argv[3]}")
PY
