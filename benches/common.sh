# Sourced by the benchmark scripts: a work directory and the processes to stop when the script
# ends, free loopback ports, waiting for a port, and a process's CPU time.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
# utime + stime of a process, in clock ticks (tck a second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
# A percentile (50, 99, ...) of `wrk --latency` output on stdin, in microseconds.
percentile_us() { awk -v p="$1" '$1 == p "%" {v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); v*=1000} else if (v ~ /us$/) {sub(/us/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1e6}; printf "%.0f\n", v}'; }
# ok_backend PORT: a one-worker nginx on loopback answering 200 ok to every request, the backend
# the gateways under test forward to; stopped with the script.
ok_backend() {
  mkdir -p "$work/backend/logs"
  cat > "$work/backend/nginx.conf" <<EOF
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path logs/body; proxy_temp_path logs/proxy; fastcgi_temp_path logs/fcgi; uwsgi_temp_path logs/uwsgi; scgi_temp_path logs/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$1; location / { client_body_buffer_size 512k; return 200 "ok"; } }
}
EOF
  nginx -p "$work/backend" -c nginx.conf -g 'daemon off;' & pids+=($!)
}
# One row of a results table: LABEL ROUND, then req/s, p50 and p99 in microseconds and the
# non-2xx count of `wrk --latency` output on stdin.
wrk_row() {
  local out; out=$(cat)
  printf '%-6s %-18s %10s %10s %10s %8s\n' "$2" "$1" "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
    "$(echo "$out" | percentile_us 50)" "$(echo "$out" | percentile_us 99)" "$(echo "$out" | awk '/Non-2xx/ {n=$5} END {print n+0}')"
}
# bench_rules BACKEND_PORT: the rules of the end-to-end measurements (e2e.sh, callgrind.sh): one
# hook with Slack markup, a channel rule, an ignored icon and a user map, on a mattermost backend.
bench_rules() {
  cat <<EOF
[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:$1"

[[hooks]]
name = "bench"
key = "benchkey"
backend = "chat"
backend_key = "abc123generatedkey"
channel = "builds"
markup = "slack"
rate = 0

[hooks.overrides]
icon = "ignore"
channels = ["^builds$", "^@"]

[slack.users]
U024BE7LH = "alice"
EOF
}

# bench_bot_rules SPOOL_DIR: the bot hook of the Web API measurements (e2e.sh, `CALL=api
# callgrind.sh`): the bench hook's settings with a bot token, on the same backend, and the spool
# that keeps its message map.
bench_bot_rules() {
  cat <<EOF

[spool]
path = "$1"

[[hooks]]
name = "bench-bot"
bot_token = "xoxb-bench"
backend = "chat"
backend_key = "abc123generatedkey"
markup = "slack"
rate = 0
[hooks.overrides]
icon = "ignore"
channels = ["^builds$", "^@"]
EOF
}
