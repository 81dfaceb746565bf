#!/usr/bin/env bash
# Installs what the tests need and runs them all: Go unit tests (race detector), a short
# fuzz of the parsers, and the end-to-end suites that drive the real binary with the
# real socket.io-client 2.x and 4.x and headless Chromium. Fails when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# A count, not a duration: a duration-based -fuzztime can fail with a bare "context
# deadline exceeded" and no crasher on go1.26 (golang/go#75804, a race in the fuzz
# coordinator at the deadline, fixed in go1.27). About 15 s here.
FUZZTIME="${FUZZTIME:-300000x}"

step() { printf '\n==> %s\n' "$*"; }

# System packages: Debian's chromium for the browser test, redis-server for many-node mode,
# nginx for the deploy kit's test (e2e/deploy.test.mjs runs deploy/nginx.conf).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
# buildah for the container image's test (scripts/container-test.sh): 12 packages, about
# 30 s to install, 10 s to run.
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "npm ci (e2e, example-client, bench/node)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd example-client && npm ci --no-audit --no-fund --loglevel=error)
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error)

step "go vet"
go vet ./...

step "go test -race"
go test -race -count=1 ./...

step "bench module: go vet, go test -race"
(cd bench && go vet ./... && go test -race -count=1 ./...)

step "fuzz (${FUZZTIME} each)"
go test -run '^$' -fuzz '^FuzzDecodePacket$' -fuzztime "$FUZZTIME" ./server/wire
go test -run '^$' -fuzz '^FuzzHandOffPayload$' -fuzztime "$FUZZTIME" ./server/socket/eio3
go test -run '^$' -fuzz '^FuzzAnswersAsParseQuery$' -fuzztime "$FUZZTIME" ./server/query

step "end-to-end"
mkdir -p .bin
go build -o .bin/jetsocket .
(cd e2e && CLIENT_MAJOR=2 JETSOCKET_BIN="$PWD/../.bin/jetsocket" node --test --test-concurrency=1 ./)

# The same suites again with socket.io-client 4.8 (Engine.IO v4, token in `auth`): every
# suite that drives socket.io-client takes its major from CLIENT_MAJOR (e2e/helpers/clients.mjs).
# Left out: suites that never open a socket.io-client (browser, jsclient-browser/-unit, example-client:
# their own clients), or use one only as a health probe (malformed: raw Engine.IO v3 frames;
# login: HTTP).
step "end-to-end, socket.io-client 4.x"
v4_suites=(badinput channels client-events cluster config delegated deploy encrypted extending handshake history
  http-api jsclient jwks origins presence protocol pusher-socketio pusher-watchlist recovery reliability shutdown slow-consumer tls)
(cd e2e && CLIENT_MAJOR=4 JETSOCKET_BIN="$PWD/../.bin/jetsocket" node --test --test-concurrency=1 \
  "${v4_suites[@]/%/.test.mjs}")

# The systemd unit, checked by systemd's own tools where they are (systemd-analyze).
if command -v systemd-analyze >/dev/null 2>&1; then
  step "systemd unit (systemd-analyze)"
  scripts/unit-check.sh
fi

# The container image: built from deploy/Containerfile, its binary run from the mounted
# image as the image's user (this machine cannot run containers themselves).
if command -v buildah >/dev/null 2>&1; then
  step "container image (buildah)"
  # Root: buildah's storage and the chroot into the image need it.
  if [ "$(id -u)" -eq 0 ]; then scripts/container-test.sh; else sudo env "PATH=$PATH" scripts/container-test.sh; fi
else
  step "container image: skipped, buildah not installed"
fi

# The benchmark's whole pipeline at a small N: both servers, the load tool with both client
# generations (Engine.IO v3 and v4) and Pusher protocol 7 (Jetsocket only), the report and the plot. -strict fails on any lost
# message or failed connection; the figures themselves are never asserted (BENCHMARKS.md).
step "benchmark smoke run (small N)"
(cd bench && go build -o ../.bin/jetbench ./cmd/jetbench)
smoke_out="$(mktemp -d)"
.bin/jetbench compare -jetsocket .bin/jetsocket -node bench/node -n 50 -events 3 -burst 3 \
  -settle 200ms -concurrency 10 -eio 3,4,pusher -strict -out "$smoke_out"
test -s "$smoke_out/report.md" && test -s "$smoke_out/latency.png" && test -s "$smoke_out/results.json"
rm -rf "$smoke_out"

# The cluster bench at a small size (about 10 s): three nodes on a redis-server, nginx with
# deploy/nginx.conf in front, and the per-channel layouts; it fails on a lost message, a
# failed connection or a process that will not start. BENCHMARKS.md has the real figures.
step "cluster bench smoke run (small N)"
.bin/jetbench cluster -require -jetsocket .bin/jetsocket -rounds 1 -n 60 -events 3 -burst 3 \
  -channels 12 -per-channel 2 -publications 240

# The leak soak at a small N: connect/subscribe/disconnect cycles of every quick kind,
# then goroutines, RSS and the live heap must return to their warm baseline (exit 1 on a
# leak or a failed cycle). BENCHMARKS.md has the 10,000-cycle figures.
step "soak smoke run (small N)"
.bin/jetbench soak -jetsocket .bin/jetsocket -cycles 300 -warmup 100 -concurrency 8
