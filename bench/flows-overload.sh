#!/usr/bin/env bash
# Flow overload: offer IPFIX as fast as the generator goes (several times
# what the engine applies) for SECS seconds and watch what the server does
# with the excess. Every 0.5 s: records decoded but not yet applied (the
# queue between the collector and the engine), RSS, and the latency of
# GET /api/v1/status (which reads engine state under its lock). Then how
# long after the last send everything decoded was applied, and the kernel
# drops on the server's socket (where the excess should go: counted there,
# not queued in memory).
#
# usage: bench/flows-overload.sh
# Environment: SECS (15), DEVICES (10000), SOCKETS (1), SKIP_BUILD=1,
# KEEP=1, SG_LOG (warn), QUIET_WAIT. Bounded: SECS + 100 s after the build.

set -euo pipefail
FLOWS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/flows-throughput.sh
source "$FLOWS_DIR/flows-throughput.sh"

SECS=${SECS:-15}

# Every 0.5 s: "elapsed decoded applied rss_kib status_ms".
overload_sampler() {
  local t0 c rss ms
  t0=$(date +%s.%N)
  while kill -0 "$SG_PID" 2>/dev/null; do
    ms=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
      "http://$SG_HTTP/api/v1/status" 2>/dev/null | awk '{printf "%.0f", $1 * 1000}')
    c=$(flow_counts 2>/dev/null) || c="0 0"
    rss=$(awk '/VmRSS/ {print $2}' /proc/"$SG_PID"/status 2>/dev/null || echo 0)
    echo "$(echo "$(date +%s.%N) - $t0" | bc -l) $(echo "$c" | awk '{print $1, $2}') $rss ${ms:-0}"
    sleep 0.5
  done
}

main() {
  trap flows_cleanup EXIT INT TERM
  flows_build
  flows_machine
  echo "generator: ipfix_blast, $SOCKETS socket(s), as fast as it goes for $SECS s"
  echo "simguard: $(cd "$FLOWS_ROOT" && git rev-parse --short HEAD)$(cd "$FLOWS_ROOT" && git diff --quiet HEAD -- crates || echo ' + uncommitted changes in crates/')"
  wait_quiet
  start_watchdog $(( SECS + 100 ))
  start_simguard_flows
  provision_sessions "$DEVICES"
  local port=${SG_IPFIX##*:} c0 c1 d0 d1 k0 k1 t_sent t1 out
  c0=$(flow_counts); d0=$(sock_drops "$port"); k0=$(proc_ticks "$SG_PID")
  overload_sampler >"$WORK/timeline" &
  local sp=$!
  PIDS+=("$sp")
  out=$(timeout $(( SECS + 30 )) "$BLAST" --target "$SG_IPFIX" --rate 0 --seconds "$SECS" \
    --sockets "$SOCKETS" --hosts "$DEVICES" --seed 11)
  t_sent=$(date +%s.%N)
  c1=$(wait_drained 60)
  t1=$(date +%s.%N); d1=$(sock_drops "$port"); k1=$(proc_ticks "$SG_PID")
  sleep 1
  kill "$sp" 2>/dev/null || true
  local hwm; hwm=$(awk '/VmHWM/ {print $2}' /proc/"$SG_PID"/status)
  $PY - "$out" "$c0" "$c1" "$d0" "$d1" "$t_sent" "$t1" "$hwm" "$k0" "$k1" "$CLK_TCK" "$WORK/timeline" <<'EOF'
import json, sys
out, c0, c1, d0, d1, t_sent, t1, hwm, k0, k1, hz, timeline = sys.argv[1:]
j = json.loads(out)
a = [int(x) for x in c0.split()]; b = [int(x) for x in c1.split()]
sent = j["records_per_target"]
dec, app = b[0] - a[0], b[1] - a[1]
print()
print("| time (s) | decoded - applied | RSS | GET /api/v1/status |")
print("|---|---|---|---|")
worst_q = worst_ms = worst_rss = 0
for line in open(timeline):
    p = line.split()
    if len(p) < 5:
        continue
    q = int(p[1]) - int(p[2]); rss = int(p[3]); ms = int(p[4])
    worst_q, worst_ms, worst_rss = max(worst_q, q), max(worst_ms, ms), max(worst_rss, rss)
    print("| %.1f | %d | %.0f MiB | %d ms |" % (float(p[0]), q, rss / 1024, ms))
print()
cpu = (int(k1) - int(k0)) / int(hz)
print("sent %d records (%.0f/s) in %.1f s; decoded %d; applied %d; kernel drops on the server socket %d datagrams"
      % (sent, j["records_per_s"], j["seconds"], dec, app, int(d1) - int(d0)))
print("applied %.0f records/s over the run; everything decoded applied %.2f s after the last send; server CPU %.2f s (%.0f records per CPU-s)"
      % (app / (j["seconds"] + float(t1) - float(t_sent)), float(t1) - float(t_sent), cpu, app / cpu if cpu else 0))
print("largest queue %d records; largest RSS %.0f MiB (VmHWM %.0f MiB); slowest status %d ms"
      % (worst_q, worst_rss / 1024, int(hwm) / 1024, worst_ms))
EOF
}

main "$@"
