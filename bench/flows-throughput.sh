#!/usr/bin/env bash
# Flow collector throughput: IPFIX records/s decoded, journaled (group commit
# + fdatasync) and applied by the engine (attribution, traffic profile,
# policy), and records per CPU-second of the server; then the same stream to
# nfcapd (nfdump), alone and side by side.
#
# usage: bench/flows-throughput.sh
#
# What it does (everything on 127.0.0.1; about 3-4 minutes after the build on an
# idle machine, see MAX_SECS):
#  1. builds `simguard` and the load generator (crates/flow/examples/ipfix_blast.rs)
#     in release (SKIP_BUILD=1 skips; CARGO_TARGET_DIR is honoured);
#  2. starts `simguard serve` on a fresh data dir and opens DEVICES sessions
#     with `simguard sim --mode load --provision` (Framed-IPs 10.45.0.1 up,
#     the addresses the generator's flows use, so ~90% are attributed);
#  3. for each rate of RATES (records/s; 0 = as fast as the generator goes),
#     sends STEP_SECS of IPFIX (softflowd's template, 27 records per
#     1,370-byte datagram) and waits until the engine has applied everything
#     decoded; measures from /api/v1/status deltas and /proc:
#       sent, decoded (flows.records), applied (flows.attributed + unattributed),
#       kernel drops on the server's socket (/proc/net/udp "drops"),
#       applied/s over [start of sending, last record applied],
#       server CPU seconds (utime+stime, all threads) and records per CPU-second
#       ("per core"), per-thread CPU during the send;
#  4. the same streams (same seed: byte-identical records) to nfcapd, one fresh
#     nfcapd per rate, counting what it stored (nfdump -I after SIGTERM);
#  5. one side-by-side run: each datagram to both collectors at SBS_RATE.
#
# Environment: RATES ("250000 500000 1000000 2000000 0"), STEP_SECS (8),
# DEVICES (10000), SOCKETS (1, generator threads), SBS_RATE (500000),
# NFCAPD=0 (skip nfcapd), QUIET_WAIT (20: wait at most this long for an idle
# machine before starting; lib.sh), STEP_QUIET_WAIT (4: the same before each
# step), MAX_SECS (195: no step starts later than this after the start; a
# watchdog stops everything 40 s after), KEEP=1 (keep the work dir),
# SG_LOG (warn).
#
# Both the generator and the servers run on this machine's CPUs: the
# generator's own CPU is printed so the share left to the server is visible.

FLOWS_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FLOWS_ROOT=$(dirname "$FLOWS_BENCH_DIR")
FLOWS_TARGET=${CARGO_TARGET_DIR:-$FLOWS_ROOT/target}
SG_BIN=${SG_BIN:-$FLOWS_TARGET/release/simguard}
BLAST=${BLAST:-$FLOWS_TARGET/release/examples/ipfix_blast}
# shellcheck source=bench/lib.sh
source "$FLOWS_BENCH_DIR/lib.sh"

DEVICES=${DEVICES:-10000}
SOCKETS=${SOCKETS:-1}

flows_cleanup() {
  local rc=$?
  # The watchdog's sleep, then everything in $PIDS (lib.sh's cleanup, which
  # exits with the status it finds in $?).
  if [ -n "${WATCHDOG:-}" ]; then
    local kids; kids=$(pgrep -P "$WATCHDOG" 2>/dev/null || true)
    kill "$WATCHDOG" 2>/dev/null || true
    # shellcheck disable=SC2086
    [ -n "$kids" ] && kill $kids 2>/dev/null
  fi
  (exit "$rc")
  cleanup
}

# Kills this script (and, through the trap, everything it started) after $1 seconds.
start_watchdog() {
  ( sleep "$1"; echo "== watchdog: $1 s passed, stopping" >&2; kill -TERM $$ ) &
  WATCHDOG=$!
  PIDS+=("$WATCHDOG")
}

flows_machine() {
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "disk of $WORK: $(df -P "$WORK" | awk 'NR==2 {print $1}') ($(findmnt -n -o FSTYPE --target "$WORK" 2>/dev/null || echo '?'))"
  echo "note: the generator and the collectors share these $(nproc) CPUs; all run at nice $(ps -o ni= -p $$ | tr -d ' ')"
  echo "net.core.rmem_max: $(sysctl -n net.core.rmem_max) (nfcapd -B is capped by it; simguard uses SO_RCVBUFFORCE as root)"
}

# Machine-wide CPU counters: "busy softirq total" (jiffies, all CPUs).
cpu_snap() {
  awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, $8, t}' /proc/stat
}

flows_build() {
  if [ "${SKIP_BUILD:-0}" = 1 ]; then
    log "SKIP_BUILD=1: using $SG_BIN and $BLAST"
  else
    log "building simguard and ipfix_blast (release)"
    (cd "$FLOWS_ROOT" && cargo build --release -p simguard --bin simguard >&2 &&
      cargo build --release -p simguard-flow --example ipfix_blast >&2)
  fi
  [ -x "$SG_BIN" ] || { echo "no simguard binary at $SG_BIN" >&2; exit 1; }
  [ -x "$BLAST" ] || { echo "no ipfix_blast at $BLAST" >&2; exit 1; }
}

# Like lib.sh's start_simguard, with the flow sockets on free ports too.
# Sets SG_PID, SG_ACCT, SG_HTTP, SG_IPFIX.
start_simguard_flows() {
  local data=$WORK/simguard-data
  rm -rf "$data"; mkdir -p "$data"
  local acct auth http ipfix netflow
  acct=$(free_port udp); auth=$(free_port udp); http=$(free_port tcp)
  ipfix=$(free_port udp); netflow=$(free_port udp)
  SG_ACCT=127.0.0.1:$acct
  SG_HTTP=127.0.0.1:$http
  SG_IPFIX=127.0.0.1:$ipfix
  SIMGUARD_DATA_DIR=$data \
  SIMGUARD_HTTP__BIND=$SG_HTTP \
  SIMGUARD_RADIUS__ACCOUNTING_BIND=$SG_ACCT \
  SIMGUARD_RADIUS__AUTH_BIND=127.0.0.1:$auth \
  SIMGUARD_FLOWS__IPFIX_BIND=$SG_IPFIX \
  SIMGUARD_FLOWS__NETFLOW_BIND=127.0.0.1:$netflow \
  SIMGUARD_ADMIN_TOKEN=$TOKEN \
  SIMGUARD_RADIUS__CLIENTS="[{ name = \"bench\", address = \"127.0.0.1/32\", secret = \"$SECRET\", require_message_authenticator = false }]" \
  RUST_LOG=${SG_LOG:-warn} \
    "$SG_BIN" serve >"$WORK/simguard.log" 2>&1 &
  SG_PID=$!
  PIDS+=("$SG_PID")
  wait_simguard_ready "ipfix $SG_IPFIX, accounting $SG_ACCT, http $SG_HTTP, data $data"
}

# Flow counters: "decoded applied attributed unattributed datagrams violations dropped engine_seq".
# (awk rather than python: it is polled every 0.1 s while draining.)
flow_counts() {
  sg_status | tr ',{}' '\n\n\n' | awk -F: '
    /^"flows":/ { inflows = 1; next }
    /^"uptime_secs":/ { inflows = 0 }
    /^"engine_seq":/ { seq = $2 }
    inflows && /^"records":/ { r = $2 }
    inflows && /^"attributed":/ { a = $2 }
    inflows && /^"unattributed":/ { u = $2 }
    inflows && /^"datagrams":/ { d = $2 }
    inflows && /^"policy_violations":/ { v = $2 }
    inflows && /^"dropped_/ { x += $2 }
    END { if (r == "") exit 1; print r, a + u, a, u, d, v, x + 0, seq }'
}

# Opens $1 sessions (one per device, Framed-IP 10.45.x.y from the pool's
# start) with the simulator's load mode, after provisioning their inventory
# (groups, and the smart meters' firewall policy).
provision_sessions() {
  local n=$1 rate=20000 secs
  secs=$(echo "$n / $rate + 1.5" | bc -l)
  log "opening $n sessions (simguard sim --mode load --provision)"
  timeout 120 "$SG_BIN" sim --mode load --target "$SG_ACCT" --secret "$SECRET" \
    --devices "$n" --rate "$rate" --duration "$secs" --sockets 16 \
    --no-message-authenticator --provision "http://$SG_HTTP" --token "$TOKEN" --json \
    >"$WORK/provision.json" 2>>"$WORK/sim.log"
  local seq last=-1 i
  for i in $(seq 1 100); do
    seq=$(flow_counts | awk '{print $8}')
    [ "$seq" = "$last" ] && break
    last=$seq; sleep 0.2
  done
  local online
  online=$(sg_status | $PY -c 'import json,sys; print(json.load(sys.stdin)["devices"])')
  log "engine has $online devices (seq $seq)"
}

# Kernel drops counted on the UDP socket bound to 127.0.0.1:$1 (/proc/net/udp).
sock_drops() {
  local hex; hex=$(printf '0100007F:%04X' "$1")
  awk -v a="$hex" '$2 == a {print $NF; found=1} END {if (!found) print 0}' /proc/net/udp
}

# Receive buffer the kernel gave the socket on port $1 (bytes, from ss).
sock_rcvbuf() {
  ss -uamn "sport = :$1" 2>/dev/null | grep -o 'rb[0-9]*' | head -1 | tr -d rb
}

udp_rcvbuf_errors() {
  awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# Per-thread CPU of $2 over $1 seconds, as one line "name pct, ...".
thread_cpu_line() {
  bash "$BENCH_DIR/thread-cpu.sh" "$1" "$2" 2>/dev/null | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $3}'
}

# Waits until the engine applied what was decoded and the decoded count
# stopped growing (at most $1 seconds). Prints the counts at that point.
wait_drained() {
  local limit=$1 t0 c prev=""
  t0=$(date +%s.%N)
  while :; do
    c=$(flow_counts)
    set -- $c
    if [ "$1" = "$2" ] && [ "$c" = "$prev" ]; then break; fi
    if [ "$(echo "$(date +%s.%N) - $t0 > $limit" | bc -l)" = 1 ]; then
      log "WARNING: not drained after $limit s: decoded $1, applied $2"
      break
    fi
    prev=$c
    sleep 0.1
  done
  echo "$c"
}

json_field() {
  $PY -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# One simguard measurement at rate $1 for $2 seconds. Appends a row to $WORK/rows.
simguard_step() {
  local rate=$1 secs=$2 port=${SG_IPFIX##*:}
  local c0 c1 k0 k1 d0 d1 m0 m1 f0 f1 t0 t1 out threads
  f0=$(fsync_count)
  c0=$(flow_counts); k0=$(proc_ticks "$SG_PID"); d0=$(sock_drops "$port"); m0=$(cpu_snap)
  t0=$(date +%s.%N)
  thread_cpu_line "$(( secs > 2 ? secs - 1 : 1 ))" "$SG_PID" >"$WORK/threads" &
  local tc=$!
  out=$(timeout $(( secs + 20 )) "$BLAST" --target "$SG_IPFIX" --rate "$rate" --seconds "$secs" \
    --sockets "$SOCKETS" --hosts "$DEVICES" --seed 7)
  local ts; ts=$(date +%s.%N)
  c1=$(wait_drained 90)
  t1=$(date +%s.%N); k1=$(proc_ticks "$SG_PID"); d1=$(sock_drops "$port"); m1=$(cpu_snap)
  wait "$tc" 2>/dev/null || true
  f1=$(fsync_count)
  threads=$(cat "$WORK/threads")
  $PY - "$rate" "$out" "$c0" "$c1" "$k0" "$k1" "$CLK_TCK" "$d0" "$d1" "$t0" "$t1" "$threads" "$m0" "$m1" "$f0" "$f1" "$ts" >>"$WORK/rows" <<'EOF'
import json, sys
rate, out, c0, c1, k0, k1, hz, d0, d1, t0, t1, threads, m0, m1, f0, f1, ts = sys.argv[1:]
m0 = [int(x) for x in m0.split()]; m1 = [int(x) for x in m1.split()]
mt = (m1[2] - m0[2]) or 1
# CPU used by neither the collector nor the generator (other programs on the machine).
other = (m1[0] - m0[0]) / int(hz) - (int(k1) - int(k0)) / int(hz) - json.loads(out)["cpu_seconds"]
machine = "%.0f%%, other programs %.1f CPU-s" % (100.0 * (m1[0] - m0[0]) / mt, max(other, 0.0))
j = json.loads(out)
a = [int(x) for x in c0.split()]; b = [int(x) for x in c1.split()]
dec, app, att = b[0] - a[0], b[1] - a[1], b[2] - a[2]
viol, bad = b[5] - a[5], b[6] - a[6]
cpu = (int(k1) - int(k0)) / int(hz)
wall = float(t1) - float(t0)
sent = j["records_per_target"]
print(json.dumps({
    "collector": "simguard", "rate": int(rate), "sent": sent, "sent_per_s": j["records_per_s"],
    "gen_cpu": j["cpu_seconds"], "stored": app, "decoded": dec, "lost": sent - app,
    "kernel_drops_datagrams": int(d1) - int(d0), "dropped_by_server": bad,
    "attributed_share": att / app if app else 0, "violations": viol,
    "wall": wall, "per_s": app / wall if wall else 0, "cpu": cpu,
    "per_cpu_s": app / cpu if cpu else 0, "threads": threads, "machine": machine, "other_cpu": other,
    "fsyncs_per_s": (float(f1) - float(f0)) / wall if wall else 0, "drain": float(t1) - float(ts)}))
EOF
  tail -1 "$WORK/rows" | $PY -c 'import json,sys; r=json.load(sys.stdin); print("== simguard @%s: sent %d, applied %d (%.0f/s), lost %d, %.2f CPU-s -> %.0f records/CPU-s [%s]" % (r["rate"] or "max", r["sent"], r["stored"], r["per_s"], r["lost"], r["cpu"], r["per_cpu_s"], r["threads"]))' >&2
}

# fdatasync calls of the journal so far (Prometheus counter).
fsync_count() {
  sg_metrics | awk '/^simguard_journal_fsync_seconds_count / {print $2; f = 1} END {if (!f) print 0}'
}

# Starts nfcapd on a free port into a fresh directory. Sets NF_PID, NF_PORT, NF_DIR.
start_nfcapd() {
  NF_DIR=$WORK/nfcapd-$1
  rm -rf "$NF_DIR"; mkdir -p "$NF_DIR"
  NF_PORT=$(free_port udp)
  nfcapd -w "$NF_DIR" -p "$NF_PORT" -b 127.0.0.1 -t 60 -B 33554432 >"$WORK/nfcapd-$1.log" 2>&1 &
  NF_PID=$!
  PIDS+=("$NF_PID")
  local i
  for i in $(seq 1 50); do
    [ -n "$(sock_rcvbuf "$NF_PORT")" ] && return 0
    kill -0 "$NF_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/nfcapd-$1.log" >&2
  echo "nfcapd did not start" >&2
  exit 1
}

# Waits until process $1 stops using CPU (two samples 0.3 s apart equal; at most $2 s).
wait_idle_proc() {
  local a b t=0
  a=$(proc_ticks "$1")
  while :; do
    sleep 0.3; t=$((t + 1))
    b=$(proc_ticks "$1")
    [ "$a" = "$b" ] && break
    [ $((t * 3)) -ge $(( $2 * 10 )) ] && break
    a=$b
  done
}

# Stops nfcapd (it writes and renames its file on SIGTERM) and prints the flows it stored.
stop_nfcapd_count() {
  kill -TERM "$NF_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do kill -0 "$NF_PID" 2>/dev/null || break; sleep 0.1; done
  nfdump -R "$NF_DIR" -I 2>/dev/null | awk '/^Flows:/ {print $2; f=1} END {if (!f) print 0}'
}

# One nfcapd measurement at rate $1 for $2 seconds (same stream as simguard_step).
nfcapd_step() {
  local rate=$1 secs=$2
  start_nfcapd "$rate"
  local k0 k1 d0 d1 m0 m1 t0 t1 out stored rb
  rb=$(sock_rcvbuf "$NF_PORT")
  k0=$(proc_ticks "$NF_PID"); d0=$(sock_drops "$NF_PORT"); m0=$(cpu_snap); t0=$(date +%s.%N)
  out=$(timeout $(( secs + 20 )) "$BLAST" --target "127.0.0.1:$NF_PORT" --rate "$rate" --seconds "$secs" \
    --sockets "$SOCKETS" --hosts "$DEVICES" --seed 7)
  wait_idle_proc "$NF_PID" 10
  t1=$(date +%s.%N); k1=$(proc_ticks "$NF_PID"); d1=$(sock_drops "$NF_PORT"); m1=$(cpu_snap)
  stored=$(stop_nfcapd_count)
  $PY - "$rate" "$out" "$stored" "$k0" "$k1" "$CLK_TCK" "$d0" "$d1" "$t0" "$t1" "$rb" "$m0" "$m1" >>"$WORK/rows" <<'EOF'
import json, sys
rate, out, stored, k0, k1, hz, d0, d1, t0, t1, rb, m0, m1 = sys.argv[1:]
m0 = [int(x) for x in m0.split()]; m1 = [int(x) for x in m1.split()]
mt = (m1[2] - m0[2]) or 1
# CPU used by neither the collector nor the generator (other programs on the machine).
other = (m1[0] - m0[0]) / int(hz) - (int(k1) - int(k0)) / int(hz) - json.loads(out)["cpu_seconds"]
machine = "%.0f%%, other programs %.1f CPU-s" % (100.0 * (m1[0] - m0[0]) / mt, max(other, 0.0))
j = json.loads(out)
stored = int(stored); sent = j["records_per_target"]
cpu = (int(k1) - int(k0)) / int(hz); wall = float(t1) - float(t0)
print(json.dumps({
    "collector": "nfcapd", "rate": int(rate), "sent": sent, "sent_per_s": j["records_per_s"],
    "gen_cpu": j["cpu_seconds"], "stored": stored, "decoded": stored, "lost": sent - stored,
    "kernel_drops_datagrams": int(d1) - int(d0), "dropped_by_server": 0,
    "attributed_share": None, "violations": None, "wall": wall,
    "per_s": stored / wall if wall else 0, "cpu": cpu, "per_cpu_s": stored / cpu if cpu else 0,
    "threads": "rcvbuf %s" % rb, "machine": machine, "other_cpu": other}))
EOF
  tail -1 "$WORK/rows" | $PY -c 'import json,sys; r=json.load(sys.stdin); print("== nfcapd @%s: sent %d, stored %d (%.0f/s), lost %d, %.2f CPU-s -> %.0f records/CPU-s" % (r["rate"] or "max", r["sent"], r["stored"], r["per_s"], r["lost"], r["cpu"], r["per_cpu_s"]))' >&2
}

# Side by side: every datagram to simguard and to nfcapd, at rate $1 for $2 s.
side_by_side() {
  local rate=$1 secs=$2 port=${SG_IPFIX##*:}
  start_nfcapd "sbs"
  local c0 c1 k0 k1 n0 n1 d0 d1 e0 e1 m0 m1 out stored t0 t1
  c0=$(flow_counts); k0=$(proc_ticks "$SG_PID"); n0=$(proc_ticks "$NF_PID")
  d0=$(sock_drops "$port"); e0=$(sock_drops "$NF_PORT"); m0=$(cpu_snap); t0=$(date +%s.%N)
  out=$(timeout $(( secs + 20 )) "$BLAST" --target "$SG_IPFIX" --target "127.0.0.1:$NF_PORT" \
    --rate "$rate" --seconds "$secs" --sockets "$SOCKETS" --hosts "$DEVICES" --seed 7)
  c1=$(wait_drained 90); wait_idle_proc "$NF_PID" 10
  t1=$(date +%s.%N); k1=$(proc_ticks "$SG_PID"); n1=$(proc_ticks "$NF_PID")
  d1=$(sock_drops "$port"); e1=$(sock_drops "$NF_PORT"); m1=$(cpu_snap)
  stored=$(stop_nfcapd_count)
  $PY - "$rate" "$out" "$c0" "$c1" "$stored" "$k0" "$k1" "$n0" "$n1" "$CLK_TCK" "$d0" "$d1" "$e0" "$e1" "$t0" "$t1" "$m0" "$m1" >>"$WORK/sbs" <<'EOF'
import json, sys
rate, out, c0, c1, stored, k0, k1, n0, n1, hz, d0, d1, e0, e1, t0, t1, m0, m1 = sys.argv[1:]
m0 = [int(x) for x in m0.split()]; m1 = [int(x) for x in m1.split()]
j = json.loads(out); sent = j["records_per_target"]
a = [int(x) for x in c0.split()]; b = [int(x) for x in c1.split()]
hz = int(hz); wall = float(t1) - float(t0)
sg_cpu = (int(k1) - int(k0)) / hz; nf_cpu = (int(n1) - int(n0)) / hz
app = b[1] - a[1]; stored = int(stored)
other = (m1[0] - m0[0]) / hz - sg_cpu - nf_cpu - j["cpu_seconds"]
print(json.dumps({"rate": int(rate), "sent_each": sent, "sent_per_s": j["records_per_s"], "gen_cpu": j["cpu_seconds"],
    "wall": wall, "other_cpu": other,
    "simguard": {"applied": app, "decoded": b[0] - a[0], "lost": sent - app, "kernel_drops_datagrams": int(d1) - int(d0),
                 "cpu": sg_cpu, "per_cpu_s": app / sg_cpu if sg_cpu else 0},
    "nfcapd": {"stored": stored, "lost": sent - stored, "kernel_drops_datagrams": int(e1) - int(e0),
               "cpu": nf_cpu, "per_cpu_s": stored / nf_cpu if nf_cpu else 0}}))
EOF
}

print_table() {
  $PY - "$WORK/rows" "${WORK}/sbs" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])] if os.path.exists(sys.argv[1]) else []
print()
print("| collector | offered rec/s | sent rec/s | sent | stored/applied | lost | kernel drops (datagrams) | stored/s | server CPU-s | records per CPU-s | generator CPU-s | machine busy (2 CPUs) | notes |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    notes = r["threads"]
    if r["collector"] == "simguard":
        notes = "attributed %.0f%%, violations %d, %.0f journal commits (fdatasync)/s, applied %.1f s after the last send; threads: %s" % (
            100 * r["attributed_share"], r["violations"], r["fsyncs_per_s"], r["drain"], r["threads"])
        if r["dropped_by_server"]:
            notes += "; dropped by server %d" % r["dropped_by_server"]
    if r["other_cpu"] > 0.1 * r["wall"]:
        notes = "CONTENDED (other programs used %.1f CPU-s); " % r["other_cpu"] + notes
    print("| %s | %s | %.0f | %d | %d | %d | %d | %.0f | %.2f | %.0f | %.2f | %s | %s |" % (
        r["collector"], "max" if r["rate"] == 0 else r["rate"], r["sent_per_s"], r["sent"], r["stored"], r["lost"],
        r["kernel_drops_datagrams"], r["per_s"], r["cpu"], r["per_cpu_s"], r["gen_cpu"], r["machine"], notes))
sg = [r for r in rows if r["collector"] == "simguard"]
nf = [r for r in rows if r["collector"] == "nfcapd"]
if sg:
    best = max(sg, key=lambda r: r["per_s"])
    print()
    print("simguard: best applied throughput %.0f records/s (offered %s); records per server CPU-second at that rate: %.0f"
          % (best["per_s"], best["rate"] or "max", best["per_cpu_s"]))
    lossless = [r for r in sg if r["lost"] == 0]
    if lossless:
        print("simguard: highest rate with no loss: %.0f records/s sent" % max(r["sent_per_s"] for r in lossless))
if nf:
    bestn = max(nf, key=lambda r: r["per_s"])
    print("nfcapd:   best stored throughput %.0f records/s (offered %s); records per CPU-second at that rate: %.0f"
          % (bestn["per_s"], bestn["rate"] or "max", bestn["per_cpu_s"]))
    lossless = [r for r in nf if r["lost"] == 0]
    if lossless:
        print("nfcapd:   highest rate with no loss: %.0f records/s sent" % max(r["sent_per_s"] for r in lossless))
    if sg:
        print("ratio simguard/nfcapd: throughput %.2fx, records per CPU-second %.2fx (each at its best-throughput rate)"
              % (best["per_s"] / bestn["per_s"] if bestn["per_s"] else float("nan"),
                 best["per_cpu_s"] / bestn["per_cpu_s"] if bestn["per_cpu_s"] else float("nan")))
        same = {r["rate"]: r for r in nf}
        for r in sg:
            n = same.get(r["rate"])
            if n and n["per_s"]:
                print("  same offered rate %s: simguard %.0f/s (lost %d), nfcapd %.0f/s (lost %d): %.2fx"
                      % (r["rate"] or "max", r["per_s"], r["lost"], n["per_s"], n["lost"], r["per_s"] / n["per_s"]))
if os.path.exists(sys.argv[2]):
    for l in open(sys.argv[2]):
        s = json.loads(l)
        print()
        print("side by side at %d records/s to each (sent %.0f/s each, %d each, generator %.2f CPU-s, %.1f s, other programs %.1f CPU-s%s):"
              % (s["rate"], s["sent_per_s"], s["sent_each"], s["gen_cpu"], s["wall"], max(s["other_cpu"], 0.0),
                 ", CONTENDED" if s["other_cpu"] > 0.1 * s["wall"] else ""))
        g, n = s["simguard"], s["nfcapd"]
        print("  simguard: applied %d, lost %d, kernel drops %d datagrams, %.2f CPU-s, %.0f records/CPU-s"
              % (g["applied"], g["lost"], g["kernel_drops_datagrams"], g["cpu"], g["per_cpu_s"]))
        print("  nfcapd:   stored %d, lost %d, kernel drops %d datagrams, %.2f CPU-s, %.0f records/CPU-s"
              % (n["stored"], n["lost"], n["kernel_drops_datagrams"], n["cpu"], n["per_cpu_s"]))
EOF
}

# Before a step: false once past $DEADLINE; else waits (STEP_QUIET_WAIT s
# at most) for other programs to leave the CPUs.
step_ok() {
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    log "time budget (MAX_SECS) used up: step skipped"
    return 1
  fi
  QUIET_WAIT=${STEP_QUIET_WAIT:-4} wait_quiet >/dev/null
}

flows_throughput_main() {
  set -euo pipefail
  trap flows_cleanup EXIT INT TERM
  local rates=${RATES:-250000 500000 1000000 2000000 0} secs=${STEP_SECS:-8}
  flows_build
  flows_machine
  echo "generator: ipfix_blast, $SOCKETS socket(s), softflowd-like IPFIX template, 27 records per 1,370-byte datagram, sendmmsg batches of 32"
  echo "simguard: $(cd "$FLOWS_ROOT" && git rev-parse --short HEAD)$(cd "$FLOWS_ROOT" && git diff --quiet HEAD -- crates || echo ' + uncommitted changes in crates/')"
  echo "nfcapd: $(nfcapd -V 2>&1 | head -1)"
  wait_quiet
  # Steps start only before MAX_SECS; the watchdog ends the rest 40 s later.
  DEADLINE=$(( $(date +%s) + ${MAX_SECS:-195} ))
  start_watchdog $(( ${MAX_SECS:-195} + 40 ))
  start_simguard_flows
  provision_sessions "$DEVICES"
  echo "simguard receive buffer on the IPFIX socket: $(sock_rcvbuf "${SG_IPFIX##*:}") bytes; journal fsync on"
  # Before each step, wait (QUIET_WAIT s at most) for other programs to
  # leave the CPUs; steps they still disturbed are marked CONTENDED.
  local r
  for r in $rates; do step_ok && simguard_step "$r" "$secs"; done
  if [ "${NFCAPD:-1}" = 1 ]; then
    for r in $rates; do step_ok && nfcapd_step "$r" "$secs"; done
    step_ok && { log "side by side at ${SBS_RATE:-500000} records/s"; side_by_side "${SBS_RATE:-500000}" "$secs"; }
  fi
  echo "simguard memory after the runs: RSS $(awk '/VmRSS/ {print $2, $3}' /proc/"$SG_PID"/status), peak (VmHWM) $(awk '/VmHWM/ {print $2, $3}' /proc/"$SG_PID"/status) ($DEVICES devices with traffic profiles)"
  print_table
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  flows_throughput_main "$@"
fi
