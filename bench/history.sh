#!/usr/bin/env bash
# History's cost on the publish path under the load tool (BENCHMARKS.md, "History"): one
# node, N connections on one channel, history off (HISTORY_SIZE=0) and on (the default,
# 100 publications, 2 minutes), alternated ROUNDS times; then the Go benchmarks of
# bench/history (2,000 in-process subscribers, memory per channel, replay of 100, and
# the same against a local redis-server when one is installed).
#   N=2000 ROUNDS=3 bash bench/history.sh     (GO_BENCH=0: the load runs only; APPEND=1: add
#   to bench/results/history.txt instead of starting it again)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-2000}"
ROUNDS="${ROUNDS:-3}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p .bin bench/results
go build -o .bin/jetsocket .
(cd bench && go build -o ../.bin/jetbench ./cmd/jetbench)
out=bench/results/history.txt
[ "${APPEND:-0}" = 1 ] || : >"$out"
export APP_ID=bench APP_KEY=bench-key APP_SECRET=bench-secret-0123456789 JWT_SECRET=bench-jwt-secret-0123456789abcdef0123
port=18731
for round in $(seq "$ROUNDS"); do
  for size in 0 100; do
    HISTORY_SIZE=$size ADDR=127.0.0.1:$port APP_ENV=development LOG_LEVEL=warn MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS_PER_USER=0 \
      .bin/jetsocket -env-file "" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    echo "== round $round HISTORY_SIZE=$size" | tee -a "$out"
    .bin/jetbench run -url "http://127.0.0.1:$port" -pid "$pid" -n "$N" -eio 3 2>&1 | tee -a "$out"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
if [ "${GO_BENCH:-1}" = 1 ]; then
  (cd bench && go test -run '^$' -bench . -benchmem -count 3 ./history) | tee -a "$out"
fi
