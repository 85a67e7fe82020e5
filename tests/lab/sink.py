#!/usr/bin/env python3
"""Attacker-side receivers. `sink.py tcp IP PORT` accepts one connection and discards
what it receives (exfiltration); `sink.py udp PORT` binds 127.0.0.1:PORT and discards
datagrams (the NetFlow collector port, so exporters never see ECONNREFUSED). Exit on
SIGTERM/SIGINT or, for tcp, when the peer closes."""
import signal
import socket
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if sys.argv[1] == "tcp":
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((sys.argv[2], int(sys.argv[3])))
    ls.listen(1)
    c, addr = ls.accept()
    n = 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        n += len(d)
    c.close()
    print("sink: received %d bytes from %s" % (n, addr[0]), file=sys.stderr)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", int(sys.argv[2])))
    n = 0
    try:
        while True:
            s.recv(65535)
            n += 1
    finally:
        print("sink: %d datagrams on port %s" % (n, sys.argv[2]), file=sys.stderr)
