#!/usr/bin/env bash
# Counts the user-space instructions a server spends per event, with valgrind's callgrind:
# instruction counts are repeatable where wall-clock CPU on a shared machine is not. Both
# servers make the same syscalls per event (one send), so the kernel's share is the same and
# the user-space count is what tells them apart.
#
# usage: scripts/instructions-per-event.sh NAME "SERVER COMMAND (binding 127.0.0.1:8099)"
# Runs the server under callgrind twice, with a short and a long load (200 streams x 10/s),
# and prints (instructions_long - instructions_short) / (events_long - events_short): the
# marginal cost of one event, start-up and connection set-up cancelled out. LOADTEST names
# the load test binary (default target/release/loadtest).
set -euo pipefail
name=$1; server=$2
here=$(cd "$(dirname "$0")/.." && pwd)
loadtest="${LOADTEST:-$here/target/release/loadtest}"
out=$(mktemp -d)
measure() {
  local secs=$1
  valgrind --tool=callgrind --callgrind-out-file="$out/$name-$secs.cg" $server > "$out/server.log" 2>&1 &
  local vg=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null http://127.0.0.1:8099/digits?count=1 && break
    sleep 0.2
  done
  "$loadtest" --host http://127.0.0.1:8099 -u 200 -r 200 -t "${secs}s" --interval-ms 100 \
    --progress-secs 0 --summary-json "$out/$name-$secs.json" > /dev/null 2>&1
  kill -INT $vg; wait $vg || true
  local instructions events
  instructions=$(grep -m1 '^summary:' "$out/$name-$secs.cg" | awk '{print $2}')
  events=$(python3 -c "import json;print(json.load(open('$out/$name-$secs.json'))['counters']['events'])")
  echo "$instructions $events"
}
read -r i_short e_short < <(measure 5)
read -r i_long e_long < <(measure 15)
python3 - "$name" "$i_short" "$e_short" "$i_long" "$e_long" <<'PY'
import sys
name, i1, e1, i2, e2 = sys.argv[1], *map(int, sys.argv[2:])
print(f"{name}: {(i2 - i1) / (e2 - e1):,.0f} user-space instructions per event "
      f"({i1:,} instr / {e1:,} events over 5 s, {i2:,} / {e2:,} over 15 s)")
PY
rm -rf "$out"
