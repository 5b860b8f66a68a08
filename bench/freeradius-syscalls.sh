#!/usr/bin/env bash
# What FreeRADIUS's detail module does per accounting request, from the
# system calls of the server (strace -c) while radclient sends 2,000
# Interim-Updates: shows whether the records are fsync'ed (they are not: one
# open + write + close of the detail file per request). 127.0.0.1 only.
#
#   bench/freeradius-syscalls.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap cleanup EXIT INT TERM
command -v strace >/dev/null || { echo "strace missing: apt-get install -y strace" >&2; exit 1; }
start_freeradius 4
export RC_PROCS=1
make_packets
strace -f -c -o "$WORK/strace.txt" \
  -e trace=fsync,fdatasync,sync_file_range,msync,openat,write,writev,pwrite64,close,recvfrom,recvmsg,sendmsg,sendto \
  -p "$FR_PID" 2>/dev/null &
tracer=$!
sleep 1
radclient -s -q -t 2 -r 1 -c 1 -p 64 -f "$WORK/packets/acct-00.txt" "$FR_ACCT" acct "$SECRET" | grep -E "Accepted|Lost" || true
sleep 0.5
kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
echo "system calls of FreeRADIUS (all threads) for these requests:"
cat "$WORK/strace.txt"
if grep -qE " (fsync|fdatasync|sync_file_range|msync)$" "$WORK/strace.txt"; then
  echo "=> FreeRADIUS synced the detail file"
else
  echo "=> no fsync/fdatasync/sync_file_range/msync: detail records go to the page cache only"
fi
