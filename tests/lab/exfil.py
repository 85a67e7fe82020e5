#!/usr/bin/env python3
"""Exfiltration sender: connects to HOST:PORT and uploads BYTES of random data at about
RATE bytes/s, then closes. Bounded by its byte count (and the caller's `timeout`).
Usage: exfil.py HOST PORT BYTES RATE"""
import os
import socket
import sys
import time

host, port, total, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
chunk = os.urandom(64 * 1024)
s = socket.create_connection((host, port), timeout=10)
sent, t0 = 0, time.time()
while sent < total:
    n = min(len(chunk), total - sent)
    s.sendall(chunk[:n])
    sent += n
    ahead = sent / rate - (time.time() - t0)
    if ahead > 0:
        time.sleep(ahead)
s.shutdown(socket.SHUT_WR)
s.settimeout(10)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
s.close()
print("exfil: sent %d bytes in %.1f s" % (sent, time.time() - t0), file=sys.stderr)
