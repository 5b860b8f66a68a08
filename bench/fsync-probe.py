#!/usr/bin/env python3
"""fdatasync latency of the disk under DIR: the floor under a durable answer.

usage: fsync-probe.py DIR [N=2000] [SIZE=8192] [--compare] [--background]

Writes SIZE bytes at the end of a file and fdatasyncs, N times, like the
journal's group commit, and prints p50/p99/p99.9/max in ms.

--compare     also measures writing into a file that was zero-filled (and
              synced) beforehand, like a preallocated journal segment: the
              file's size and blocks do not change, so fdatasync has only data
              to flush and no inode/extent update to commit.
--background  runs another writer on the same filesystem meanwhile (dd of
              256 MiB in a loop, never synced: like a SQLite WAL with
              synchronous=NORMAL, or a build), to show how other writes
              couple into the journal's fdatasync.
"""
import os
import subprocess
import sys
import tempfile
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = {a for a in sys.argv[1:] if a.startswith("--")}
d = args[0] if args else "."
n = int(args[1]) if len(args) > 1 else 2000
size = int(args[2]) if len(args) > 2 else 8192


def probe(zeroed):
    fd, path = tempfile.mkstemp(dir=d, prefix="fsync-probe.")
    try:
        if zeroed:
            z = b"\0" * (1 << 20)
            for _ in range(size * n // len(z) + 1):
                os.write(fd, z)
            os.fsync(fd)
        buf = os.urandom(size)
        lat = []
        off = 0
        for _ in range(n):
            os.pwrite(fd, buf, off)
            off += size
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    return "p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms" % (q(0.5), q(0.99), q(0.999), lat[-1])


bg = None
bg_file = os.path.join(d, "fsync-probe.background")
try:
    if "--background" in flags:
        bg = subprocess.Popen(
            ["sh", "-c", f"while :; do dd if=/dev/zero of='{bg_file}' bs=1M count=256 status=none; done"]
        )
        time.sleep(0.5)
    what = "with a background writer" if bg else "quiet"
    print(f"fdatasync after each {size} B write, {n} samples, {what}:")
    print("  appending (file grows):     " + probe(False))
    if "--compare" in flags:
        print("  into a zero-filled file:    " + probe(True))
finally:
    if bg:
        bg.kill()
        bg.wait()
    if os.path.exists(bg_file):
        os.unlink(bg_file)
