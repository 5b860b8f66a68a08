#!/usr/bin/env bash
# RADIUS accounting throughput: simguard (answers only after fdatasync of
# its journal) side by side with FreeRADIUS 3.2 + the detail module (writes
# to the page cache, no fsync), under the same load, on 127.0.0.1 only.
#
#   bench/acct-throughput.sh            # build, then both servers, ~2 min
#   PIN=1 bench/acct-throughput.sh      # servers on CPU 1, load generators on CPU 0
#   SKIP_BUILD=1 SG_BIN=... bench/acct-throughput.sh
#
# Two load generators:
#  1. `simguard sim --mode load` at increasing offered rates (a ladder):
#     answered/s, p50/p99 answer latency, timeouts. Its in-flight window is
#     SIM_SOCKETS (64) x 256 ids, so past saturation it is closed-loop:
#     "answered/s" is then the server's capacity with 16,384 requests in flight.
#  2. radclient (FreeRADIUS's own client, the neutral peer): RC_PROCS
#     loops side by side, each running radclient RC_ROUNDS times on its own
#     2,000-packet file (-c 1, RC_INFLIGHT in flight). answered/s = Accepted / wall.
#     The simguard/FreeRADIUS ratio is computed from both; radclient costs
#     ~50-80 us of CPU per request, so on 2 shared cores it, not the servers,
#     sets the pace (its CPU is printed).
#
# Knobs (environment): RATES, STEP_SECS, RC_PROCS, RC_ROUNDS, RC_INFLIGHT,
# FR_THREADS (thread-pool sizes to try), SIM_SOCKETS, SKIP_FREERADIUS=1,
# SKIP_BUILD=1 (with SG_BIN), PIN=1, BUDGET (s), QUIET_WAIT, BENCH_NICE,
# KEEP=1 (keep the work dir). See BENCHMARKS.md.
set -euo pipefail
# 64 sockets x 256 ids = 16,384 requests in flight: with 4,096 (16 sockets)
# one 50 ms fdatasync stall at 80k/s fills the window and the simulator
# stops sending, under-reporting what the server can do.
export SIM_SOCKETS=${SIM_SOCKETS:-64}
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT INT TERM

RATES=${RATES:-"20000 40000 60000 80000 100000 120000 150000"}
STEP_SECS=${STEP_SECS:-6}
FR_THREADS=${FR_THREADS:-"32 4"}
export RC_PROCS=${RC_PROCS:-4} RC_ROUNDS=${RC_ROUNDS:-10} RC_INFLIGHT=${RC_INFLIGHT:-256}
T_START=$(date +%s)
BUDGET=${BUDGET:-290}

over_budget() { [ $(( $(date +%s) - T_START )) -ge "$BUDGET" ]; }

echo "# simguard accounting throughput, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
machine
echo "repository: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'); $(freeradius -v 2>/dev/null | head -1 | sed 's/^radiusd: //')"
echo

build_simguard
# The time budget covers the measurements, not a cold build.
T_START=$(date +%s)
command -v radclient >/dev/null || { echo "radclient missing: apt-get install -y freeradius-utils" >&2; exit 1; }
wait_quiet

# ladder NAME TARGET PID: prints the table; sets LADDER_MAX (best
# answered/s) and LADDER_SUSTAINED (highest offered rate answered in full:
# >= 98% of it, no timeouts). Stops after two steps answering < 90%.
# "other CPU": what the rest of the machine (other users' work, plus kernel
# network work not charged to a process) used meanwhile, % of one core; a
# step where it is high was measured on a busy machine. Also shows the CPU
# the server and the simulator used, as % of one core, and the server's CPU
# time per answer.
ladder() {
  local name=$1 target=$2 pid=$3
  LADDER_MAX=0; LADDER_SUSTAINED=0; LADDER_US=0
  local short=0 r json ans p50 p99 to sent answered achieved c0 c1 t0 t1 s0 s1 wall srv gen us other
  printf "%-24s %9s %8s %10s %8s %8s %8s %8s %8s %9s %9s\n" "$name" "offered/s" "sent/s" "answered/s" "p50 ms" "p99 ms" "timeouts" "srv CPU" "sim CPU" "srv us/req" "other CPU"
  for r in $RATES; do
    if over_budget; then echo "  (time budget reached, ladder cut)"; break; fi
    c0=$(proc_ticks "$pid"); t0=$(date +%s.%N); s0=$(sys_ticks)
    json=$(run_sim "$target" "$r" "$STEP_SECS") || { echo "  simulator failed at $r/s (see $WORK/sim.log)"; break; }
    c1=$(proc_ticks "$pid"); t1=$(date +%s.%N); s1=$(sys_ticks)
    read -r ans p50 p99 to sent answered achieved <<<"$(echo "$json" | sim_fields)"
    wall=$(echo "$t1 - $t0" | bc -l)
    srv=$(echo "($c1 - $c0) / $CLK_TCK / $wall * 100" | bc -l)
    gen=$(awk -v w="$wall" '{u = $1; k = $2} END {printf "%.0f", (u + k) / w * 100}' "$WORK/sim.cpu")
    us=$(echo "($c1 - $c0) / $CLK_TCK * 1000000 / ($answered + 1)" | bc -l)
    other=$(other_cpu "$s0" "$s1" "$(( c1 - c0 + $(awk -v h="$CLK_TCK" '{u = $1; k = $2} END {printf "%.0f", (u + k) * h}' "$WORK/sim.cpu") ))")
    printf "%-24s %9d %8d %10d %8s %8s %8d %7.0f%% %7s%% %9.1f %8s%%\n" "" "$r" "$achieved" "$ans" "$p50" "$p99" "$to" "$srv" "$gen" "$us" "$other"
    if [ "$ans" -gt "$LADDER_MAX" ]; then LADDER_MAX=$ans; LADDER_US=$us; fi
    if [ "$to" -eq 0 ] && [ "$ans" -ge $(( r * 98 / 100 )) ]; then
      LADDER_SUSTAINED=$r
    fi
    if [ "$ans" -lt $(( r * 90 / 100 )) ]; then
      short=$((short + 1))
      # Two steps in a row past saturation: more offered load shows nothing new.
      [ "$short" -ge 2 ] && break
    else
      short=0
    fi
  done
}

# radclient_max NAME TARGET PID: one radclient burst with per-thread CPU of
# the server sampled in the middle; sets RC_RATE.
radclient_max() {
  local name=$1 target=$2 pid=$3 acc lost wall gen c0 c1
  ( sleep 1.5; "$BENCH_DIR/thread-cpu.sh" 2 "$pid" >"$WORK/cpu.txt" 2>/dev/null ) &
  local sampler=$!
  c0=$(proc_ticks "$pid")
  read -r acc lost wall gen <<<"$(run_radclients "$target")"
  c1=$(proc_ticks "$pid")
  wait "$sampler" 2>/dev/null || true
  RC_RATE=$(echo "$acc / $wall" | bc)
  printf "%-24s radclient x%d (-p %d, %d requests each): answered %d, lost %d in %.2f s = %d answered/s\n" \
    "$name" "$RC_PROCS" "$RC_INFLIGHT" "$RC_PACKETS_EACH" "$acc" "$lost" "$wall" "$RC_RATE"
  printf "  server CPU during the burst: %.0f%% of one core, %.1f us per answer\n" \
    "$(echo "($c1 - $c0) / $CLK_TCK / $wall * 100" | bc -l)" "$(echo "($c1 - $c0) / $CLK_TCK * 1000000 / ($acc + 1)" | bc -l)"
  printf "  radclient CPU during the burst: %.0f%% of one core, %.1f us per answer\n" \
    "$(echo "$gen / $wall * 100" | bc -l)" "$(echo "$gen * 1000000 / ($acc + 1)" | bc -l)"
  echo "  busiest server threads (% of one core, 2 s sample in the burst):"
  head -6 "$WORK/cpu.txt"
}
RC_PACKETS_EACH=$(( ${RC_PACKETS:-2000} * RC_ROUNDS ))

# ---------------------------------------------------------------- simguard
start_simguard
sg_metrics >"$WORK/m0"
ladder "simguard (fdatasync)" "$SG_ACCT" "$SG_PID"
SG_SIM_MAX=$LADDER_MAX; SG_SUSTAINED=$LADDER_SUSTAINED; SG_US=$LADDER_US
sg_metrics >"$WORK/m1"
read -r fs_n fs_mean <<<"$(hist_mean "$WORK/m0" "$WORK/m1" simguard_journal_fsync_seconds)"
read -r cm_n cm_mean <<<"$(hist_mean "$WORK/m0" "$WORK/m1" simguard_journal_commit_records)"
echo "  journal during the ladder: $fs_n commits, mean fdatasync $(echo "$fs_mean * 1000" | bc -l | xargs printf '%.2f') ms, p99 fdatasync <= $(hist_quantile "$WORK/m0" "$WORK/m1" simguard_journal_fsync_seconds 0.99) s, mean $(printf '%.0f' "$cm_mean") records/commit"
sleep 1
before=$(sg_status)
radclient_max "simguard (fdatasync)" "$SG_ACCT" "$SG_PID"
SG_RC=$RC_RATE
after=$(sg_status)
$PY - "$before" "$after" <<'EOF'
import json, sys
a, b = (json.loads(x)["accounting"] for x in sys.argv[1:3])
d = {k: b[k] - a[k] for k in b}
drops = sum(v for k, v in d.items() if k.startswith("dropped_"))
print("  server counters for the burst: received %d, accepted (journaled) %d, duplicates %d, dropped %d"
      % (d["received"], d["accepted"], d["duplicates"], drops))
EOF
stop_pid "$SG_PID"
echo

# -------------------------------------------------------------- FreeRADIUS
FR_BEST_RC=0; FR_BEST_SIM=0; FR_BEST_NAME=none; FR_BEST_US=0
if [ "${SKIP_FREERADIUS:-0}" != 1 ]; then
  command -v freeradius >/dev/null || { echo "freeradius missing: apt-get install -y freeradius" >&2; exit 1; }
  for th in $FR_THREADS; do
    if over_budget; then echo "(time budget reached: FreeRADIUS with $th threads skipped)"; continue; fi
    start_freeradius "$th"
    ladder "FreeRADIUS detail, $th thr" "$FR_ACCT" "$FR_PID"
    if [ "$LADDER_MAX" -gt "$FR_BEST_SIM" ]; then FR_BEST_SIM=$LADDER_MAX; FR_BEST_US=$LADDER_US; fi
    sleep 1
    radclient_max "FreeRADIUS detail, $th thr" "$FR_ACCT" "$FR_PID"
    lines=$(grep -c '^	Acct-Status-Type' "$FR_DETAIL" 2>/dev/null || echo 0)
    echo "  detail file: $(du -h "$FR_DETAIL" | cut -f1), $lines records (not fsync'ed: page cache only)"
    if [ "$RC_RATE" -gt "$FR_BEST_RC" ]; then FR_BEST_RC=$RC_RATE; FR_BEST_NAME="$th threads"; fi
    stop_pid "$FR_PID"
    echo
  done
fi

# ----------------------------------------------------------------- summary
echo "# summary"
printf "%-46s %10s\n" "simguard, simulator ladder max answered/s" "$SG_SIM_MAX"
printf "%-46s %10s\n" "simguard, highest offered rate answered in full" "$SG_SUSTAINED"
printf "%-46s %10s\n" "simguard, radclient answered/s" "$SG_RC"
if [ "${SKIP_FREERADIUS:-0}" != 1 ]; then
  printf "%-46s %10s\n" "FreeRADIUS best, simulator ladder max answered/s" "$FR_BEST_SIM"
  printf "%-46s %10s  (%s)\n" "FreeRADIUS best, radclient answered/s" "$FR_BEST_RC" "$FR_BEST_NAME"
  if [ "$FR_BEST_RC" -gt 0 ]; then
    echo "ratio simguard / FreeRADIUS (radclient):       $(echo "scale=2; $SG_RC / $FR_BEST_RC" | bc)x   (target >= 2x)"
  fi
  if [ "$FR_BEST_SIM" -gt 0 ]; then
    echo "ratio simguard / FreeRADIUS (simulator):       $(echo "scale=2; $SG_SIM_MAX / $FR_BEST_SIM" | bc)x"
    printf "server CPU per answer at the ladder max:       simguard %.1f us, FreeRADIUS %.1f us (%.2fx less for simguard)\n" \
      "$SG_US" "$FR_BEST_US" "$(echo "$FR_BEST_US / ($SG_US + 0.001)" | bc -l)"
  fi
fi
echo "target: >= 50000 durable answers/s on this machine"
echo "elapsed: $(( $(date +%s) - T_START )) s"
