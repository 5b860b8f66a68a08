#!/usr/bin/env python3
"""Record-to-webhook latency from a loopback capture, for bench/notify.sh.

The capture holds (a) the trigger generator's Accounting-Requests (each
device's first record raises its `unprovisioned` alert) and (b) every TCP
segment sent to the webhook receiver. For each POST whose JSON body names
an IMSI ("imsi":"..."), the latency is the capture time of the request's
first segment minus that of the first Accounting-Request with the same
User-Name (the IMSI): the arrival of the record on the wire to the
departure of the webhook request.

usage: notify-latency-pcap.py FILE.pcap ACCT_PORT WEBHOOK_PORT
"""
import importlib.util
import json
import os
import re
import struct
import sys

spec = importlib.util.spec_from_file_location(
    "enforce_pcap", os.path.join(os.path.dirname(__file__), "enforce-latency-pcap.py"))
enforce_pcap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(enforce_pcap)


def tcp_of(linktype, data):
    """(src port, dst port, payload) of an IPv4/TCP frame, or None."""
    if linktype == 1:
        if len(data) < 14 or data[12:14] != b"\x08\x00":
            return None
        ip = data[14:]
    elif linktype == 113:
        ip = data[16:]
    elif linktype in (101, 228):
        ip = data
    else:
        return None
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    ihl = (ip[0] & 15) * 4
    t = ip[ihl:]
    if len(t) < 20:
        return None
    sport, dport = struct.unpack(">HH", t[:4])
    off = (t[12] >> 4) * 4
    return sport, dport, t[off:]


def main():
    path, acct, hook = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    first_record = {}
    # Per client port: the time of the segment that started the current request.
    started = {}
    sent = {}
    imsi_re = re.compile(rb'"imsi":"(\d+)"')
    for t, link, data in enforce_pcap.packets(path):
        u = enforce_pcap.udp_of(link, data)
        if u and u[1] == acct:
            r = enforce_pcap.user_name(u[2])
            if r and r[2] and r[2] not in first_record:
                first_record[r[2]] = t
            continue
        p = tcp_of(link, data)
        if not p or p[1] != hook or not p[2]:
            continue
        if p[2].startswith(b"POST "):
            started[p[0]] = t
        m = imsi_re.search(p[2])
        if m:
            imsi = m.group(1).decode()
            sent.setdefault(imsi, started.get(p[0], t))
    lat = sorted((sent[i] - first_record[i]) * 1000 for i in sent if i in first_record)
    unmatched = sum(1 for i in first_record if i not in sent)
    if not lat:
        print(json.dumps({"n": 0, "unmatched": unmatched}))
        return
    q = lambda x: round(lat[min(len(lat) - 1, int(x * len(lat)))], 2)
    print(json.dumps({"n": len(lat), "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99),
                      "max_ms": round(lat[-1], 2), "records_without_webhook": unmatched}))


if __name__ == "__main__":
    main()
