# Shared by bench/serve.sh and bench/serve_ab.sh (sourced, not run).

# Starts pagan-serve binary $1 on 127.0.0.1:$2 over models/, sets SERVER_PID, waits for /healthz.
start_server() {
  RUST_LOG=warn "$1" --models models --bind "127.0.0.1:$2" &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return 0; sleep 0.3; done
  echo "pagan-serve ($1) did not answer /healthz on port $2" >&2
  return 1
}

# One markdown row "| clients | requests/s | p50 | p99 |" from wrk on URL $1 with $2 clients for $3.
wrk_row() {
  local out
  out=$(wrk -t"$(( $2 < 2 ? 1 : 2 ))" -c"$2" -d"$3" --latency "$1")
  echo "| $2 | $(awk '/Requests\/sec/ {print $2}' <<<"$out") | $(awk '$1 == "50%" {print $2}' <<<"$out") | $(awk '$1 == "99%" {print $2}' <<<"$out") |"
}
