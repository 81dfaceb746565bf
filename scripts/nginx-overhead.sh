#!/usr/bin/env bash
# Measures what nginx (deploy/nginx.conf, as the e2e test renders it) costs: jetbench's
# fan-out latency and burst rate through nginx and straight to the node nginx picks,
# interleaved, with three nodes on one redis-server. All load comes from 127.0.0.1
# (-sources 1), so through nginx every client lands on that one node: the two runs differ
# only by the nginx hop. Figures go to stdout; docs/production.md has a run's.
#   scripts/nginx-overhead.sh [N] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"; ROUNDS="${2:-2}"
mkdir -p .bin
go build -o .bin/jetsocket .
(cd bench && go build -o ../.bin/jetbench ./cmd/jetbench)
dir="$(mktemp -d)"; chmod 755 "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
start_of() { curl -fsS "$1/metrics" | awk '/^process_start_time_seconds /{print $2}'; }

rp="$(free)"
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & pids+=($!)
export APP_ID=1 APP_KEY=benchkey APP_SECRET=bench-secret-0123456789 \
  JWT_SECRET=bench-jwt-secret-0123456789abcdef0123 REDIS_URL="redis://127.0.0.1:$rp/0" \
  LOG_LEVEL=warn MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS_PER_USER=0 TRUSTED_PROXIES=127.0.0.1
ports=()
for i in 1 2 3; do
  p="$(free)"; ADDR="127.0.0.1:$p" .bin/jetsocket -env-file /dev/null >"$dir/node$i.log" 2>&1 & pids+=($!); ports+=("$p")
  until curl -fsS "http://127.0.0.1:$p/healthz" >/dev/null 2>&1; do sleep 0.1; done
done
np="$(free)"
awk -v np="$np" -v list="${ports[*]}" '
/# BEGIN upstream servers/ { print; n = split(list, ps, " "); for (i = 1; i <= n; i++) print "    server 127.0.0.1:" ps[i] ";"; skip = 1; next }
/# END upstream servers/ { skip = 0 }
skip { next }
/# listen$/ { sub(/listen [^;]*;/, "listen 127.0.0.1:" np ";") }
{ print }' deploy/nginx.conf >"$dir/site.conf"
cat >"$dir/nginx.conf" <<EOC
worker_processes auto;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http { access_log off; client_body_temp_path $dir/b; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f;
  uwsgi_temp_path $dir/u; scgi_temp_path $dir/s; include $dir/site.conf; }
EOC
nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' & pids+=($!)
until curl -fsS "http://127.0.0.1:$np/healthz" >/dev/null 2>&1; do sleep 0.1; done

via="$(start_of "http://127.0.0.1:$np")"; direct=""
for p in "${ports[@]}"; do [ "$(start_of "http://127.0.0.1:$p")" = "$via" ] && direct="$p"; done
[ -n "$direct" ] || { echo "nginx-overhead: cannot tell which node nginx picks" >&2; exit 1; }
for round in $(seq 1 "$ROUNDS"); do
  for target in "nginx 127.0.0.1:$np" "direct 127.0.0.1:$direct"; do
    set -- $target
    echo "== round $round, $1"
    .bin/jetbench run -url "http://$2" -n "$N" -eio 3,4 -sources 1 -events 30 -burst 30 -settle 500ms | grep -E 'connected|latency'
  done
done
