#!/usr/bin/env python3
"""Trigger-to-send latency from a loopback capture (classic pcap, as
`dumpcap -P` writes it), for bench/enforce-latency.sh.

The capture holds (a) the Accounting-Requests of the trigger generator
(each of its devices' first record is what makes the rule fire: the device
comes online) and (b) every CoA/Disconnect-Request simguard sent to the NAS.
For each CoA/Disconnect, the latency is its capture time minus the capture
time of the first Accounting-Request of the same User-Name (IMSI): the
arrival of the triggering record on the wire to the departure of the
request, so it includes the time the record waited in the socket buffer,
which the server's own histogram cannot see.

usage: enforce-latency-pcap.py FILE.pcap ACCT_PORT NAS_PORT [samples.txt]
prints one JSON object: n, p50/p90/p99/max ms, unmatched, retransmitted.
"""
import json
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            end = "<"
        else:
            end = ">"
            magic = struct.unpack(">I", head[:4])[0]
        nano = magic == 0xA1B23C4D
        linktype = struct.unpack(end + "I", head[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack(end + "IIII", rec)
            data = f.read(incl)
            t = sec + frac / (1e9 if nano else 1e6)
            yield t, linktype, data


def udp_of(linktype, data):
    """(src port, dst port, payload) of an IPv4/UDP frame, or None."""
    if linktype == 1:  # Ethernet (Linux loopback)
        if len(data) < 14 or data[12:14] != b"\x08\x00":
            return None
        ip = data[14:]
    elif linktype == 113:  # Linux cooked
        ip = data[16:]
    elif linktype in (101, 228):  # raw IPv4
        ip = data
    else:
        return None
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    ihl = (ip[0] & 15) * 4
    u = ip[ihl:]
    if len(u) < 8:
        return None
    sport, dport = struct.unpack(">HH", u[:4])
    return sport, dport, u[8:]


def user_name(radius):
    """(code, identifier, User-Name) of a RADIUS packet."""
    if len(radius) < 20:
        return None
    code, ident, length = radius[0], radius[1], struct.unpack(">H", radius[2:4])[0]
    i = 20
    end = min(length, len(radius))
    while i + 2 <= end:
        t, ln = radius[i], radius[i + 1]
        if ln < 2:
            break
        if t == 1:
            return code, ident, radius[i + 2:i + ln].decode("ascii", "replace")
        i += ln
    return code, ident, None


def main():
    path, acct_port, nas_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = sys.argv[4] if len(sys.argv) > 4 else None
    first = {}  # IMSI -> time of its first Accounting-Request
    sent = {}  # IMSI -> time of its first CoA/Disconnect
    retrans = 0
    seen_req = set()
    for t, lt, data in packets(path):
        u = udp_of(lt, data)
        if not u:
            continue
        sport, dport, payload = u
        r = user_name(payload)
        if not r or r[2] is None:
            continue
        code, ident, imsi = r
        if dport == acct_port and code == 4:
            first.setdefault(imsi, t)
        elif dport == nas_port and code in (40, 43):
            key = (sport, ident, payload[4:20])
            if key in seen_req:
                retrans += 1
                continue
            seen_req.add(key)
            sent.setdefault(imsi, t)
    lat = []
    unmatched = 0
    for imsi, t in sent.items():
        if imsi in first:
            lat.append((t - first[imsi]) * 1000.0)
        else:
            unmatched += 1
    lat.sort()

    def q(p):
        if not lat:
            return None
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3)

    if out:
        with open(out, "w") as f:
            f.write("\n".join("%.3f" % x for x in lat) + "\n")
    print(json.dumps({
        "n": len(lat),
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "max_ms": round(lat[-1], 3) if lat else None,
        "min_ms": round(lat[0], 3) if lat else None,
        "unmatched": unmatched,
        "retransmitted": retrans,
        "trigger_records": len(first),
    }))


if __name__ == "__main__":
    main()
