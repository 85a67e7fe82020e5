#!/usr/bin/env python3
"""Replay the UDP payloads of a pcap file to a UDP receiver (e.g. nfcapd).

Dependency-free (python3 stdlib only). Reads classic libpcap files (micro- or
nanosecond, either byte order); linktypes NULL (0), EN10MB (1), RAW (101/12/14),
LINUX_SLL (113) and LINUX_SLL2 (276). IPv4 only; IPv4 fragments are skipped.

    replay_udp_pcap.py FILE.pcap PORT [--host 127.0.0.1] [--dport-filter N]
                       [--every 20] [--sleep 0.005] [--count]

Each UDP payload is sent as one datagram, in file order, to HOST:PORT; after every
--every datagrams it sleeps --sleep seconds so the receiver does not drop.
--count only counts the UDP datagrams (prints the number) and sends nothing.
"""
import argparse
import socket
import struct
import sys
import time

LINKTYPE_NULL = 0
LINKTYPE_EN10MB = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_OLD = (12, 14)
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


def _l3(linktype, pkt):
    """Return (ethertype, l3 bytes) or None."""
    if linktype == LINKTYPE_EN10MB:
        if len(pkt) < 14:
            return None
        off, etype = 14, struct.unpack(">H", pkt[12:14])[0]
        while etype in (0x8100, 0x88A8) and len(pkt) >= off + 4:  # VLAN tags
            etype = struct.unpack(">H", pkt[off + 2:off + 4])[0]
            off += 4
        return etype, pkt[off:]
    if linktype == LINKTYPE_LINUX_SLL:
        if len(pkt) < 16:
            return None
        return struct.unpack(">H", pkt[14:16])[0], pkt[16:]
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(pkt) < 20:
            return None
        return struct.unpack(">H", pkt[0:2])[0], pkt[20:]
    if linktype == LINKTYPE_RAW or linktype in LINKTYPE_RAW_OLD:
        if not pkt:
            return None
        return (0x0800 if pkt[0] >> 4 == 4 else 0x86DD), pkt
    if linktype == LINKTYPE_NULL:
        if len(pkt) < 4:
            return None
        fam = struct.unpack("<I", pkt[:4])[0]
        if fam > 0xFFFF:
            fam = struct.unpack(">I", pkt[:4])[0]
        return (0x0800 if fam == 2 else 0), pkt[4:]
    raise SystemExit(f"unsupported pcap linktype {linktype}")


def udp_payloads(path, dport_filter=None):
    """Yield (src, sport, dst, dport, payload) for every complete IPv4 UDP datagram."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            raise SystemExit(f"{path}: not a pcap file (too short)")
        magic_le = struct.unpack("<I", hdr[:4])[0]
        if magic_le in (0xA1B2C3D4, 0xA1B23C4D):
            e = "<"
        elif magic_le in (0xD4C3B2A1, 0x4D3CB2A1):
            e = ">"
        elif magic_le == 0x0A0D0D0A:
            raise SystemExit(f"{path}: pcapng is not supported, convert with: tcpdump -r IN -w OUT")
        else:
            raise SystemExit(f"{path}: not a pcap file (magic {magic_le:#x})")
        linktype = struct.unpack(e + "I", hdr[20:24])[0] & 0x0FFFFFFF
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                break
            _sec, _frac, incl, orig = struct.unpack(e + "IIII", ph)
            pkt = f.read(incl)
            if len(pkt) < incl:
                print(f"{path}: truncated last record", file=sys.stderr)
                break
            r = _l3(linktype, pkt)
            if r is None or r[0] != 0x0800:
                continue
            ip = r[1]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            frag = struct.unpack(">H", ip[6:8])[0]
            if frag & 0x3FFF:  # MF set or offset != 0
                continue
            if len(ip) < total:
                raise SystemExit(f"{path}: IPv4 packet truncated by snaplen ({len(ip)} < {total})")
            udp = ip[ihl:total]
            if len(udp) < 8:
                continue
            sport, dport, ulen = struct.unpack(">HHH", udp[:6])
            if dport_filter is not None and dport != dport_filter:
                continue
            src = socket.inet_ntoa(ip[12:16])
            dst = socket.inet_ntoa(ip[16:20])
            yield src, sport, dst, dport, udp[8:ulen]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pcap")
    ap.add_argument("port", type=int, nargs="?", default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--dport-filter", type=int, default=None,
                    help="only replay datagrams whose destination port is N")
    ap.add_argument("--every", type=int, default=20, help="sleep after every N datagrams (default 20)")
    ap.add_argument("--sleep", type=float, default=0.005, help="seconds to sleep (default 0.005)")
    ap.add_argument("--count", action="store_true", help="only count the UDP datagrams, send nothing")
    a = ap.parse_args()

    if a.count:
        print(sum(1 for _ in udp_payloads(a.pcap, a.dport_filter)))
        return
    if not a.port:
        ap.error("port is required unless --count is given")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = nbytes = 0
    for _src, _sport, _dst, _dport, payload in udp_payloads(a.pcap, a.dport_filter):
        s.sendto(payload, (a.host, a.port))
        n += 1
        nbytes += len(payload)
        if a.every > 0 and n % a.every == 0:
            time.sleep(a.sleep)
    print(f"replayed {n} datagrams ({nbytes} bytes) from {a.pcap} to {a.host}:{a.port}", file=sys.stderr)


if __name__ == "__main__":
    main()
