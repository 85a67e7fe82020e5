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


# snmp_replies: GetBulk replies of an agent with two interfaces, in the target's framing
# (`mode`, then `[len: u16 BE] [datagram]`, a zero-length frame between polls).
def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(nb)]) + nb
    return bytes([tag]) + head + body


def integer(v, tag=0x02):
    return tlv(tag, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def unsigned(v, tag):
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\0" + b
    return tlv(tag, b)


def oid(arcs):
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.insert(0, 0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(chunk)
    return tlv(0x06, body)


def varbinds(pairs):
    return tlv(0x30, b"".join(tlv(0x30, oid(o) + v) for o, v in pairs))


def response_pdu(pairs, req_id=1):
    return tlv(0xA2, integer(req_id) + integer(0) + integer(0) + varbinds(pairs))


def v2c(pairs):
    return tlv(0x30, integer(1) + tlv(0x04, b"public") + response_pdu(pairs))


def v3_noauth(pairs):
    usm = tlv(0x30, tlv(0x04, b"\x80\x00\x1f\x88\x04fuzz") + integer(1) + integer(100)
              + tlv(0x04, b"fuzz") + tlv(0x04, b"") + tlv(0x04, b""))
    header = tlv(0x30, integer(1) + integer(65507) + tlv(0x04, b"\x00") + integer(3))
    scoped = tlv(0x30, tlv(0x04, b"\x80\x00\x1f\x88\x04fuzz") + tlv(0x04, b"") + response_pdu(pairs))
    return tlv(0x30, integer(3) + header + tlv(0x04, usm) + scoped)


SYS_UPTIME_0 = [1, 3, 6, 1, 2, 1, 1, 3, 0]
IF_NAME = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1]
IF_DESCR = [1, 3, 6, 1, 2, 1, 2, 2, 1, 2]
IF_HC_IN = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6]
IF_HC_OUT = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10]


def poll(ticks, octets):
    first = [(SYS_UPTIME_0, unsigned(ticks, 0x43))]
    for idx in (1, 2):
        first += [
            (IF_NAME + [idx], tlv(0x04, b"eth%d" % idx)),
            (IF_DESCR + [idx], tlv(0x04, b"Ethernet %d" % idx)),
            (IF_HC_IN + [idx], unsigned(octets * idx, 0x46)),
            (IF_HC_OUT + [idx], unsigned(octets * idx // 2, 0x46)),
        ]
    # The next reply walks off every column (endOfMibView).
    last = [(c + [9], tlv(0x82, b"")) for c in (IF_NAME, IF_DESCR, IF_HC_IN, IF_HC_OUT)]
    return first, last


def snmp_seed(mode, encode):
    out = bytes([mode])
    for n, (ticks, octets) in enumerate([(1000, 10_000), (2000, 60_000), (3000, 90_000)]):
        if n:
            out += b"\0\0"
        replies = list(poll(ticks, octets))
        if n == 0 and encode is v3_noauth:
            # An unauthenticated reply first teaches the client the engine (discovery).
            replies.insert(0, replies[0])
        for reply in replies:
            d = encode(reply)
            out += struct.pack(">H", len(d)) + d
    return out


write("snmp_replies", "v2c-three-polls", snmp_seed(0, v2c))
write("snmp_replies", "v3-noauth-three-polls", snmp_seed(1, v3_noauth))
write("snmp_replies", "v3-auth-three-polls", snmp_seed(2, v3_noauth))
write("snmp_replies", "v3-priv-three-polls", snmp_seed(3, v3_noauth))
