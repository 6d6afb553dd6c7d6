#!/usr/bin/env bash
# Measures a server as its own process: it runs pinned to CPU 0, the load test pinned to
# CPU 1 reads the server's RSS and CPU from /proc (--server-pid). Loopback only.
#
# usage: scripts/measure-server.sh USERS SECS INTERVAL_MS [SERVER COMMAND...]
# LOADTEST_ARGS adds options to the load test (e.g. LOADTEST_ARGS="--transport raw");
# LOADTEST names its binary (default ./target/release/loadtest).
# default server: ./target/release/sse-digits --bind 127.0.0.1:8080 --workers 1
# e.g.   scripts/measure-server.sh 10000 30 100
#        scripts/measure-server.sh 10000 30 100 peers/lab-sse/target/release/lab-sse 127.0.0.1:8080 1
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:?users}; secs=${2:?seconds}; interval=${3:?interval ms}; shift 3
if [ $# -eq 0 ]; then
  set -- ./target/release/sse-digits --bind 127.0.0.1:8080 --workers 1
fi
ulimit -n "$(ulimit -Hn)"
taskset -c 0 "$@" > /dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:8080/digits?count=1 && break
  sleep 0.1
done
taskset -c 1 "${LOADTEST:-./target/release/loadtest}" --host http://127.0.0.1:8080 -u "$users" -r 2000 \
  -t "${secs}s" --interval-ms "$interval" --server-pid "$server" \
  --source-addrs 127.0.0.1-127.0.0.4 --progress-secs 0 ${LOADTEST_ARGS:-} | sed -n '/=== SSE summary/,$p'
