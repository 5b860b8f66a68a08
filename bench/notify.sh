#!/usr/bin/env bash
# Notifications (issue 6): latency from the accounting record that raises an
# alert to the webhook request leaving, and sustained notifications per
# second per channel, against local real peers on 127.0.0.1:
#   webhook: crates/notify/tests/peers/webhook_receiver.py (Python, verifies signatures)
#   email:   aiosmtpd (crates/notify/tests/peers/smtp_sink.py)
#   SMS:     node-smpp SMSC (crates/notify/tests/peers/smsc/smsc.js, receipts on)
#
#   bench/notify.sh                    # build (release, own target dir), ~1 min run
#   SKIP_BUILD=1 SG_BIN=... bench/notify.sh
#
# Phase 1 (latency): `simguard sim --mode load` brings TRIGGER_RATE (20) new,
# unprovisioned devices online per second for DURATION (20) s. Each one's
# first record gives an `unprovisioned` finding, an alert, and one
# notification per channel. A capture on lo pairs each trigger record (by
# IMSI) with the webhook POST that names the same IMSI: wire time from the
# record's arrival to the request's first byte, an upper bound of "finding
# to request".
# Phase 2 (throughput): BURST (3000) more unprovisioned devices as fast as the
# simulator sends them; per channel, sent / (last confirmation - first
# attempt) from the outbox, all three channels delivering at once.
set -euo pipefail
SG_BIN_GIVEN=${SG_BIN:-}
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT INT TERM

TRIGGER_RATE=${TRIGGER_RATE:-20}
DURATION=${DURATION:-20}
BURST=${BURST:-3000}
IN_FLIGHT=${IN_FLIGHT:-16}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-bench}
SG_BIN=${SG_BIN_GIVEN:-$CARGO_TARGET_DIR/release/simguard}
PEERS=$ROOT/crates/notify/tests/peers
AIOPY=${SIMGUARD_PYTHON:-python3}
"$AIOPY" -c 'import aiosmtpd' 2>/dev/null || AIOPY=/usr/bin/python3
"$AIOPY" -c 'import aiosmtpd' || { echo "aiosmtpd missing: pip install aiosmtpd" >&2; exit 1; }
[ -d "$PEERS/smsc/node_modules" ] || (cd "$PEERS/smsc" && npm ci --silent >&2)
command -v dumpcap >/dev/null || { echo "dumpcap missing: apt-get install -y tshark" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" = 1 ]; then
  log "SKIP_BUILD=1: using $SG_BIN"
else
  log "building simguard (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$ROOT" && cargo build --release -p simguard >&2)
fi

echo "# notify: alert -> webhook latency, and notifications/s per channel"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(cd "$ROOT" && git rev-parse --short HEAD)"
wait_quiet
machine

# ------------------------------------------------------------ peers
WH_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
wait_ready() { # file pattern pid
  for _ in $(seq 1 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; exit 1; }
    sleep 0.1
  done
  echo "peer not ready: $1" >&2; exit 1
}
WH_PORT=$(free_port tcp)
/usr/bin/python3 "$PEERS/webhook_receiver.py" --port "$WH_PORT" --secret "$WH_SECRET" \
  --out "$WORK/webhook.jsonl" >"$WORK/webhook.out" 2>/dev/null &
PIDS+=($!); wait_ready "$WORK/webhook.out" READY $!
SMTP_PORT=$(free_port tcp)
"$AIOPY" "$PEERS/smtp_sink.py" --port "$SMTP_PORT" --out "$WORK/mail.jsonl" >"$WORK/smtp.out" 2>/dev/null &
PIDS+=($!); wait_ready "$WORK/smtp.out" READY $!
SMSC_PORT=$(free_port tcp)
node "$PEERS/smsc/smsc.js" "$SMSC_PORT" simguard secret >"$WORK/smsc.jsonl" 2>/dev/null &
PIDS+=($!); wait_ready "$WORK/smsc.jsonl" listening $!
log "peers: webhook :$WH_PORT, smtp :$SMTP_PORT, smsc :$SMSC_PORT"

# ------------------------------------------------------------ simguard
data=$WORK/simguard-data
mkdir -p "$data"
acct=$(free_port udp); auth=$(free_port udp); http=$(free_port tcp); ipfix=$(free_port udp); nf=$(free_port udp)
SG_ACCT=127.0.0.1:$acct
SG_HTTP=127.0.0.1:$http
"$SG_BIN" configfile >"$WORK/simguard.toml"
cat >>"$WORK/simguard.toml" <<TOML

[notify.channels.siem]
type = "webhook"
url = "http://127.0.0.1:$WH_PORT/hook"
secret = "$WH_SECRET"

[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = $SMTP_PORT
tls = "none"
from = "simguard <alerts@example.com>"

[notify.channels.pager]
type = "sms"
host = "127.0.0.1"
port = $SMSC_PORT
system_id = "simguard"
password = "secret"

[[notify.subscriptions]]
name = "soc"
channel = "siem"

[[notify.subscriptions]]
name = "ops"
channel = "mail"
recipients = ["ops@example.com"]

[[notify.subscriptions]]
name = "oncall"
channel = "pager"
recipients = ["+4915112345678"]
TOML
sed -i "s/^max_in_flight = 16/max_in_flight = $IN_FLIGHT/" "$WORK/simguard.toml"
SIMGUARD_DATA_DIR=$data \
SIMGUARD_HTTP__BIND=$SG_HTTP \
SIMGUARD_RADIUS__ACCOUNTING_BIND=$SG_ACCT \
SIMGUARD_RADIUS__AUTH_BIND=127.0.0.1:$auth \
SIMGUARD_RADIUS__COA__SOURCE=127.0.0.1:0 \
SIMGUARD_FLOWS__IPFIX_BIND=127.0.0.1:$ipfix \
SIMGUARD_FLOWS__NETFLOW_BIND=127.0.0.1:$nf \
SIMGUARD_ADMIN_TOKEN=$TOKEN \
SIMGUARD_RADIUS__CLIENTS="[{ name = \"pgw-bench\", address = \"127.0.0.1/32\", secret = \"$SECRET\", require_message_authenticator = false }]" \
RUST_LOG=${SG_LOG:-warn} \
  "$SG_BIN" serve --config "$WORK/simguard.toml" >"$WORK/simguard.log" 2>&1 &
SG_PID=$!
PIDS+=("$SG_PID")
wait_simguard_ready "accounting $SG_ACCT, http $SG_HTTP"

sim() { # seed devices rate duration out
  "$SG_BIN" sim --mode load --target "$SG_ACCT" --secret "$SECRET" --devices "$2" --rate "$3" \
    --duration "$4" --sockets 1 --seed "$1" --unprovisioned-share 1 --no-message-authenticator \
    --json >"$5" 2>"$5.log"
}

# ------------------------------------------------------------ phase 1
TRIG=$((TRIGGER_RATE * DURATION))
sim 7 "$TRIG" "$TRIGGER_RATE" "$DURATION" "$WORK/trig.json" &
TRIG_PID=$!
bg_pid "$TRIG_PID"
TRIG_PORT=
for _ in $(seq 1 200); do
  # (the function runs in a subshell: the simulator is its child)
  for p in $TRIG_PID $(pgrep -P "$TRIG_PID" || true); do
    TRIG_PORT=$(ss -Huanp 2>/dev/null | awk -v p="pid=$p," '$0 ~ p {split($4, a, ":"); print a[length(a)]; exit}')
    [ -n "$TRIG_PORT" ] && break
  done
  [ -n "$TRIG_PORT" ] && break
  sleep 0.02
done
[ -n "$TRIG_PORT" ] || { echo "trigger generator's socket not found" >&2; exit 1; }
dumpcap -q -P -i lo -f "(udp src port $TRIG_PORT and udp dst port $acct) or (tcp dst port $WH_PORT)" \
  -w "$WORK/notify.pcap" >"$WORK/dumpcap.log" 2>&1 &
CAP_PID=$!
PIDS+=("$CAP_PID")
wait "$TRIG_PID" || true
sleep 3
kill "$CAP_PID" 2>/dev/null || true
wait "$CAP_PID" 2>/dev/null || true
echo
echo "## phase 1: $TRIGGER_RATE new unprovisioned devices/s for $DURATION s (3 notifications each)"
/usr/bin/python3 "$BENCH_DIR/notify-latency-pcap.py" "$WORK/notify.pcap" "$acct" "$WH_PORT"

# ------------------------------------------------------------ phase 2
echo
echo "## phase 2: a burst of $BURST unprovisioned devices; max_in_flight $IN_FLIGHT per channel"
before=$(date +%s%3N)
sim 8 "$BURST" 20000 2 "$WORK/burst.json"
total=$((TRIG + BURST))
for _ in $(seq 1 600); do
  left=$(/usr/bin/python3 - "$data/simguard.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT count(*) FROM outbox WHERE status IN ('pending','retrying')").fetchone()[0])
PY
)
  [ "$left" = 0 ] && break
  sleep 0.5
done
/usr/bin/python3 - "$data/simguard.db" "$before" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
since = int(sys.argv[2])
print("channel   sent   failed  retrying  first attempt -> last done   notifications/s  attempt p50/p99 ms")
for ch, in c.execute("SELECT DISTINCT channel FROM outbox WHERE channel != 'unrouted' ORDER BY channel"):
    rows = c.execute("""SELECT o.id, o.status, min(a.time), max(o.done) FROM outbox o
                        JOIN outbox_attempts a ON a.notification = o.id
                        WHERE o.channel = ? AND a.time >= ? GROUP BY o.id""", (ch, since)).fetchall()
    sent = sum(1 for r in rows if r[1] == 'sent')
    failed = sum(1 for r in rows if r[1] == 'failed')
    retrying = c.execute("SELECT count(*) FROM outbox WHERE channel = ? AND status = 'retrying'", (ch,)).fetchone()[0]
    first = min(r[2] for r in rows)
    last = max(r[3] for r in rows if r[3] is not None)
    lat = sorted(x for (x,) in c.execute("""SELECT a.latency_ms FROM outbox_attempts a JOIN outbox o
                 ON a.notification = o.id WHERE o.channel = ? AND a.time >= ?""", (ch, since)))
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    rate = sent / max(0.001, (last - first) / 1000)
    print(f"{ch:8} {sent:6} {failed:8} {retrying:9}  {(last - first) / 1000:8.2f} s                {rate:10.0f}       {p(0.5)}/{p(0.99)}")
PY
echo "receipts matched (SMS): $(/usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM outbox WHERE receipt IS NOT NULL\").fetchone()[0])" "$data/simguard.db")"
echo "peers received: webhook $(wc -l <"$WORK/webhook.jsonl") requests, email $(wc -l <"$WORK/mail.jsonl") messages, smsc $(grep -c submit_sm "$WORK/smsc.jsonl") submit_sm"
