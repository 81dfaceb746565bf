#!/usr/bin/env bash
# Checks deploy/jetsocket.service with systemd's own tools: `systemd-analyze verify` (unknown
# keys, keys in the wrong section, a bad ExecStart) and the offline security score, which
# must stay at 2.0 or below ("OK"). The unit's paths point at this build for the check.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin="$PWD/.bin/jetsocket"
[ -x "$bin" ] || go build -o "$bin" .
touch "$work/jetsocket.env"
sed -e "s#/usr/local/bin/jetsocket#$bin#" -e "s#/etc/jetsocket/jetsocket.env#$work/jetsocket.env#" \
  deploy/jetsocket.service >"$work/jetsocket.service"
# verify prints problems as warnings and still exits 0 for some: any output fails.
out="$(systemd-analyze verify "$work/jetsocket.service" 2>&1 || echo "exit $?")"
[ -z "$out" ] || { echo "unit-check: systemd-analyze verify:"; echo "$out"; exit 1; } >&2
score="$(systemd-analyze security --offline=yes "$work/jetsocket.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
[ -n "$score" ] || { echo "unit-check: no security score" >&2; exit 1; }
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { echo "unit-check: exposure $score, above 2.0" >&2; exit 1; }
echo "unit-check: ok (systemd-analyze verify clean; exposure $score)"
