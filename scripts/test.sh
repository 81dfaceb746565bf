#!/usr/bin/env bash
# Installs what the tests need and runs them all: Go unit tests (race detector), a short
# fuzz of the parsers, and the end-to-end suites that drive the real binary with the
# real socket.io-client 2.x and headless Chromium. Fails when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-15s}"

step() { printf '\n==> %s\n' "$*"; }

# System packages: Debian's chromium for the browser test.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "npm ci (e2e, example-client)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd example-client && npm ci --no-audit --no-fund --loglevel=error)

step "go vet"
go vet ./...

step "go test -race"
go test -race -count=1 ./...

step "fuzz (${FUZZTIME} each)"
go test -run '^$' -fuzz '^FuzzDecodePacket$' -fuzztime "$FUZZTIME" ./server/socket

step "end-to-end"
mkdir -p .bin
go build -o .bin/jetsocket .
(cd e2e && JETSOCKET_BIN="$PWD/../.bin/jetsocket" node --test --test-concurrency=1 ./)
