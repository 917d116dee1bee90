#!/usr/bin/env bash
# How tests/data/spool-v0 was made (tests/formats.rs reads it): with a hookgate built at commit
# 7cef4c9, the release before spool format versions, and nats-server 2.9 from Debian. Run as
#   make.sh OLD_HOOKGATE_BINARY OUTDIR
# then checkpoint OUTDIR/embedded/spool.sqlite3 into one file (journal_mode=DELETE) and drop
# its ballast, worker.lock, -wal and -shm files. Ports 18080, 18081, 18404 and 14222 must be free.
set -euo pipefail
BIN=${1:?binary}; OUT=${2:?outdir}
rm -rf "$OUT"; mkdir -p "$OUT"
work=$(mktemp -d)
# A backend that answers 404 to everything: the hook `gone` gets a dead letter.
python3 - <<'PY' &
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('content-length', 0)); self.rfile.read(n)
        self.send_response(404); self.send_header('content-length', '0'); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', 18404), H).serve_forever()
PY
py=$!
trap 'kill $py 2>/dev/null || true' EXIT
sleep 0.5
for engine in embedded nats; do
  rules=$work/$engine; mkdir -p "$rules"
  if [ $engine = nats ]; then
    mkdir -p "$OUT/nats-js"
    printf 'listen: 127.0.0.1:14222\njetstream { store_dir: "%s" }\n' "$OUT/nats-js" > $work/nats.conf
    nats-server -c $work/nats.conf -l $work/nats.log & nats=$!
    sleep 1
    spool='[spool]
engine = "nats"
nats_urls = ["nats://127.0.0.1:14222"]
retry_initial = "200ms"
retry_max = "1s"'
  else
    spool="[spool]
path = \"$OUT/embedded\"
retry_initial = \"200ms\"
retry_max = \"1s\""
  fi
  cat > $rules/rules.toml <<TOML
$spool

[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:1"
max_message_chars = 20

[backends.refusing]
kind = "mattermost"
url = "http://127.0.0.1:18404"

[backends.room]
kind = "matrix"
url = "http://127.0.0.1:1"
server_name = "localhost"
access_token = "token"

[[hooks]]
name = "alerts"
key = "key-alerts"
backend = "chat"
backend_key = "mmalerts"
delivery = "spool"

[[hooks]]
name = "rooms"
key = "key-rooms"
backend = "room"
room = "#alerts:localhost"
delivery = "spool"

[[hooks]]
name = "gone"
key = "key-gone"
backend = "refusing"
backend_key = "mmgone"
delivery = "spool"
TOML
  "$BIN" serve --rules $rules --listen 127.0.0.1:18080 --admin-listen 127.0.0.1:18081 >$work/$engine.out 2>$work/$engine.err & gw=$!
  for i in $(seq 50); do curl -s -o /dev/null 127.0.0.1:18081/metrics && break; sleep 0.1; done
  post() { curl -s -H "X-Request-Id: $3" -H 'Content-Type: application/json' -d "$2" 127.0.0.1:18080/hooks/$1; echo " <- $1 $3"; }
  post key-alerts '{"text":"first"}' v0-alerts-1
  post key-alerts '{"text":"a second message, long enough to be split in two"}' v0-alerts-2
  post key-alerts '{"text":"third","username":"ci","attachments":[{"title":"build","text":"green","color":"#00ff00"}]}' v0-alerts-3
  post key-rooms '{"text":"to the **room**"}' v0-rooms-1
  post key-gone '{"text":"refused"}' v0-gone-1
  sleep 3
  curl -s 127.0.0.1:18081/spool; echo
  curl -s '127.0.0.1:18081/spool/gone/dead?payload=1'; echo
  kill -TERM $gw; wait $gw || true
  if [ $engine = nats ]; then kill -TERM $nats; wait $nats || true; fi
done
ls -laR "$OUT"
