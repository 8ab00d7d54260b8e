#!/usr/bin/env bash
# Load test of the edge-ingestion server (examples/ingest_server.ts) with wrk over loopback.
# Starts the server on a fresh data directory, runs wrk for each batch size and connection count,
# prints a Markdown table (req/s, events/s, p50/p99/max latency; every 200 is durable).
#
# Usage: bash bench/ingest_wrk.sh [DIR]
#   DIR       data directory on the disk to measure (default /var/tmp/percore-ingest-bench; not tmpfs)
#   DURATION  seconds per run (default 15)     CONNS   connection counts (default "4 16 64")
#   BATCHES   events per request (default "1 64")   CORES/WORKERS  server cores / HTTP Workers
#   THREADS   wrk threads (default 2)          BACKEND auto|io_uring|sync (default auto)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/var/tmp/percore-ingest-bench}
duration=${DURATION:-15}
conns=${CONNS:-"4 16 64"}
batches=${BATCHES:-"1 64"}
cores=${CORES:-$(nproc)}
workers=${WORKERS:-$cores}
threads=${THREADS:-2}
backend=${BACKEND:-auto}

if ! command -v wrk >/dev/null; then
  echo "wrk is missing: installing it with apt-get" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y wrk >&2; else sudo apt-get install -y wrk >&2; fi
fi

rm -rf "$dir"
mkdir -p "$dir"
log="$dir.server.log"
deno run --allow-read --allow-write --allow-ffi --allow-env --allow-net --unstable-net \
  examples/ingest_server.ts --dir "$dir" --port 0 --cores "$cores" --workers "$workers" \
  --backend "$backend" --max-body-bytes 1048576 >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "Listening on" "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
echo "server: $(grep 'Listening on' "$log")" >&2

echo "| events/request | connections | req/s | events/s | p50 ms | p99 ms | max ms | non-200 | socket errors |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for b in $batches; do
  for c in $conns; do
    out=$(BATCH=$b wrk -t"$threads" -c"$c" -d"${duration}s" --latency -s bench/ingest_post.lua "$url")
    echo "$out" >>"$dir.wrk.log"
    r=$(echo "$out" | grep '^RESULT')
    get() { echo "$r" | grep -o "$1=[^ ]*" | cut -d= -f2; }
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$b" "$c" "$(get req_per_s)" \
      "$(get events_per_s)" "$(get p50_ms)" "$(get p99_ms)" "$(get max_ms)" "$(get non200)" \
      "$(get errors)"
  done
done
# Baseline: the same HTTP Workers answering 404 without touching the WAL (GET /nope).
out=$(wrk -t"$threads" -c16 -d"${duration}s" --latency "${url}nope")
echo "$out" >>"$dir.wrk.log"
rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
echo "| baseline: GET /nope (404, no WAL) | 16 | $rps | - | $p50 | $p99 | - | all 404 | - |"
metrics=$(curl -sS "${url}metrics" || true)
echo >&2
echo "$metrics" | grep -E '^(percore_wal_backend_info|ingest_events_acknowledged_total|ingest_http_responses_total\{code="(200|503)"\}|percore_wal_fdatasyncs_total|percore_wal_fdatasync_latency_seconds_(sum|count))' >&2 || true
kill -TERM $server
wait $server || true
trap - EXIT
tail -2 "$log" >&2
rm -rf "$dir"
