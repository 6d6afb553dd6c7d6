# Shared by deploy/run-local and deploy/rolling-restart (sourced, not run): starting one
# instance and waiting for it to answer /healthz. Expects $state and $bin.

# Waits until http://127.0.0.1:PORT/healthz answers 200 (at most 10 s).
wait_healthy() {
  for _ in $(seq 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "deploy: the instance on port $1 did not answer /healthz" >&2
  return 1
}

# Starts one instance on PORT with the flags saved in $state/server-flags, records its pid
# in $state/instance-PORT.pid, and waits until it is healthy.
start_instance() {
  local port=$1
  local flags=()
  mapfile -t flags < "$state/server-flags"
  "$bin" --bind "127.0.0.1:$port" "${flags[@]}" >> "$state/instance-$port.log" 2>&1 &
  echo $! > "$state/instance-$port.pid"
  wait_healthy "$port"
}

# Whether process PID is still running (a zombie that nobody reaped has exited).
running() {
  local stat
  stat=$(sed -E 's/^.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$stat" ] && [ "$stat" != Z ]
}
