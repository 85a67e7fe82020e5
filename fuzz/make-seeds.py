#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ from the test fixtures.

    fuzz/make-seeds.py        (python3 stdlib only; run from anywhere)

netflow_datagrams: the first datagrams of every NetFlow/IPFIX fixture (templates included), in
the target's framing `[exporter: u8] [len: u16 BE] [payload]`, plus interleaved exporters.
netflow_hot_path: the same first datagrams (same framing).
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
            # netflow_hot_path: the same, so the templates learnt make data go the hot path.
            write("netflow_hot_path", f"{stem}-{count}", data)
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


# frame: captured frames for the packet meter, in the target's framing
# `[link: u8] [time step: u8] [len: u16 BE] [frame]` (link 0 Ethernet, 1 raw IP, 2 Linux SLL,
# 3 SLL2, 4 BSD null). One conversation per seed, plus a mix of every header the parser walks.
def ipv4(proto, l4, src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02", frag=0):
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, frag, 64, proto, 0, src, dst) + l4


def ipv6(nxt, l4, src=b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x01", dst=b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x02"):
    return struct.pack(">IHBB16s16s", 6 << 28, len(l4), nxt, 64, src, dst) + l4


def tcp(sport, dport, flags, payload=b""):
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 64240, 0, 0) + payload


def udp(sport, dport, payload=b""):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def eth(ip, ethertype=0x0800, vlan=None):
    head = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01"
    if vlan is not None:
        head += struct.pack(">HH", 0x8100, vlan)
    return head + struct.pack(">H", ethertype) + ip


def sll(ip, ethertype=0x0800):
    return struct.pack(">HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", ethertype) + ip


def frames(*items):
    return b"".join(struct.pack(">BBH", link, step, len(f)) + f for link, step, f in items)


client = [(0, tcp(40000, 80, 0x02)), (1, tcp(80, 40000, 0x12)), (0, tcp(40000, 80, 0x10)),
          (0, tcp(40000, 80, 0x18, b"GET / HTTP/1.1\r\n\r\n")), (1, tcp(80, 40000, 0x11))]


conv = []
for back, seg in client:
    src, dst = (b"\x0a\0\0\x02", b"\x0a\0\0\x01") if back else (b"\x0a\0\0\x01", b"\x0a\0\0\x02")
    conv.append((0, 3, eth(ipv4(6, seg, src, dst))))
write("frame", "ethernet-tcp-conversation", frames(*conv))
write("frame", "vlan-udp-dns", frames((0, 1, eth(ipv4(17, udp(5353, 53, b"\0" * 12)), vlan=42)),
                                      (0, 1, eth(ipv4(17, udp(53, 5353, b"\0" * 40), b"\x0a\0\0\x02", b"\x0a\0\0\x01"), vlan=42))))
hbh = bytes([17, 0]) + b"\0" * 6
write("frame", "ipv6-hop-by-hop-udp", frames((0, 0, eth(ipv6(0, hbh + udp(1000, 2000, b"abcd")), 0x86DD))))
frag = bytes([17, 0]) + struct.pack(">HI", 185 << 3, 7)
write("frame", "ipv6-fragment", frames((1, 0, ipv6(44, frag + b"\0" * 16))))
write("frame", "icmp-echo-raw", frames((1, 0, ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"\0" * 56)),
                                      (1, 0, ipv4(1, bytes([0, 0, 0, 0, 0, 1, 0, 1]) + b"\0" * 56, b"\x0a\0\0\x02", b"\x0a\0\0\x01"))))
write("frame", "ipv4-fragments", frames((0, 0, eth(ipv4(17, udp(1, 2, b"\0" * 24), frag=0x2000))),
                                       (0, 0, eth(ipv4(17, b"\0" * 24, frag=3)))))
write("frame", "sll-and-null", frames((2, 0, sll(ipv4(6, tcp(1, 2, 0x02)))),
                                     (4, 0, b"\x02\0\0\0" + ipv4(6, tcp(2, 1, 0x14), b"\x0a\0\0\x02", b"\x0a\0\0\x01"))))
write("frame", "idle-then-eviction", frames(*[(0, 200, eth(ipv4(17, udp(1000 + i, 53)))) for i in range(12)]))


# samples_messages: `[kind: u8] [len: u16 BE] [payload]` frames; kind 0 request, 1 ack, 2 chunk,
# 3 control topic (sinks/mqtt/samples/).
import hashlib  # noqa: E402


def sframe(kind, payload):
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


def schunk(tid, index, count, whole, data):
    return (b"NWS1" + bytes([len(tid)]) + tid + struct.pack(">IIQ", index, count, len(whole))
            + hashlib.sha256(whole).digest() + hashlib.sha256(data).digest() + data)


csv_text = b"ts_ms,a,score\n" + b"".join(b"%d,1,0.5\n" % i for i in range(200))
parts = [csv_text[i:i + 1024] for i in range(0, len(csv_text), 1024)]
req = b'{"format":1,"id":"fuzz","chunk_bytes":1024,"window":2,"from":0}'
write("samples_messages", "request-acks-chunks",
      sframe(0, req) + sframe(1, b'{"id":"fuzz","next":1}')
      + b"".join(sframe(2, schunk(b"fuzz", i, len(parts), csv_text, p)) for i, p in enumerate(parts))
      + sframe(3, b"netwarden/fleet/samples/s/d/ack"))
write("samples_messages", "chunks-out-of-order",
      b"".join(sframe(2, schunk(b"fuzz", i, len(parts), csv_text, p))
               for i, p in reversed(list(enumerate(parts)))))
write("samples_messages", "resume-request",
      sframe(0, b'{"format":1,"id":"fuzz","chunk_bytes":2048,"window":64,"from":3}')
      + sframe(1, b'{"id":"fuzz","next":4294967295}') + sframe(3, b"netwarden/fleet/samples/s/d/request"))
write("samples_messages", "request-schema",
      sframe(0, b'{"format":1,"id":"fuzz","chunk_bytes":1024,"window":2,"schema":"flow-v2"}')
      + sframe(0, b'{"format":1,"id":"fuzz2","chunk_bytes":1024,"window":2,"schema":"flow-v9"}'))
