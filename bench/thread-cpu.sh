#!/usr/bin/env bash
# Per-thread CPU use of one or more processes over an interval, from /proc.
# usage: thread-cpu.sh SECONDS PID [PID...]
# Prints, per thread: % of one core (utime+stime) during the interval.
set -euo pipefail
secs=$1; shift
hz=$(getconf CLK_TCK)
snap() {
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      [ -r "$t/stat" ] || continue
      # comm may contain spaces: strip everything up to the last ')'.
      s=$(cat "$t/stat" 2>/dev/null) || continue
      comm=$(cat "$t/comm" 2>/dev/null || echo '?')
      rest=${s##*) }
      set -- $rest
      # after "pid (comm) ": state=$1 ... utime=$12 stime=$13
      echo "$pid ${t##*/} $comm ${12} ${13}"
    done
  done
}
a=$(snap "$@"); sleep "$secs"; b=$(snap "$@")
join -j1 <(echo "$a" | awk '{print $1":"$2, $3, $4+$5}' | sort) \
          <(echo "$b" | awk '{print $1":"$2, $4+$5}' | sort) |
  awk -v hz="$hz" -v s="$secs" '{d=($4-$3)/hz/s*100; if (d>=0.5) printf "  %-14s %-18s %6.1f%%\n", $1, $2, d}' |
  sort -k3 -rn
