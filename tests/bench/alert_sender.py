#!/usr/bin/env python3
"""Background export traffic at a fixed rate with attack records embedded at known send times,
for tests/bench/alert_latency.sh.

    alert_sender.py --pcap FILE --to 127.0.0.1:PORT --rate DATAGRAMS_PER_S --seconds S
                    --attacks N --out FILE

The capture's export datagrams (Ethernet pcap, IPv4/UDP) are replayed in a loop at --rate, paced
in slices of about 1 ms. N times, evenly spread over the run, one more datagram goes out from
the same socket: a NetFlow v9 datagram of its own stream (source id 0x4e570001; the template
travels in the same datagram, so no earlier state is needed) with one flow record the flow
detector alerts on: a lone TCP SYN without answer from a host never seen before (10.250.x.y, one
per attack, so each opens its own incident), timed "now" by the exporter's clock. Just before it
is sent, its wall-clock time (Unix us) goes to --out as a JSON line
{"attack": K, "src": "10.250.0.K", "sent_unix_us": T}. Prints one JSON summary line at the end.
Loopback only; bounded by --seconds (at most 120) and --attacks (at most 10,000).
"""
import argparse
import json
import socket
import struct
import sys
import time

SOURCE_ID = 0x4E570001
TEMPLATE_ID = 256
# (element id, length): src/dst IPv4, ports, protocol, TCP flags, packets, bytes, first, last.
FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 4), (1, 4), (22, 4), (21, 4)]


def pcap_udp_payloads(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        end = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        end = ">"
    else:
        sys.exit(f"{path}: not a classic pcap")
    (link,) = struct.unpack(end + "I", data[20:24])
    if link != 1:
        sys.exit(f"{path}: link type {link}, only Ethernet (1) is read")
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        eth = 14
        (etype,) = struct.unpack(">H", frame[12:14])
        if etype == 0x8100:
            (etype,) = struct.unpack(">H", frame[16:18])
            eth = 18
        if etype != 0x0800 or frame[eth + 9] != 17:
            continue
        ihl = (frame[eth] & 0x0F) * 4
        udp = eth + ihl
        (ulen,) = struct.unpack(">H", frame[udp + 4 : udp + 6])
        out.append(frame[udp + 8 : udp + ulen])
    return out


def attack_datagram(k, uptime, seq):
    src = bytes([10, 250, (k >> 8) & 0xFF, k & 0xFF])
    hdr = struct.pack(">HHIIII", 9, 2, uptime, int(time.time()), seq, SOURCE_ID)
    tmpl = struct.pack(">HH", TEMPLATE_ID, len(FIELDS)) + b"".join(struct.pack(">HH", i, n) for i, n in FIELDS)
    tset = struct.pack(">HH", 0, 4 + len(tmpl)) + tmpl
    rec = (
        src
        + bytes([10, 251, 0, 1])
        + struct.pack(">HHBBIIII", (40000 + k) & 0xFFFF, 445, 6, 0x02, 1, 44, uptime - 5, uptime - 5)
    )
    padded = (4 + len(rec) + 3) // 4 * 4
    dset = struct.pack(">HH", TEMPLATE_ID, padded) + rec + b"\0" * (padded - 4 - len(rec))
    return hdr + tset + dset, socket.inet_ntoa(src)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--attacks", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    host, port = a.to.rsplit(":", 1)
    if not host.startswith("127."):
        sys.exit(f"only loopback addresses, not {host}")
    if not (0.5 <= a.seconds <= 120 and 0 < a.rate <= 1_000_000 and 0 < a.attacks <= 10_000):
        sys.exit("--seconds 0.5..120, --rate 1..1M, --attacks 1..10000")
    to = (host, int(port))
    payloads = pcap_udp_payloads(a.pcap)
    if not payloads:
        sys.exit("nothing to send")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    send = sock.sendto
    total = int(a.rate * a.seconds)
    attack_at = [(k + 0.5) * a.seconds / a.attacks for k in range(a.attacks)]
    log = open(a.out, "w")
    n = len(payloads)
    sent = next_attack = seq = 0
    start = time.monotonic()
    while sent < total or next_attack < len(attack_at):
        t = time.monotonic() - start
        due = min(int(t * a.rate), total)
        while sent < due:
            try:
                send(payloads[sent % n], to)
            except OSError:
                break
            sent += 1
        while next_attack < len(attack_at) and attack_at[next_attack] <= t:
            k = next_attack
            d, src = attack_datagram(k, int((time.monotonic() - start) * 1000) + 100_000, seq)
            seq += 1
            sent_us = time.time_ns() // 1000
            send(d, to)
            log.write(json.dumps({"attack": k, "src": src, "sent_unix_us": sent_us}) + "\n")
            next_attack += 1
        if t > a.seconds * 2 + 5:
            break
        time.sleep(0.0005)
    log.close()
    el = time.monotonic() - start
    print(json.dumps({"sent": sent, "attacks": next_attack, "seconds": round(el, 3), "rate": round(sent / el)}))


if __name__ == "__main__":
    main()
