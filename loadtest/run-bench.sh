#!/usr/bin/env bash
# The whole benchmark on this machine: start Kafka, the API and the
# consumer(s) with `hello-dev up` on free loopback ports, run `hello-load
# bench` against them and the echo server, then stop everything.
#
#   loadtest/run-bench.sh [hello-load bench options...]
#   CONSUMERS=2 loadtest/run-bench.sh --json-summary /tmp/bench.json
#
# Run from the repository root with the virtualenv at .venv.
set -euo pipefail

venv="${VENV:-.venv}"
consumers="${CONSUMERS:-1}"
workdir="$(mktemp -d -t hello-bench-XXXXXX)"
read -r api_port kafka_port < <("$venv/bin/python" -c \
  'from hello_dev.ports import free_port; print(free_port(), free_port())')

"$venv/bin/hello-dev" up --api-port "$api_port" --kafka-port "$kafka_port" \
  --consumers "$consumers" --workdir "$workdir" >"$workdir/up.log" 2>&1 &
up_pid=$!
cleanup() {
  kill -TERM "$up_pid" 2>/dev/null || true
  wait "$up_pid" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 180); do
  if grep -q "hello-platform is running" "$workdir/up.log"; then
    break
  fi
  if ! kill -0 "$up_pid" 2>/dev/null; then
    echo "hello-dev up exited early; its log:" >&2
    tail -n 50 "$workdir/up.log" >&2
    exit 3
  fi
  sleep 1
done
grep -q "hello-platform is running" "$workdir/up.log" || {
  echo "the pipeline was not up after 180 s; see $workdir" >&2
  exit 3
}

"$venv/bin/hello-load" bench --api-target "127.0.0.1:$api_port" \
  --bootstrap-servers "127.0.0.1:$kafka_port" "$@"
