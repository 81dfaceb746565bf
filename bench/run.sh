#!/usr/bin/env bash
# The benchmark in one command: builds Jetsocket, the load tool and the Node socket.io 4
# reference server, runs both servers in turn under the same load, and writes
# bench/results/ (report.md, results.json, latency.png, go-bench.txt). See BENCHMARKS.md.
#   N=2000,10000 bash bench/run.sh [jetbench compare flags]
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-1000,2000,5000,10000}"
# Each side holds N sockets; the load tool spreads them over 16 loopback addresses.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p .bin bench/results
go build -o .bin/jetsocket .
(cd bench && go build -o ../.bin/jetbench ./cmd/jetbench)
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error)

.bin/jetbench compare -jetsocket .bin/jetsocket -node bench/node -n "$N" -out bench/results "$@"

# Go micro-benchmarks: token verification, channel rules, payload codec, hub fan-out.
go test -run '^$' -bench . -benchmem -count 1 ./tokens ./server/channels ./server/socket ./server/wire ./server/hub | tee bench/results/go-bench.txt
