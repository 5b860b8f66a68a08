#!/usr/bin/env bash
# Sustained flow ingest without loss: RATE IPFIX records/s (200,000) for SECS
# seconds (60) into `simguard serve`, with DEVICES sessions open so that most
# flows are attributed. Compares records sent with records decoded
# (flows.records) and applied by the engine (flows.attributed +
# flows.unattributed), and reports kernel UDP drops (on the server's socket,
# /proc/net/udp, and machine-wide Udp RcvbufErrors), journal group commits and
# fdatasync times, the engine backlog over time, server CPU and memory.
#
# usage: bench/flows-sustained.sh
# Environment: RATE (200000), SECS (60), DEVICES (10000), SOCKETS (1),
# SKIP_BUILD=1, KEEP=1, SG_LOG (warn). Bounded: SECS + 100 s after the build.
# Exit status 0 when nothing was lost, 1 otherwise.

set -euo pipefail
FLOWS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/flows-throughput.sh
source "$FLOWS_DIR/flows-throughput.sh"

RATE=${RATE:-200000}
SECS=${SECS:-60}

# Every second: "elapsed decoded applied rss_kib" into $WORK/timeline.
sampler() {
  local t0 c rss
  t0=$(date +%s.%N)
  while kill -0 "$SG_PID" 2>/dev/null; do
    c=$(flow_counts 2>/dev/null) || c="0 0"
    rss=$(awk '/VmRSS/ {print $2}' /proc/"$SG_PID"/status 2>/dev/null || echo 0)
    echo "$(echo "$(date +%s.%N) - $t0" | bc -l) $(echo "$c" | awk '{print $1, $2}') $rss"
    sleep 1
  done
}

main() {
  trap flows_cleanup EXIT INT TERM
  flows_build
  flows_machine
  echo "generator: ipfix_blast, $SOCKETS socket(s), $RATE records/s for $SECS s, 27 records per 1,370-byte IPFIX datagram"
  echo "simguard: $(cd "$FLOWS_ROOT" && git rev-parse --short HEAD)$(cd "$FLOWS_ROOT" && git diff --quiet HEAD -- crates || echo ' + uncommitted changes in crates/')"
  wait_quiet
  start_watchdog $(( SECS + 100 ))
  start_simguard_flows
  provision_sessions "$DEVICES"
  local port=${SG_IPFIX##*:}
  echo "receive buffer of the IPFIX socket: $(sock_rcvbuf "$port") bytes; journal fsync on"

  local c0 c1 k0 k1 d0 d1 g0 g1 m0 m1 t0 t1 out
  sg_metrics >"$WORK/metrics.0"
  c0=$(flow_counts); k0=$(proc_ticks "$SG_PID"); d0=$(sock_drops "$port"); g0=$(udp_rcvbuf_errors); m0=$(cpu_snap)
  sampler >"$WORK/timeline" &
  local sp=$!
  PIDS+=("$sp")
  t0=$(date +%s.%N)
  thread_cpu_line $(( SECS - 2 )) "$SG_PID" >"$WORK/threads" &
  local tc=$!
  out=$(timeout $(( SECS + 30 )) "$BLAST" --target "$SG_IPFIX" --rate "$RATE" --seconds "$SECS" \
    --sockets "$SOCKETS" --hosts "$DEVICES" --seed 11 --progress 2>"$WORK/progress")
  local t_sent; t_sent=$(date +%s.%N)
  c1=$(wait_drained 30)
  t1=$(date +%s.%N); k1=$(proc_ticks "$SG_PID"); d1=$(sock_drops "$port"); g1=$(udp_rcvbuf_errors); m1=$(cpu_snap)
  sg_metrics >"$WORK/metrics.1"
  wait "$tc" 2>/dev/null || true
  kill "$sp" 2>/dev/null || true
  local fsync p50 p99 commits hwm rss
  fsync=$(hist_mean "$WORK/metrics.0" "$WORK/metrics.1" simguard_journal_fsync_seconds)
  p50=$(hist_quantile "$WORK/metrics.0" "$WORK/metrics.1" simguard_journal_fsync_seconds 0.5)
  p99=$(hist_quantile "$WORK/metrics.0" "$WORK/metrics.1" simguard_journal_fsync_seconds 0.99)
  commits=$(hist_mean "$WORK/metrics.0" "$WORK/metrics.1" simguard_journal_commit_records)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/"$SG_PID"/status)
  rss=$(awk '/VmRSS/ {print $2}' /proc/"$SG_PID"/status)
  $PY - "$out" "$c0" "$c1" "$k0" "$k1" "$CLK_TCK" "$d0" "$d1" "$g0" "$g1" "$t0" "$t_sent" "$t1" \
    "$fsync" "$p50" "$p99" "$commits" "$hwm" "$rss" "$(cat "$WORK/threads")" "$WORK/timeline" "$WORK/progress" "$DEVICES" "$m0" "$m1" <<'EOF'
import json, sys
(out, c0, c1, k0, k1, hz, d0, d1, g0, g1, t0, t_sent, t1, fsync, p50, p99, commits, hwm, rss,
 threads, timeline, progress, devices, m0, m1) = sys.argv[1:]
m0 = [int(x) for x in m0.split()]; m1 = [int(x) for x in m1.split()]
j = json.loads(out)
a = [int(x) for x in c0.split()]; b = [int(x) for x in c1.split()]
sent = j["records_per_target"]
dec, app, att, unatt = b[0] - a[0], b[1] - a[1], b[2] - a[2], b[3] - a[3]
dgrams, viol, bad = b[4] - a[4], b[5] - a[5], b[6] - a[6]
cpu = (int(k1) - int(k0)) / int(hz)
t0, t_sent, t1 = float(t0), float(t_sent), float(t1)
fs_n, fs_mean = fsync.split(); cm_n, cm_mean = commits.split()
per_s = []
for line in open(progress):
    if "(+" in line:
        per_s.append(int(line.split("(+")[1].split("/")[0]))
backlog = 0; samples = 0
for line in open(timeline):
    p = line.split()
    if len(p) >= 3:
        samples += 1
        backlog = max(backlog, int(p[1]) - int(p[2]))
print()
print("| | records |")
print("|---|---|")
print("| sent (generator) | %d in %.1f s = %.0f/s (datagrams %d, send errors %d) |" % (sent, j["seconds"], j["records_per_s"], j["datagrams"], j["send_errors"]))
if per_s:
    print("| generator per second | min %d, max %d (%d samples) |" % (min(per_s[1:] or per_s), max(per_s), len(per_s)))
print("| received datagrams (flows.datagrams) | %d of %d data + %d template datagrams sent |" % (dgrams, j["datagrams"], j["templates"]))
print("| decoded (flows.records) | %d (lost before decoding: %d) |" % (dec, sent - dec))
print("| applied by the engine (attributed + unattributed) | %d = %d + %d (%.1f%% attributed); not applied: %d |" % (app, att, unatt, 100.0 * att / app if app else 0, dec - app))
print("| policy violations | %d |" % viol)
print("| dropped by the server (any reason) | %d datagrams |" % bad)
print("| kernel drops, server socket (/proc/net/udp) | %d datagrams |" % (int(d1) - int(d0)))
print("| kernel drops, machine-wide Udp RcvbufErrors | %d (includes other programs) |" % (int(g1) - int(g0)))
print("| largest engine backlog (decoded - applied, 1 s samples) | %d records |" % backlog)
print("| drained after last send | %.2f s |" % (t1 - t_sent))
print("| journal group commits | %s, mean %.0f records (events) per commit |" % (cm_n, float(cm_mean)))
print("| fdatasync | %s calls (%.0f/s), mean %.2f ms, p50 <= %s s, p99 <= %s s |" % (fs_n, int(fs_n) / (t1 - t0), float(fs_mean) * 1000, p50, p99))
print("| server CPU | %.2f s over %.1f s = %.0f%% of one core; %.0f records per CPU-second |" % (cpu, t1 - t0, 100 * cpu / (t1 - t0), app / cpu if cpu else 0))
print("| server threads (during sending) | %s |" % threads)
print("| generator CPU | %.2f s |" % j["cpu_seconds"])
other = (m1[0] - m0[0]) / int(hz) - cpu - j["cpu_seconds"]
print("| machine (2 CPUs) | %.0f%% busy; other programs %.1f CPU-s%s |" % (
    100.0 * (m1[0] - m0[0]) / ((m1[2] - m0[2]) or 1), max(other, 0.0),
    " (CONTENDED)" if other > 0.1 * (t1 - t0) else ""))
print("| server memory | RSS %d KiB, peak (VmHWM) %d KiB, %s devices with traffic profiles |" % (int(rss), int(hwm), devices))
lost = sent - app
print()
print("RESULT: %s: sent %d, decoded %d, applied %d, lost %d (%.4f%%)" % ("PASS" if lost == 0 else "FAIL", sent, dec, app, lost, 100.0 * lost / sent if sent else 0))
sys.exit(0 if lost == 0 else 1)
EOF
}

main "$@"
