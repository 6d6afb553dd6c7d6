#!/usr/bin/env bash
# RSS after a burst: 2,000 streams of 10 s each (resumed once), then every client gone; the
# load test reads the server's RSS from /metrics before the run and after its streams have
# closed, and prints the growth. This is .ci/run's burst gate, for any server binary.
#
# usage: scripts/burst-memory.sh [SERVER COMMAND...]
# default server: ./target/release/sse-digits; the address 127.0.0.1:18080 is appended.
# LOADTEST names the load test's binary (default ./target/release/loadtest).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  set -- ./target/release/sse-digits
fi
ulimit -n "$(ulimit -Hn)"
"$@" --bind 127.0.0.1:18080 --max-stream-secs 10 --retry-ms 500 > /dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:18080/healthz && break
  sleep 0.1
done
"${LOADTEST:-./target/release/loadtest}" --host http://127.0.0.1:18080 --users 2000 \
  --increase-rate 1000 --run-time 15s --interval-ms 100 --server-pid "$server" \
  --progress-secs 0 --gate-max-rss-growth-pct 10 | grep -iE 'server after|rss' || true
