#!/usr/bin/env bash
# End-to-end cost on loopback, in one run, interleaved: hookgate (full translation and policy) vs
# nginx proxy_pass (one worker, no translation: the ceiling a plain proxy sets), both in front of
# the same backend. For each: requests per second, p50/p99 latency (wrk), CPU time per request of
# the proxy process (utime+stime from /proc/PID/stat around each run), then the peak RSS of a
# fresh hookgate with 1,000 concurrent connections. Prints the ratios hookgate/nginx. The JSON
# message also runs over TLS (keep-alive clients, so handshakes are rare and the cost is the
# record layer): hookgate's listen_tls against nginx's `listen ... ssl`, same certificate, same
# plain backend. The same message also goes to this build as a Web API call
# (`chat.postMessage` with a bot token, on the same backend), compared with the webhook: its
# extra cost is the answer and the message map's write (docs/webapi.md, "The embedded map"). And the same
# bodies go to nginx + njs running the script an admin would write instead of hookgate (one
# worker; the Slack body to the Mattermost hook's JSON with bold, links and one user mention
# translated and the channel checked, forwarded through nginx's keep-alive upstream): the cost of
# "nginx and a script", against which hookgate should cost at most half (docs/performance.md).
#
# Usage: benches/e2e.sh [SECONDS_PER_RUN] [ROUNDS]   (make bench runs it; needs nginx, Debian's
# libnginx-mod-http-js and wrk)
# HOOKGATE_ARGS adds arguments to `hookgate serve`, e.g. HOOKGATE_ARGS="--log-level warn".
# HOOKGATE_BASELINE names another hookgate binary (the one before a change, say) that runs beside
# the current build, interleaved in the same rounds, and is compared with it. With BASELINE_API=1
# (a baseline that has the Web API) the baseline also answers chat.postMessage, from a spool of
# its own, and the two builds' calls are compared too.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-3}
conns=32
source benches/common.sh
ulimit -n 65536 2>/dev/null || ulimit -n 4096

backend_port=$(free_port); nginx_port=$(free_port); hookgate_port=$(free_port); admin_port=$(free_port)
njs_port=$(free_port)
njs_module=/usr/lib/nginx/modules/ngx_http_js_module.so
[ -e "$njs_module" ] || { echo "$njs_module is missing: apt-get install libnginx-mod-http-js" >&2; exit 1; }
nginx_tls_port=$(free_port); hookgate_tls_port=$(free_port)
baseline=${HOOKGATE_BASELINE:-}
baseline_port=$(free_port); baseline_admin_port=$(free_port)

# One EC P-256 certificate for both TLS listeners.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# What both nginx peers share: one worker, an access log line per request as hookgate writes
# one log line per request, keep-alive to the backend. The caller goes on inside `http {`.
nginx_head() {
  cat <<EOF
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log;
events { worker_connections 4096; }
http {
  access_log logs/access.log;
  client_body_temp_path logs/body; proxy_temp_path logs/proxy; fastcgi_temp_path logs/fcgi; uwsgi_temp_path logs/uwsgi; scgi_temp_path logs/scgi;
  keepalive_requests 1000000;
  upstream chat { server 127.0.0.1:$backend_port; keepalive 128; }
EOF
}
# The plain proxy.
mkdir -p "$work/proxy/logs"
{ nginx_head; cat <<EOF
  ssl_certificate $work/cert.pem;
  ssl_certificate_key $work/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen 127.0.0.1:$nginx_port;
    listen 127.0.0.1:$nginx_tls_port ssl;
    location /hooks/ {
      client_body_buffer_size 512k;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://chat;
    }
  }
}
EOF
} > "$work/proxy/nginx.conf"
# nginx + njs: the script translates and forwards through an internal location to the same
# keep-alive upstream; Slack's `ok` once the backend said 200.
mkdir -p "$work/njs/logs" "$work/njs/js"
{ echo "load_module $njs_module;"; nginx_head; cat <<EOF
  js_path js/;
  js_import main from hook.js;
  server {
    listen 127.0.0.1:$njs_port;
    location /hooks/ {
      client_body_buffer_size 512k;
      client_body_in_single_buffer on;
      js_content main.hook;
    }
    location = /forward {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Content-Type application/json;
      proxy_pass http://chat/hooks/abc123generatedkey;
    }
  }
}
EOF
} > "$work/njs/nginx.conf"
cat > "$work/njs/js/hook.js" <<'EOF'
var users = { U024BE7LH: 'alice' };
var channels = /^(builds$|@)/;
function hook(r) {
  var body = r.requestText || '';
  var msg;
  try {
    if ((r.headersIn['Content-Type'] || '').indexOf('application/x-www-form-urlencoded') === 0) {
      var field = /(?:^|&)payload=([^&]*)/.exec(body);
      body = field ? decodeURIComponent(field[1].replace(/\+/g, ' ')) : '';
    }
    msg = JSON.parse(body);
  } catch (e) {
    r.return(400, 'invalid_payload');
    return;
  }
  if (typeof msg.text !== 'string' || msg.text === '') {
    r.return(400, 'no_text');
    return;
  }
  var text = msg.text
    .replace(/<@(\w+)>/g, function (all, id) { return users[id] ? '@' + users[id] : all; })
    .replace(/<(https?:[^|>]+)\|([^>]+)>/g, '[$2]($1)')
    .replace(/\*([^*\n]+)\*/g, '**$1**');
  var out = { text: text, channel: channels.test(msg.channel || '') ? msg.channel : 'builds' };
  if (msg.username) out.username = msg.username;
  r.subrequest('/forward', { method: 'POST', body: JSON.stringify(out) }, function (reply) {
    r.headersOut['Content-Type'] = 'text/plain; charset=utf-8';
    if (reply.status === 200) r.return(200, 'ok');
    else r.return(502, 'backend_error');
  });
}
export default { hook };
EOF
# The backend the proxies forward to.
ok_backend "$backend_port"
nginx -p "$work/proxy" -c nginx.conf -g 'daemon off;' & pids+=($!)
nginx -p "$work/njs" -c nginx.conf -g 'daemon off;' & pids+=($!)

mkdir -p "$work/rules"
bench_rules "$backend_port" > "$work/rules/bench.toml"
# This build also serves HTTPS; a baseline binary may predate listen_tls, so it keeps the rules above.
mkdir -p "$work/rules-tls"
cp "$work/rules/bench.toml" "$work/rules-tls/"
cat > "$work/rules-tls/gateway.toml" <<EOF
[gateway]
listen_tls = "127.0.0.1:$hookgate_tls_port"
tls_cert = "$work/cert.pem"
tls_key = "$work/key.pem"
EOF
bench_bot_rules "$work/spool" >> "$work/rules-tls/gateway.toml"
start_hookgate() { # binary port admin_port name [rules]
  "$1" serve --rules "${5:-$work/rules}" --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" ${HOOKGATE_ARGS:-} \
    --pid-file "$work/$4.pid" --upgrade-sock "$work/$4.sock" >/dev/null 2>"$work/$4.log" &
}
cargo build --release --quiet
start_hookgate ./target/release/hookgate "$hookgate_port" "$admin_port" hookgate "$work/rules-tls"
hookgate_pid=$!; pids+=($hookgate_pid)
for port in "$backend_port" "$nginx_port" "$nginx_tls_port" "$njs_port" "$hookgate_port" "$hookgate_tls_port"; do wait_port "$port"; done
if [ -n "$baseline" ]; then
  baseline_rules="$work/rules"
  if [ -n "${BASELINE_API:-}" ]; then
    baseline_rules="$work/rules-baseline"; mkdir -p "$baseline_rules"
    { cat "$work/rules/bench.toml"; bench_bot_rules "$work/spool-baseline"; } > "$baseline_rules/bench.toml"
  fi
  start_hookgate "$baseline" "$baseline_port" "$baseline_admin_port" baseline "$baseline_rules"; baseline_pid=$!; pids+=($baseline_pid)
  wait_port "$baseline_port"
fi
nginx_worker=$(pgrep -P "$(cat "$work/proxy/logs/nginx.pid")" | head -1)
njs_worker=$(pgrep -P "$(cat "$work/njs/logs/nginx.pid")" | head -1)

# A typical 250-byte CI message, as JSON and as a form payload.
message='{"text":"Build *#4521* of hookgate/main passed in 3m12s by <@U024BE7LH>: 214 tests, 0 failures. <https://ci.example/builds/4521|Build log> and artifacts are ready.","username":"ci","icon_emoji":":white_check_mark:","channel":"builds"}'
form="payload=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$message")"
lua() { # body content-type
  python3 - "$1" "$2" <<'PY'
import json, sys
print('wrk.method = "POST"')
print('wrk.body = ' + json.dumps(sys.argv[1]))
print('wrk.headers["Content-Type"] = ' + json.dumps(sys.argv[2]))
PY
}
lua "$message" "application/json" > "$work/json.lua"
lua "$form" "application/x-www-form-urlencoded" > "$work/form.lua"
{ cat "$work/json.lua"; echo 'wrk.headers["Authorization"] = "Bearer xoxb-bench"'; } > "$work/api.lua"

# Sanity: all answer 200 to the message before anything is measured.
for url in "http://127.0.0.1:$hookgate_port/hooks/benchkey" "http://127.0.0.1:$nginx_port/hooks/benchkey" \
  "https://127.0.0.1:$hookgate_tls_port/hooks/benchkey" "https://127.0.0.1:$nginx_tls_port/hooks/benchkey" \
  "http://127.0.0.1:$njs_port/hooks/benchkey" \
  ${baseline:+"http://127.0.0.1:$baseline_port/hooks/benchkey"}; do
  code=$(curl -s --cacert "$work/cert.pem" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "$message" "$url")
  [ "$code" = 200 ] || { echo "$url answered $code" >&2; exit 1; }
done
answer=$(curl -s -H 'Content-Type: application/json' -H 'Authorization: Bearer xoxb-bench' --data "$message" \
  "http://127.0.0.1:$hookgate_port/api/chat.postMessage")
case $answer in '{"ok":true'*) ;; *) echo "chat.postMessage answered $answer" >&2; exit 1 ;; esac

results="$work/results.tsv"
: > "$results"
run() { # name pid url script
  local before after out
  before=$(cpu_ticks "$2")
  out=$(wrk -t1 -c$conns -d${secs}s --latency -s "$4" "$3")
  after=$(cpu_ticks "$2")
  echo "$out" | python3 -c '
import re, sys
name, ticks, tck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.stdin.read()
def dur(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    if not m:
        sys.exit(f"{name}: cannot read wrk output:\n{out}")
    n, u = m.groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[u]
reqs = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = dur(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = dur(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
bad = int(errors.group(1)) if errors else 0
cpu_us = ticks / tck * 1e6 / max(reqs, 1)
print(f"{name}\t{rps:.0f}\t{p50:.0f}\t{p99:.0f}\t{cpu_us:.1f}\t{reqs}\t{bad}")
' "$1" "$((after - before))" "$tck" >> "$results"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); wrk -t1 -c$conns, ${secs}s per run, $rounds rounds, interleaved"
# The order turns round each round: run with identical binaries, a fixed order measured the
# first one up to 19% dearer than the last, more than the differences looked for.
for round in $(seq 1 "$rounds"); do
  order="hookgate nginx njs baseline"
  [ $((round % 2)) = 0 ] && order="baseline njs nginx hookgate"
  for body in json form; do
    for who in $order; do
      case $who in
        hookgate) run "hookgate-$body" "$hookgate_pid" "http://127.0.0.1:$hookgate_port/hooks/benchkey" "$work/$body.lua" ;;
        nginx) run "nginx-$body" "$nginx_worker" "http://127.0.0.1:$nginx_port/hooks/benchkey" "$work/$body.lua" ;;
        njs) run "njs-$body" "$njs_worker" "http://127.0.0.1:$njs_port/hooks/benchkey" "$work/$body.lua" ;;
        baseline) [ -z "$baseline" ] || run "baseline-$body" "$baseline_pid" "http://127.0.0.1:$baseline_port/hooks/benchkey" "$work/$body.lua" ;;
      esac
    done
  done
  for who in $order; do
    case $who in
      hookgate)
        run "hookgate-tls-json" "$hookgate_pid" "https://127.0.0.1:$hookgate_tls_port/hooks/benchkey" "$work/json.lua"
        run "hookgate-api" "$hookgate_pid" "http://127.0.0.1:$hookgate_port/api/chat.postMessage" "$work/api.lua" ;;
      nginx) run "nginx-tls-json" "$nginx_worker" "https://127.0.0.1:$nginx_tls_port/hooks/benchkey" "$work/json.lua" ;;
      baseline) [ -z "$baseline" ] || [ -z "${BASELINE_API:-}" ] ||
        run "baseline-api" "$baseline_pid" "http://127.0.0.1:$baseline_port/api/chat.postMessage" "$work/api.lua" ;;
    esac
  done
done

# Memory: 1,000 concurrent connections for a few seconds to a fresh hookgate with the webhook's
# rules (no spool, so no page cache of the message map; docs/performance.md, "Connections"),
# then its peak RSS; and, for comparison, the peak of the process that served every round above.
fresh_port=$(free_port); fresh_admin_port=$(free_port)
start_hookgate ./target/release/hookgate "$fresh_port" "$fresh_admin_port" fresh; fresh_pid=$!; pids+=($fresh_pid)
wait_port "$fresh_port"
wrk -t2 -c1000 -d5s -s "$work/json.lua" "http://127.0.0.1:$fresh_port/hooks/benchkey" > "$work/wrk1000.txt"
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$fresh_pid/status")
thousand_rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk1000.txt")
wrk -t2 -c1000 -d5s -s "$work/json.lua" "http://127.0.0.1:$hookgate_port/hooks/benchkey" > /dev/null
served_kib=$(awk '/VmHWM/ {print $2}' "/proc/$hookgate_pid/status")

python3 - "$results" "$peak_kib" "$thousand_rps" "$served_kib" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
by = {}
for name, rps, p50, p99, cpu, reqs, bad in rows:
    by.setdefault(name, []).append((float(rps), float(p50), float(p99), float(cpu), int(bad)))
med = lambda name, i: statistics.median(r[i] for r in by[name])
print(f"{'run':<16}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}{'CPU us/req':>12}{'non-2xx':>10}")
for name in sorted(by):
    print(f"{name:<16}{med(name,0):>10.0f}{med(name,1):>10.0f}{med(name,2):>10.0f}{med(name,3):>12.1f}{sum(r[4] for r in by[name]):>10}")
print("medians over rounds; ratios hookgate/nginx:")
for body in ("json", "form", "tls-json"):
    h, n = f"hookgate-{body}", f"nginx-{body}"
    print(f"  {body}: CPU per request {med(h,3)/med(n,3):.2f}x, req/s {med(h,0)/med(n,0):.2f}x, p99 {med(h,2)/med(n,2):.2f}x")
    if f"baseline-{body}" in by:
        b = f"baseline-{body}"
        print(f"  {body}, baseline/nginx: CPU per request {med(b,3)/med(n,3):.2f}x; this build/baseline: {med(h,3)/med(b,3):.2f}x")
for body in ("json", "form"):
    h, j = f"hookgate-{body}", f"njs-{body}"
    print(f"  {body}, against nginx + njs: CPU per request {med(h,3)/med(j,3):.2f}x, req/s {med(h,0)/med(j,0):.2f}x; target <= 0.50")
api = med("hookgate-api", 3) / med("hookgate-json", 3)
print(f"chat.postMessage against the same message as a webhook: CPU per request {api:.2f}x, p99 {med('hookgate-api',2)/med('hookgate-json',2):.2f}x; target <= 1.10")
if "baseline-api" in by:
    print(f"chat.postMessage, this build/baseline: CPU per request {med('hookgate-api',3)/med('baseline-api',3):.2f}x; "
          f"baseline's call against its webhook: {med('baseline-api',3)/med('baseline-json',3):.2f}x")
plain = med("hookgate-json", 3) / med("nginx-json", 3)
tls = med("hookgate-tls-json", 3) / med("nginx-tls-json", 3)
print(f"TLS ratio {tls:.2f}x against the plain ratio {plain:.2f}x: {tls / plain:.2f} of it; target <= 1.10")
peak = int(sys.argv[2]) / 1024
print(f"hookgate peak RSS with 1,000 concurrent connections: {peak:.1f} MiB ({float(sys.argv[3]):.0f} req/s at c=1000); target < 48 MiB")
print(f"  the same after every round above (TLS, the Web API's map in its page cache): {int(sys.argv[4]) / 1024:.1f} MiB")
PY
