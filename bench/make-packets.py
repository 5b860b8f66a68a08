#!/usr/bin/env python3
"""Writes radclient packet files: Interim-Updates as a PGW sends them.

usage: make-packets.py OUTDIR FILES PACKETS_PER_FILE

Every packet has its own IMSI and session (devices never repeat across files),
with the 3GPP attributes simguard's simulator sends: IMSI, IMEISV, ULI
(TAI+ECGI), serving network, RAT, MS time zone, APN, MSISDN, framed IP,
counters, charging id. Files of ~2,000 packets keep radclient fast (its time
grows faster than linearly with the number of packets in one file).
"""
import os
import sys

out, files, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
n = 0
for f in range(files):
    with open(os.path.join(out, f"acct-{f:02d}.txt"), "w") as fh:
        for k in range(per):
            imsi = f"90170{n:010d}"
            eci = n % (1 << 28)
            tac = n % 65536
            # TAI + ECGI (type 130): MCC 901 MNC 70 encoded as 09 f1 07.
            uli = "0x82" + "09f107" + f"{tac:04x}" + "09f107" + f"{eci:08x}"
            ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            up, down = 1000 + n % 100000, 5000 + n % 700000
            fh.write(
                f'User-Name = "{imsi}"\n'
                f"Acct-Status-Type = Interim-Update\n"
                f'Acct-Session-Id = "{0x5A000000 ^ n:08X}-{n:08X}"\n'
                f"NAS-IP-Address = 127.0.0.1\n"
                f'NAS-Identifier = "pgw-bench"\n'
                f"Framed-IP-Address = {ip}\n"
                f'Called-Station-Id = "iot.simguard"\n'
                f'Calling-Station-Id = "4917{n:08d}"\n'
                f"Acct-Input-Octets = {up}\n"
                f"Acct-Output-Octets = {down}\n"
                f"Acct-Input-Packets = {up // 100}\n"
                f"Acct-Output-Packets = {down // 100}\n"
                f"Acct-Session-Time = 600\n"
                f"Acct-Interim-Interval = 3600\n"
                f'3GPP-IMSI = "{imsi}"\n'
                f'3GPP-IMEISV = "352099{n:08d}23"\n'
                f"3GPP-Charging-ID = {n & 0xFFFFFFFF}\n"
                f"3GPP-PDP-Type = 0\n"
                f"3GPP-SGSN-Address = 127.0.0.2\n"
                f"3GPP-GGSN-Address = 127.0.0.1\n"
                f'3GPP-IMSI-MCC-MNC = "90170"\n'
                f'3GPP-GGSN-MCC-MNC = "90170"\n'
                f'3GPP-SGSN-MCC-MNC = "90170"\n'
                f'3GPP-NSAPI = "5"\n'
                f'3GPP-Selection-Mode = "0"\n'
                f'3GPP-Charging-Characteristics = "0800"\n'
                f"3GPP-RAT-Type = EUTRAN\n"
                f"3GPP-User-Location-Info = {uli}\n"
                f"3GPP-MS-Time-Zone = 0x4000\n"
                "\n"
            )
            n += 1
