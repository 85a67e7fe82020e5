#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ from the test fixtures.

    fuzz/make-seeds.py        (python3 stdlib only; run from anywhere)

netflow_datagrams: the first datagrams of every NetFlow/IPFIX fixture (templates included), in
the target's framing `[exporter: u8] [len: u16 BE] [payload]`, plus interleaved exporters.
pcap_datagrams: the fixture captures cut to their first few records (header rewritten).
Other targets' seeds are written by their sections below.
"""
import json
import os
import struct
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tests", "data"))
from replay_udp_pcap import udp_payloads  # noqa: E402

seeds = os.path.join(root, "fuzz", "seeds")
netflow = os.path.join(root, "tests", "data", "netflow")


def write(target, name, data):
    d = os.path.join(seeds, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def frame(exporter, payload):
    return bytes([exporter]) + struct.pack(">H", len(payload)) + payload


fixtures = sorted(f for f in os.listdir(netflow) if f.endswith(".pcap"))
for name in fixtures:
    stem = name[: -len(".pcap")]
    payloads = [p for *_, p in udp_payloads(os.path.join(netflow, name))]
    # Templates come first in every fixture; keep seeds small (libFuzzer's -max_len).
    for count in (1, 3, 6):
        data = b"".join(frame(0, p) for p in payloads[:count])
        if len(data) <= 8192:
            write("netflow_datagrams", f"{stem}-{count}", data)
    # Two exporters interleaved: template scoping per exporter.
    data = b"".join(frame(i % 2, p) for i, p in enumerate(payloads[:4]))
    if len(data) <= 8192:
        write("netflow_datagrams", f"{stem}-two-exporters", data)

    # A capture cut to its first records.
    with open(os.path.join(netflow, name), "rb") as f:
        raw = f.read()
    e = "<" if struct.unpack("<I", raw[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    out, off = bytearray(raw[:24]), 24
    for _ in range(4):
        if off + 16 > len(raw):
            break
        incl = struct.unpack(e + "I", raw[off + 8 : off + 12])[0]
        out += raw[off : off + 16 + incl]
        off += 16 + incl
    write("pcap_datagrams", f"{stem}-4", bytes(out))
