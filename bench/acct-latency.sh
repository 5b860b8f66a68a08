#!/usr/bin/env bash
# Answer latency of simguard's durable accounting at HALF its maximum rate
# (target: p99 < 10 ms), with FreeRADIUS + detail at the same rate for
# comparison. 127.0.0.1 only.
#
#   bench/acct-latency.sh               # finds the max with a short ladder first
#   MAX_RATE=56000 bench/acct-latency.sh  # or give the max measured by acct-throughput.sh
#
# Reports the simulator's client-side p50/p99/max (send to answer, measured
# with an HDR histogram) and simguard's own server-side view from /metrics:
# simguard_radius_acct_answer_seconds (receive to answer sent) and
# simguard_journal_fsync_seconds (fdatasync), as bucket upper bounds.
set -euo pipefail
# 64 sockets x 256 ids = 16,384 requests in flight: with 4,096 (16 sockets)
# one 50 ms fdatasync stall at 80k/s fills the window and the simulator
# stops sending, under-reporting what the server can do.
export SIM_SOCKETS=${SIM_SOCKETS:-64}
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT INT TERM

SECS=${SECS:-20}
FIND_RATES=${FIND_RATES:-"60000 80000 100000 120000 150000"}
FIND_SECS=${FIND_SECS:-5}

echo "# simguard accounting latency at half the max rate, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
machine
echo "repository: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
echo
build_simguard
wait_quiet
start_simguard

if [ -z "${MAX_RATE:-}" ]; then
  MAX_RATE=0
  for r in $FIND_RATES; do
    read -r ans _ <<<"$(run_sim "$SG_ACCT" "$r" "$FIND_SECS" | sim_fields)"
    echo "  finding max: offered $r/s -> answered $ans/s"
    # Saturated once more offered load no longer adds 3% answered.
    if [ "$ans" -lt $(( MAX_RATE * 103 / 100 )) ]; then
      [ "$ans" -gt "$MAX_RATE" ] && MAX_RATE=$ans
      break
    fi
    MAX_RATE=$ans
  done
  # Let the journal and the engine settle before the measured run.
  sleep 2
fi
HALF=$(( MAX_RATE / 2 ))
echo "max answered/s: $MAX_RATE -> measuring at $HALF/s for $SECS s"
echo

show() {
  # $1 name, $2 json
  read -r ans p50 p99 to sent answered _ <<<"$(echo "$2" | sim_fields)"
  local mx; mx=$(echo "$2" | $PY -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["latency_max_us"] / 1000))')
  printf "%-26s %9d %10d %9s %9s %9s %8d\n" "$1" "$HALF" "$ans" "$p50" "$p99" "$mx" "$to"
}
printf "%-26s %9s %10s %9s %9s %9s %8s\n" "" "offered/s" "answered/s" "p50 ms" "p99 ms" "max ms" "timeouts"

sg_metrics >"$WORK/m0"
c0=$(proc_ticks "$SG_PID"); s0=$(sys_ticks); w0=$(disk_sectors_written); j0=$(du -sk "$WORK/simguard-data" | cut -f1)
json=$(run_sim "$SG_ACCT" "$HALF" "$SECS")
c1=$(proc_ticks "$SG_PID"); s1=$(sys_ticks); w1=$(disk_sectors_written); j1=$(du -sk "$WORK/simguard-data" | cut -f1)
sg_metrics >"$WORK/m1"
show "simguard (fdatasync)" "$json"
echo "  CPU: simguard $(echo "($c1 - $c0) * 100 / $CLK_TCK / $SECS" | bc)%, simulator $(awk -v s="$SECS" '{u = $1; k = $2} END {printf "%.0f", (u + k) / s * 100}' "$WORK/sim.cpu")%," \
     "everything else on the machine $(other_cpu "$s0" "$s1" "$(( c1 - c0 + $(awk -v h="$CLK_TCK" '{u = $1; k = $2} END {printf "%.0f", (u + k) * h}' "$WORK/sim.cpu") ))")% (of one core)"
echo "  disk: $(( (w1 - w0) / 2048 )) MiB written to the device meanwhile, of which simguard's data dir grew $(( (j1 - j0) / 1024 )) MiB" \
     "(other writers on the same disk lengthen fdatasync)"
SG_P99=$(echo "$json" | $PY -c 'import json,sys; print(json.load(sys.stdin)["latency_p99_us"])')

read -r n mean <<<"$(hist_mean "$WORK/m0" "$WORK/m1" simguard_radius_acct_answer_seconds)"
echo "  server side, receive -> answer: mean $(echo "$mean * 1000" | bc -l | xargs printf '%.2f') ms," \
     "p50 <= $(hist_quantile "$WORK/m0" "$WORK/m1" simguard_radius_acct_answer_seconds 0.5) s," \
     "p99 <= $(hist_quantile "$WORK/m0" "$WORK/m1" simguard_radius_acct_answer_seconds 0.99) s ($n answers)"
read -r n mean <<<"$(hist_mean "$WORK/m0" "$WORK/m1" simguard_journal_fsync_seconds)"
read -r _ recs <<<"$(hist_mean "$WORK/m0" "$WORK/m1" simguard_journal_commit_records)"
echo "  journal: $n group commits, $(printf '%.0f' "$recs") records each on average," \
     "fdatasync mean $(echo "$mean * 1000" | bc -l | xargs printf '%.2f') ms," \
     "p50 <= $(hist_quantile "$WORK/m0" "$WORK/m1" simguard_journal_fsync_seconds 0.5) s," \
     "p99 <= $(hist_quantile "$WORK/m0" "$WORK/m1" simguard_journal_fsync_seconds 0.99) s"
stop_pid "$SG_PID"

if [ "${SKIP_FREERADIUS:-0}" != 1 ] && command -v freeradius >/dev/null; then
  start_freeradius "${FR_LAT_THREADS:-32}"
  json=$(run_sim "$FR_ACCT" "$HALF" "$SECS")
  show "FreeRADIUS detail (${FR_LAT_THREADS:-32} thr)" "$json"
  stop_pid "$FR_PID"
fi
echo
if [ "$SG_P99" -lt 10000 ]; then
  echo "result: PASS, simguard p99 $(( SG_P99 / 1000 )).$(( SG_P99 % 1000 / 100 )) ms < 10 ms at $HALF/s"
else
  echo "result: FAIL, simguard p99 $(( SG_P99 / 1000 )).$(( SG_P99 % 1000 / 100 )) ms >= 10 ms at $HALF/s"
fi
