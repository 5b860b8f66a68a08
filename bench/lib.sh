# Shared helpers for the accounting benchmarks; sourced by acct-*.sh.
# Everything started here is recorded in $PIDS and stopped by `cleanup`
# (installed as an EXIT/INT/TERM trap by the scripts). Traffic goes only to
# 127.0.0.1.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
SG_BIN=${SG_BIN:-$ROOT/target/release/simguard}
SECRET=s3cret
TOKEN=bench-token
PY=${PY:-python3}
PIDS=()
# Other work on the machine (compilers...) would be measured as our
# slowness: as root, run this script and everything it starts (servers and
# load generators alike) at a higher priority. BENCH_NICE=0 turns it off.
BENCH_NICE=${BENCH_NICE:--15}
if [ "$(id -u)" = 0 ] && [ "$BENCH_NICE" != 0 ]; then
  renice -n "$BENCH_NICE" -p $$ >/dev/null 2>&1 || true
fi
WORK=$(mktemp -d /tmp/simguard-bench.XXXXXX)

# Background work started inside command substitutions (load generators)
# records its pids in $WORK/bg.pids, since those subshells cannot add to PIDS.
bg_pid() { echo "$1" >>"$WORK/bg.pids"; }

cleanup() {
  local rc=$?
  local p
  if [ -f "$WORK/bg.pids" ]; then
    while read -r p; do
      # Children first (timeout/time wrappers and what they run), by parent pid.
      pkill -TERM -P "$p" 2>/dev/null || true
      kill "$p" 2>/dev/null || true
    done <"$WORK/bg.pids"
  fi
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then
    echo "work files kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}

log() { echo "== $*" >&2; }

machine() {
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "disk of $WORK: $(df -P "$WORK" | awk 'NR==2 {print $1}') ($(findmnt -n -o FSTYPE --target "$WORK" 2>/dev/null || echo '?'))"
  echo "note: load generators and servers share these $(nproc) CPUs; all run at nice $(ps -o ni= -p $$ | tr -d ' ')"
  [ "${PIN:-0}" = 1 ] && echo "PIN=1: servers pinned to CPU 1, load generators to CPU 0"
  echo "simulator: simguard sim --mode load, ${SIM_SOCKETS:-16} sockets x 256 ids in flight, ${SIM_DEVICES:-10000} devices, Interim-Updates without Message-Authenticator"
}

# CPU busy share (percent of all CPUs) over one second, from /proc/stat.
cpu_busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local ta=0 tb=0 i
  for i in 1 2 3 4 5 6 7 8; do ta=$((ta + a[i])); tb=$((tb + b[i])); done
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) tot=$((tb - ta))
  echo $(( tot > 0 ? 100 * (tot - idle) / tot : 0 ))
}

# Waits (up to QUIET_WAIT seconds) for the machine to be idle before
# measuring; other work on the 2 cores would be measured as our slowness.
wait_quiet() {
  local waited=0 busy
  while :; do
    busy=$(cpu_busy)
    if [ "$busy" -le "${QUIET_MAX_BUSY:-15}" ]; then
      log "machine idle enough (${busy}% busy)"
      return 0
    fi
    if [ "$waited" -ge "${QUIET_WAIT:-20}" ]; then
      log "WARNING: machine is ${busy}% busy with other work before the run"
      echo "WARNING: other work kept the CPUs ${busy}% busy at start (benchmark runs at nice $(ps -o ni= -p $$ | tr -d ' ')): numbers may be pessimistic"
      return 0
    fi
    sleep 1; waited=$((waited + 2))
  done
}

# PIN=1: servers on CPU 1, load generators on CPU 0 (taskset), so that each
# has a core of its own and the server's capacity on one core shows.
SERVER_CPU=()
LOADGEN_CPU=()
if [ "${PIN:-0}" = 1 ]; then
  SERVER_CPU=(taskset -c 1)
  LOADGEN_CPU=(taskset -c 0)
fi

free_port() {
  # $1: udp or tcp
  $PY - "$1" <<'EOF'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
}

build_simguard() {
  if [ "${SKIP_BUILD:-0}" = 1 ]; then
    log "SKIP_BUILD=1: using $SG_BIN"
    echo "simguard binary: $SG_BIN (not rebuilt; file dated $(date -u -r "$SG_BIN" +%Y-%m-%dT%H:%M:%SZ))${SG_COMMIT:+, built from $SG_COMMIT}"
  else
    log "building simguard (release)"
    (cd "$ROOT" && cargo build --release -p simguard >&2)
  fi
  [ -x "$SG_BIN" ] || { echo "no simguard binary at $SG_BIN" >&2; exit 1; }
}

# Starts `simguard serve` with a fresh data dir; sets SG_PID, SG_ACCT, SG_HTTP.
# Waits until the simguard started as $SG_PID answers /readyz on $SG_HTTP;
# exits with its log if it dies or takes more than 10 s. $1 describes it.
wait_simguard_ready() {
  local i
  for i in $(seq 1 100); do
    if curl -sf "http://$SG_HTTP/readyz" >/dev/null 2>&1; then
      log "simguard up (pid $SG_PID, $1)"
      return 0
    fi
    kill -0 "$SG_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/simguard.log" >&2
  echo "simguard did not start" >&2
  exit 1
}

start_simguard() {
  local data=$WORK/simguard-data
  rm -rf "$data"; mkdir -p "$data"
  local acct http auth
  acct=$(free_port udp); auth=$(free_port udp); http=$(free_port tcp)
  SG_ACCT=127.0.0.1:$acct
  SG_HTTP=127.0.0.1:$http
  SIMGUARD_DATA_DIR=$data \
  SIMGUARD_HTTP__BIND=$SG_HTTP \
  SIMGUARD_RADIUS__ACCOUNTING_BIND=$SG_ACCT \
  SIMGUARD_RADIUS__AUTH_BIND=127.0.0.1:$auth \
  SIMGUARD_ADMIN_TOKEN=$TOKEN \
  SIMGUARD_RADIUS__CLIENTS="[{ name = \"bench\", address = \"127.0.0.1/32\", secret = \"$SECRET\", require_message_authenticator = false }]" \
  RUST_LOG=${SG_LOG:-warn} \
    "${SERVER_CPU[@]}" "$SG_BIN" serve >"$WORK/simguard.log" 2>&1 &
  SG_PID=$!
  PIDS+=("$SG_PID")
  wait_simguard_ready "accounting $SG_ACCT, http $SG_HTTP, data $data"
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

sg_status() {
  curl -sf -H "Authorization: Bearer $TOKEN" "http://$SG_HTTP/api/v1/status"
}

sg_metrics() {
  curl -sf "http://$SG_HTTP/metrics"
}

# Private FreeRADIUS raddb: only the detail module, writing to $WORK, and an
# accounting listener. $1 = max_servers (thread pool size); sets FR_PID, FR_ACCT, FR_DETAIL.
start_freeradius() {
  local threads=$1
  local dir=$WORK/raddb-$threads
  rm -rf "$dir"; cp -a /etc/freeradius/3.0 "$dir"
  rm -f "$dir"/sites-enabled/* "$dir"/mods-enabled/*
  ln -s ../mods-available/always "$dir/mods-enabled/always"
  mkdir -p "$WORK/fr-log" "$WORK/fr-run"
  FR_DETAIL=$WORK/detail-$threads
  rm -f "$FR_DETAIL"
  local port; port=$(free_port udp)
  FR_ACCT=127.0.0.1:$port
  # Paths into the work dir, run as the current user, and room for the
  # request rate (max_requests counts requests still within cleanup_delay).
  sed -i \
    -e "s|^raddbdir = .*|raddbdir = $dir|" \
    -e "s|^logdir = .*|logdir = $WORK/fr-log|" \
    -e "s|^run_dir = .*|run_dir = $WORK/fr-run|" \
    -e "s|^\([[:space:]]*\)user = freerad|\1#user = freerad|" \
    -e "s|^\([[:space:]]*\)group = freerad|\1#group = freerad|" \
    -e "s|^max_requests = .*|max_requests = 1048576|" \
    -e "s|^\([[:space:]]*\)start_servers = .*|\1start_servers = $threads|" \
    -e "s|^\([[:space:]]*\)max_servers = .*|\1max_servers = $threads|" \
    -e "s|^\([[:space:]]*\)max_spare_servers = .*|\1max_spare_servers = $threads|" \
    "$dir/radiusd.conf"
  cat >"$dir/mods-enabled/detail" <<EOF
detail {
	filename = $FR_DETAIL
	escape_filenames = no
	permissions = 0600
	header = "%t"
}
EOF
  cat >"$dir/sites-enabled/acct" <<EOF
server bench {
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = $port
		# As large as net.core.rmem_max allows (simguard forces 16 MiB as
		# root); the 208 KiB default drops bursts of requests in flight.
		recv_buff = $(sysctl -n net.core.rmem_max 2>/dev/null || echo 4194304)
	}
	preacct {
		ok
	}
	accounting {
		detail
	}
}
EOF
  cat >"$dir/clients.conf" <<EOF
client bench {
	ipaddr = 127.0.0.1
	secret = $SECRET
	require_message_authenticator = no
}
EOF
  "${SERVER_CPU[@]}" freeradius -f -d "$dir" -l "$WORK/freeradius-$threads.log" >/dev/null 2>&1 &
  FR_PID=$!
  PIDS+=("$FR_PID")
  local i
  for i in $(seq 1 100); do
    if grep -q "Ready to process requests" "$WORK/freeradius-$threads.log" 2>/dev/null; then
      log "FreeRADIUS up (pid $FR_PID, $threads threads, accounting $FR_ACCT, detail $FR_DETAIL)"
      return 0
    fi
    kill -0 "$FR_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/freeradius-$threads.log" >&2
  echo "FreeRADIUS did not start" >&2
  exit 1
}

# CPU time (user + system, all threads) a process has used so far, in clock ticks.
proc_ticks() {
  local s; s=$(cat /proc/"$1"/stat 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  set -- $s
  echo $(( ${12} + ${13} ))
}
CLK_TCK=$(getconf CLK_TCK)

# Busy and total jiffies of all CPUs so far, from /proc/stat: "busy total".
sys_ticks() {
  awk 'NR == 1 {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}' /proc/stat
}

# Sectors (512 B) written so far to the block device holding $WORK.
disk_sectors_written() {
  local dev; dev=$(basename "$(findmnt -n -o SOURCE --target "$WORK" 2>/dev/null || echo none)")
  awk -v d="$dev" '$3 == d {print $10; found = 1} END {if (!found) print 0}' /proc/diskstats
}

# CPU used by everything else on the machine between two sys_ticks samples,
# in % of one core: $1 "busy total" before, $2 after, $3 our processes' ticks.
# (Also holds kernel softirq work not charged to a process: a few %.)
other_cpu() {
  local b0 t0 b1 t1
  read -r b0 t0 <<<"$1"; read -r b1 t1 <<<"$2"
  local ncpu; ncpu=$(nproc)
  echo "$b0 $t0 $b1 $t1 $3 $ncpu" | awk '{busy = $3 - $1; tot = ($4 - $2) / $6; o = (busy - $5) / tot * 100; if (o < 0) o = 0; printf "%.0f", o}'
}

# The simulator in load mode: $1 target, $2 rate, $3 seconds. Prints one
# JSON object (the simulator's report); the simulator's own CPU seconds go to
# $WORK/sim.cpu.
run_sim() {
  timeout $(( $3 + 30 )) /usr/bin/time -f "%U %S" -o "$WORK/sim.cpu" "${LOADGEN_CPU[@]}" "$SG_BIN" sim --mode load --target "$1" --secret "$SECRET" \
    --devices "${SIM_DEVICES:-10000}" --rate "$2" --duration "$3" \
    --sockets "${SIM_SOCKETS:-16}" --no-message-authenticator --json >"$WORK/sim.json" 2>>"$WORK/sim.log" &
  local pid=$! rc=0
  bg_pid "$pid"
  wait "$pid" || rc=$?
  cat "$WORK/sim.json"
  return $rc
}

# radclient packet files (made once).
make_packets() {
  if [ ! -d "$WORK/packets" ]; then
    $PY "$BENCH_DIR/make-packets.py" "$WORK/packets" "${RC_PROCS:-4}" "${RC_PACKETS:-2000}"
  fi
}

# Runs RC_PROCS radclient loops side by side against $1. Each loop runs
# radclient RC_ROUNDS times on its own 2,000-packet file (-c 1: every request
# is distinct; with -c N radclient sometimes repeats a packet with the same
# Identifier and authenticator, which servers rightly treat as a
# retransmission), RC_INFLIGHT in flight. Prints:
# "<answered> <lost> <wall seconds> <radclient CPU seconds>"
run_radclients() {
  make_packets
  local target=$1 i files=("$WORK"/packets/acct-*.txt)
  local t0 t1 pids=()
  rm -f "$WORK"/radclient-*.out "$WORK/radclient.cpu"
  t0=$(date +%s.%N)
  for i in $(seq 0 $(( ${RC_PROCS:-4} - 1 ))); do
    (
      for _ in $(seq 1 "${RC_ROUNDS:-10}"); do
        timeout "${RC_TIMEOUT:-30}" /usr/bin/time -a -o "$WORK/radclient.cpu" -f "%U %S" "${LOADGEN_CPU[@]}" radclient -s -q -t "${RC_WAIT:-2}" -r 1 -c 1 -p "${RC_INFLIGHT:-256}" \
          -f "${files[$i]}" "$target" acct "$SECRET" >>"$WORK/radclient-$i.out" 2>&1 || true
      done
    ) &
    pids+=($!)
    bg_pid "$!"
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  t1=$(date +%s.%N)
  local acc lost
  acc=$(cat "$WORK"/radclient-*.out | awk '/Accepted/ {s += $3} END {print s + 0}')
  lost=$(cat "$WORK"/radclient-*.out | awk '/Lost/ {s += $3} END {print s + 0}')
  local cpu
  cpu=$(awk '/^[0-9.]+ [0-9.]+$/ {s += $1 + $2} END {printf "%.2f", s}' "$WORK/radclient.cpu" 2>/dev/null || echo 0)
  echo "$acc $lost $(echo "$t1 - $t0" | bc -l) $cpu"
}

# Fields from a simulator JSON report: prints "answered_rate p50_ms p99_ms timeouts sent answered achieved_rate"
sim_fields() {
  $PY -c '
import json, sys
j = json.load(sys.stdin)
print("%.0f %.2f %.2f %d %d %d %.0f" % (j["answered_rate"], j["latency_p50_us"] / 1000, j["latency_p99_us"] / 1000,
      j["timeouts"], j["sent"], j["answered"], j["achieved_rate"]))'
}

# Quantile of a Prometheus histogram from two scrapes (delta): $1 before file,
# $2 after file, $3 metric base name, $4 quantile (0..1). Prints seconds
# (the upper bound of the bucket holding the quantile) or "n/a".
hist_quantile() {
  $PY - "$1" "$2" "$3" "$4" <<'EOF'
import re, sys
def load(path, name):
    b = {}
    for line in open(path):
        m = re.match(r'^%s_bucket\{le="([^"]+)"\} (\S+)' % re.escape(name), line)
        if m:
            b[m.group(1)] = float(m.group(2))
    return b
a, c = load(sys.argv[1], sys.argv[3]), load(sys.argv[2], sys.argv[3])
q = float(sys.argv[4])
les = sorted(c, key=lambda k: float("inf") if k == "+Inf" else float(k))
d = [(le, c[le] - a.get(le, 0.0)) for le in les]
total = d[-1][1] if d else 0
if total <= 0:
    print("n/a"); sys.exit()
for le, n in d:
    if n >= q * total:
        print(le); break
EOF
}

# Sum/count delta of a Prometheus histogram: prints "count mean_seconds".
hist_mean() {
  $PY - "$1" "$2" "$3" <<'EOF'
import re, sys
def val(path, key):
    for line in open(path):
        if line.startswith(key + " "):
            return float(line.split()[1])
    return 0.0
n = sys.argv[3]
cnt = val(sys.argv[2], n + "_count") - val(sys.argv[1], n + "_count")
s = val(sys.argv[2], n + "_sum") - val(sys.argv[1], n + "_sum")
print("%d %.6f" % (cnt, s / cnt if cnt else 0))
EOF
}
