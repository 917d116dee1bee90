#!/usr/bin/env bash
# Instructions per request in user space, the figure a noisy machine cannot blur: hookgate under
# callgrind behind one keep-alive connection that posts the e2e's 250-byte JSON message, once
# SMALL times (200) and once LARGE times (1,200); the difference divided by LARGE - SMALL is what
# one request costs, with start-up and shutdown taken out. Background work that runs by the clock
# (timers, the reloader) still adds a few million instructions to a run, so a larger LARGE gives a
# steadier figure. Each binary named is measured the same way (this build when
# none is), so an old and a new build can be compared in one run.
#
# With CALL=api the same message goes to /api/chat.postMessage with a bot token instead (the Web
# API, docs/webapi.md; its message map in a spool directory of the run's own).
#
# Usage: [SMALL=200] [LARGE=1200] [CALL=api] benches/callgrind.sh [BINARY ...]   (needs valgrind, nginx, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then cargo build --release --quiet; bins=(./target/release/hookgate); fi
backend_port=$(free_port)
ok_backend "$backend_port"
mkdir -p "$work/rules"
bench_rules "$backend_port" > "$work/rules/bench.toml"
call=${CALL:-webhook}
[ "$call" = api ] && bench_bot_rules "$work/spool" >> "$work/rules/bench.toml"
wait_port "$backend_port"

# posts COUNT PORT: one keep-alive connection, COUNT posts, each answered `ok`.
posts() {
  python3 - "$1" "$2" "$call" <<'PY'
import http.client, sys
count, port, call = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
message = '{"text":"Build *#4521* of hookgate/main passed in 3m12s by <@U024BE7LH>: 214 tests, 0 failures. <https://ci.example/builds/4521|Build log> and artifacts are ready.","username":"ci","icon_emoji":":white_check_mark:","channel":"builds"}'
path, headers = "/hooks/benchkey", {"Content-Type": "application/json"}
if call == "api":
    path, headers["Authorization"] = "/api/chat.postMessage", "Bearer xoxb-bench"
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(count):
    conn.request("POST", path, body=message, headers=headers)
    answer = conn.getresponse()
    body = answer.read()
    assert body == b"ok" or body.startswith(b'{"ok":true'), (answer.status, body)
PY
}

# instructions BINARY COUNT: the user-space instructions of a whole run serving COUNT posts.
instructions() {
  local port admin out
  port=$(free_port); admin=$(free_port); out="$work/callgrind.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" serve --rules "$work/rules" \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --log-level warn \
    --pid-file "$work/cg.pid" --upgrade-sock "$work/cg.sock" >/dev/null 2>"$work/cg.log" &
  local pid=$!
  for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  posts "$2" "$port"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  awk '/^summary:/ {print $2}' "$out"
}

small_n=${SMALL:-200}; large_n=${LARGE:-1200}
printf '%-40s %14s %14s %12s\n' binary "Ir ($small_n)" "Ir ($large_n)" "Ir/request"
for bin in "${bins[@]}"; do
  small=$(instructions "$bin" "$small_n")
  large=$(instructions "$bin" "$large_n")
  printf '%-40s %14s %14s %12s\n' "$bin" "$small" "$large" "$(( (large - small) / (large_n - small_n) ))"
done
