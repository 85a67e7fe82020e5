#!/usr/bin/env python3
"""Per-flow labels for a lab run: decode the NetFlow v9 export (netflow-v9.pcap) and label
every record with the phases of labels.csv.

    flowlabels.py RUN_DIR            writes RUN_DIR/flow-labels.csv, prints a JSON summary
    flowlabels.py --dump PCAP        prints the decoded v9 records (for checking)

Decoder: a self-contained NetFlow v9 reader (RFC 3954) for classic pcap files of UDP
datagrams (linktypes EN10MB, NULL, RAW, LINUX_SLL): template flowsets (id 0), options
templates (id 1, skipped), data flowsets (id >= 256) decoded with the last template seen
for (exporter, source id, template id). Standard library only.

Times: first_ms/last_ms = unix_secs * 1000 - (sysUptime - FIRST/LAST_SWITCHED), i.e.
exactly what a v9 collector computes. softflowd's v9 header carries whole seconds only, so
these are up to 1 s earlier than the packet times in capture.pcap (IPFIX, with -A milli,
is ms-exact). For ICMP records sport is 0 and dport is type * 256 + code (the NetFlow
convention).

Rule (issue 15): inside a malicious phase a flow is malicious iff the phase's attacker IP
is its source or destination. A record belongs to a malicious phase if the attacker is an
endpoint and [first_ms, last_ms] overlaps [start_ms - 1000, end_ms + 1000] (the slack
covers the v9 whole-second truncation; run.sh keeps the attacker host silent from 3 s
before to 3 s after every attack phase, so the slack never catches benign attacker
flows). Every other record is benign and gets the phase that contains its first_ms.
"""
import csv
import ipaddress
import json
import struct
import sys

SLACK_MS = 1000


def pcap_udp_payloads(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            e = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            e = ">"
        else:
            raise SystemExit("%s: not a classic pcap file" % path)
        linktype = struct.unpack(e + "I", hdr[20:24])[0]
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                return
            _s, _u, incl, _orig = struct.unpack(e + "IIII", ph)
            data = f.read(incl)
            if linktype == 1:
                if data[12:14] != b"\x08\x00":
                    continue
                ip = data[14:]
            elif linktype == 0:
                ip = data[4:]
            elif linktype == 101:
                ip = data
            elif linktype == 113:
                ip = data[16:]
            else:
                raise SystemExit("%s: unsupported linktype %d" % (path, linktype))
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            src = ip[12:16]
            yield src, ip[ihl + 8:]


def decode_v9(path):
    templates = {}
    records = []
    stats = {"datagrams": 0, "records": 0, "no_template": 0, "bad": 0}
    for exporter, d in pcap_udp_payloads(path):
        stats["datagrams"] += 1
        if len(d) < 20 or struct.unpack(">H", d[:2])[0] != 9:
            stats["bad"] += 1
            continue
        _v, _count, uptime, secs, _seq, srcid = struct.unpack(">HHIIII", d[:20])
        off = 20
        while off + 4 <= len(d):
            fsid, flen = struct.unpack(">HH", d[off:off + 4])
            if flen < 4 or off + flen > len(d):
                stats["bad"] += 1
                break
            body = d[off + 4:off + flen]
            if fsid == 0:
                p = 0
                while p + 4 <= len(body):
                    tid, nf = struct.unpack(">HH", body[p:p + 4])
                    p += 4
                    fields = []
                    for _ in range(nf):
                        fields.append(struct.unpack(">HH", body[p:p + 4]))
                        p += 4
                    templates[(exporter, srcid, tid)] = fields
            elif fsid >= 256:
                fields = templates.get((exporter, srcid, fsid))
                if fields is None:
                    stats["no_template"] += 1
                else:
                    rlen = sum(n for _, n in fields)
                    p = 0
                    while rlen and p + rlen <= len(body):
                        rec = {}
                        for ftype, n in fields:
                            rec[ftype] = body[p:p + n]
                            p += n
                        records.append(to_flow(rec, uptime, secs))
                        stats["records"] += 1
            off += flen
    return records, stats


def uint(b):
    return int.from_bytes(b, "big") if b else 0


def to_flow(rec, uptime, secs):
    if 8 in rec:
        src, dst = str(ipaddress.IPv4Address(rec[8])), str(ipaddress.IPv4Address(rec[12]))
    else:
        src, dst = str(ipaddress.IPv6Address(rec[27])), str(ipaddress.IPv6Address(rec[28]))
    proto = uint(rec.get(4))
    sport, dport = uint(rec.get(7)), uint(rec.get(11))
    if proto in (1, 58) and 32 in rec:
        sport, dport = 0, uint(rec[32])
    base = secs * 1000 - uptime
    return {"src": src, "dst": dst, "sport": sport, "dport": dport, "proto": proto,
            "first_ms": base + uint(rec.get(22)), "last_ms": base + uint(rec.get(21)),
            "packets": uint(rec.get(2)), "bytes": uint(rec.get(1))}


def label(run_dir):
    records, stats = decode_v9(run_dir + "/netflow-v9.pcap")
    with open(run_dir + "/labels.csv") as f:
        phases = list(csv.DictReader(f))
    for ph in phases:
        ph["start_ms"], ph["end_ms"] = int(ph["start_ms"]), int(ph["end_ms"])
    mal = [ph for ph in phases if ph["label"] == "malicious" and ph["attacker_ip"]]
    records.sort(key=lambda r: (r["first_ms"], r["src"], r["dst"], r["sport"], r["dport"]))
    summary = {ph["phase"]: {"kind": ph["kind"], "benign": 0, "malicious": 0} for ph in phases}
    summary["(outside)"] = {"kind": "benign", "benign": 0, "malicious": 0}
    out = []
    for r in records:
        hit = None
        for ph in mal:
            if ph["attacker_ip"] in (r["src"], r["dst"]) and \
                    r["first_ms"] <= ph["end_ms"] + SLACK_MS and r["last_ms"] >= ph["start_ms"] - SLACK_MS:
                hit = ph
                break
        if hit:
            r.update(label="malicious", phase=hit["phase"], kind=hit["kind"])
        else:
            owner = next((ph for ph in phases if ph["start_ms"] <= r["first_ms"] < ph["end_ms"]), None)
            if owner is None:  # before the first / after the last phase boundary (v9 shift)
                owner = min(phases, key=lambda ph: min(abs(r["first_ms"] - ph["start_ms"]),
                                                       abs(r["first_ms"] - ph["end_ms"])))
            r.update(label="benign", phase=owner["phase"], kind="benign")
        summary[r["phase"]][r["label"]] += 1
        out.append(r)
    cols = ["src", "dst", "sport", "dport", "proto", "first_ms", "last_ms", "packets", "bytes",
            "label", "phase", "kind"]
    with open(run_dir + "/flow-labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in out:
            w.writerow({k: r[k] for k in cols})
    if not summary["(outside)"]["benign"]:
        del summary["(outside)"]
    return {"decoder": stats, "flows": len(out),
            "malicious": sum(1 for r in out if r["label"] == "malicious"),
            "per_phase": summary}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        recs, st = decode_v9(sys.argv[2])
        for r in recs:
            print(json.dumps(r))
        print(json.dumps(st), file=sys.stderr)
    elif len(sys.argv) == 2:
        print(json.dumps(label(sys.argv[1]), indent=1))
    else:
        raise SystemExit(__doc__)
