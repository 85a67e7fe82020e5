#!/usr/bin/env python3
"""Benign traffic driver for one lab host (runs inside that host's network namespace).

The schedule (which event, when, with which parameters) comes from a seeded
random.Random, so a seed reproduces the same sequence of choices and waits; the packets
themselves (ports, retransmissions, timings in the kernel) of course differ per run.

Events: HTTP GETs to nginx (varied paths, some 404s), JSON API calls, Redis commands,
PostgreSQL queries (psql), DNS lookups against the lab resolver, pings, SSH logins that
succeed and run a command (sshpass), occasional larger downloads.

Bounded: stops after --duration seconds or --max-events events, whichever first; each
subprocess has its own timeout. While --pause-file exists (the attacker host only) no new
event is started, so that the attacker's own benign traffic never overlaps an attack
phase. Writes one JSON line per event to --log and a summary to stderr at the end.
Standard library only.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

WEB = "10.77.0.10"
DB = "10.77.0.20"
SSH = "10.77.0.30"
DNS = "10.77.0.53"

PAGES = [
    ("/", 10), ("/index.html", 8), ("/about.html", 4), ("/products.html", 6),
    ("/contact.html", 2), ("/static/app.js", 5), ("/static/style.css", 5),
    ("/img/logo.png", 4), ("/api/status.json", 3), ("/news/2026-11.html", 3),
    # 404s: stale links, typos, a favicon that was never there
    ("/favicon.ico", 3), ("/old/index.php", 1), ("/prodcts.html", 1), ("/img/banner.jpg", 1),
]
DOWNLOADS = [("/files/report.pdf", 6), ("/files/dataset.bin", 3), ("/files/backup.tar", 1)]
DOWNLOAD_MB = {"/files/report.pdf": 1, "/files/dataset.bin": 4, "/files/backup.tar": 8}
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/119.0 Safari/537.36",
    "curl/7.88.1",
    "python-requests/2.31.0",
]
DNS_NAMES = [
    ("web.lab.test", 10), ("api.lab.test", 8), ("www.lab.test", 6), ("db.lab.test", 5),
    ("cache.lab.test", 4), ("ssh.lab.test", 3), ("files.lab.test", 3),
    ("mail.lab.test", 2), ("printer.lab.test", 1), ("wpad.lab.test", 1),  # NXDOMAIN
]
PROFILES = {
    # event -> weight
    "workstation": {"http": 34, "api": 20, "dns": 16, "redis": 6, "psql": 5, "ping": 7,
                    "ssh": 4, "download": 2},
    # the web server's backend talking to the database and cache
    "backend": {"redis": 40, "psql": 30, "dns": 20, "ping": 5, "api": 5},
    # the attacker host when no attack runs: a bit of ordinary browsing. No pings: softflowd
    # keys ICMP flows by (src, dst, type, code), so all its pings to a host would be one flow
    # spanning the whole run, attack phases included.
    "attacker": {"http": 45, "dns": 40, "api": 15},
}


def wchoice(rnd, items):
    names = [n for n, _ in items]
    weights = [w for _, w in items]
    return rnd.choices(names, weights=weights, k=1)[0]


class Driver:
    def __init__(self, args):
        self.a = args
        self.rnd = random.Random(args.seed)
        self.log = open(args.log, "a") if args.log else None
        self.counts = {}
        self.fail = {}
        self.next_port = args.source_port_base

    def src(self):
        """Source address for a new socket: the kernel's choice, or (attacker host) the next
        port of a private range, so no 5-tuple of its benign traffic is ever reused: softflowd
        would merge the two uses into one record that may span an attack phase."""
        if not self.next_port:
            return None
        p = self.next_port
        self.next_port = self.a.source_port_base + (p + 1 - self.a.source_port_base) % 10000
        return ("", p)

    # ---- events ---------------------------------------------------------------------
    def http(self):
        conn = http.client.HTTPConnection(WEB, 80, timeout=5, source_address=self.src())
        ua = self.rnd.choice(USER_AGENTS)
        n = 1 if self.rnd.random() < 0.6 else self.rnd.randint(2, 5)  # keep-alive page + assets
        codes = []
        for _ in range(n):
            path = wchoice(self.rnd, PAGES)
            conn.request("GET", path, headers={"User-Agent": ua, "Host": "web.lab.test"})
            r = conn.getresponse()
            r.read()
            codes.append(r.status)
            time.sleep(self.rnd.uniform(0.01, 0.3))
        conn.close()
        return {"codes": codes}

    def download(self):
        allowed = [(p, w) for p, w in DOWNLOADS if DOWNLOAD_MB[p] <= self.a.download_max_mb]
        if not allowed:
            return self.http()
        path = wchoice(self.rnd, allowed)
        conn = http.client.HTTPConnection(WEB, 80, timeout=30)
        conn.request("GET", path, headers={"User-Agent": self.rnd.choice(USER_AGENTS)})
        r = conn.getresponse()
        n = 0
        while True:
            chunk = r.read(65536)
            if not chunk:
                break
            n += len(chunk)
        conn.close()
        return {"path": path, "bytes": n, "code": r.status}

    def api(self):
        conn = http.client.HTTPConnection(WEB, 8080, timeout=5, source_address=self.src())
        codes = []
        for _ in range(self.rnd.randint(1, 3)):
            x = self.rnd.random()
            if x < 0.35:
                conn.request("GET", "/api/items?page=%d" % self.rnd.randint(1, 5))
            elif x < 0.75:
                # ids above 60 do not exist -> 404 with a JSON error
                conn.request("GET", "/api/items/%d" % self.rnd.randint(1, 70))
            elif x < 0.9:
                body = json.dumps({"item": self.rnd.randint(1, 60), "qty": self.rnd.randint(1, 4)})
                conn.request("POST", "/api/orders", body=body,
                             headers={"Content-Type": "application/json"})
            else:
                conn.request("GET", "/api/health")
            r = conn.getresponse()
            r.read()
            codes.append(r.status)
            time.sleep(self.rnd.uniform(0.01, 0.2))
        conn.close()
        return {"codes": codes}

    def dns(self):
        name = wchoice(self.rnd, DNS_NAMES)
        qtype = 1 if self.rnd.random() < 0.85 else self.rnd.choice([15, 16, 28])  # A, MX/TXT/AAAA
        qid = self.rnd.randint(0, 65535)
        q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        for part in name.split("."):
            q += bytes([len(part)]) + part.encode()
        q += b"\x00" + struct.pack(">HH", qtype, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        src = self.src()
        if src:
            s.bind(src)
        try:
            s.sendto(q, (DNS, 53))
            data, _ = s.recvfrom(2048)
            rcode = data[3] & 15
        finally:
            s.close()
        return {"name": name, "qtype": qtype, "rcode": rcode}

    def redis(self):
        s = socket.create_connection((DB, 6379), timeout=5)
        f = s.makefile("rb")

        def cmd(*parts):
            out = b"*%d\r\n" % len(parts)
            for p in parts:
                p = str(p).encode()
                out += b"$%d\r\n%s\r\n" % (len(p), p)
            s.sendall(out)
            return read_reply()

        def read_reply():
            line = f.readline()
            t = line[:1]
            if t == b"$":
                n = int(line[1:])
                if n >= 0:
                    f.read(n + 2)
            elif t == b"*":
                for _ in range(max(0, int(line[1:]))):
                    read_reply()
            return t

        ops = 0
        for _ in range(self.rnd.randint(1, 6)):
            k = self.rnd.randint(1, 50)
            x = self.rnd.random()
            if x < 0.4:
                cmd("GET", "session:%d" % k)
            elif x < 0.6:
                cmd("SET", "session:%d" % k, "u%d-%d" % (k, self.rnd.randint(0, 10 ** 6)), "EX", 300)
            elif x < 0.75:
                cmd("INCR", "hits:%d" % self.rnd.randint(1, 10))
            elif x < 0.85:
                cmd("LPUSH", "queue:jobs", "job-%d" % self.rnd.randint(0, 10 ** 6))
                cmd("LTRIM", "queue:jobs", 0, 99)
            elif x < 0.95:
                cmd("LRANGE", "queue:jobs", 0, self.rnd.randint(0, 20))
            else:
                cmd("HSET", "user:%d" % k, "name", "user%d" % k, "seen", int(time.time()))
                cmd("HGETALL", "user:%d" % k)
            ops += 1
        cmd("QUIT")
        f.close()  # (the makefile() object keeps the socket open otherwise)
        s.close()
        return {"ops": ops}

    def psql(self):
        i = self.rnd.randint(1, 200)
        q = self.rnd.choice([
            "SELECT count(*) FROM items;",
            "SELECT id, name, price FROM items WHERE id = %d;" % i,
            "SELECT name, price FROM items ORDER BY price DESC LIMIT 10;",
            "INSERT INTO orders (item_id, qty) VALUES (%d, %d);" % (i, self.rnd.randint(1, 5)),
            "SELECT item_id, sum(qty) FROM orders GROUP BY item_id ORDER BY 2 DESC LIMIT 5;",
        ])
        env = dict(os.environ, PGPASSWORD="labpass", PGCONNECT_TIMEOUT="5")
        r = subprocess.run(["timeout", "15", "psql", "-X", "-q", "-h", DB, "-U", "lab", "-d", "lab",
                            "-c", q], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("psql rc %d: %s" % (r.returncode, r.stderr[-200:]))
        return {"q": q.split()[0]}

    def ping(self):
        target = self.rnd.choice([WEB, DB, SSH, DNS] + self.a.peers)
        n = self.rnd.randint(1, 4)
        size = 56 if self.rnd.random() < 0.85 else self.rnd.choice([100, 512, 1200])
        r = subprocess.run(["timeout", "10", "ping", "-n", "-q", "-c", str(n), "-i", "0.3", "-W", "1",
                            "-s", str(size), target],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {"target": target, "n": n, "rc": r.returncode}

    def ssh(self):
        cmd = self.rnd.choice(["uptime", "ls -la /tmp | head -5", "df -h | head -3",
                               "date; id", "cat /proc/loadavg"])
        r = subprocess.run(
            ["timeout", "25", "sshpass", "-p", self.a.ssh_password, "ssh", "-F", "/dev/null",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no",
             "%s@%s" % (self.a.ssh_user, SSH), cmd],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("ssh rc %d: %s" % (r.returncode, r.stderr[-200:]))
        return {"cmd": cmd.split()[0]}

    # ---- loop -----------------------------------------------------------------------
    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self.loop()
        finally:
            print("benign[%s]: %d events ok %s failed %s" % (self.a.name, sum(self.counts.values()),
                  json.dumps(self.counts, sort_keys=True), json.dumps(self.fail, sort_keys=True)),
                  file=sys.stderr)

    def loop(self):
        a = self.a
        profile = list(PROFILES[a.profile].items())
        end = time.time() + a.duration
        n = 0
        # desynchronise the hosts a little
        time.sleep(self.rnd.uniform(0, min(3.0, a.duration / 10)))
        while time.time() < end and n < a.max_events:
            if a.pause_file:
                while os.path.exists(a.pause_file) and time.time() < end:
                    time.sleep(0.2)
                if time.time() >= end:
                    break
            ev = wchoice(self.rnd, profile)
            t0 = time.time()
            rec = {"t": round(t0, 3), "host": a.name, "event": ev}
            try:
                rec.update(getattr(self, ev)())
                self.counts[ev] = self.counts.get(ev, 0) + 1
            except Exception as e:  # a failed benign event is logged and counted, not fatal
                rec["error"] = repr(e)[:200]
                self.fail[ev] = self.fail.get(ev, 0) + 1
            rec["dur"] = round(time.time() - t0, 3)
            if self.log:
                self.log.write(json.dumps(rec) + "\n")
                self.log.flush()
            n += 1
            # bursty user: mostly exponential think times, now and then a longer pause
            wait = self.rnd.expovariate(a.rate)
            if self.rnd.random() < 0.05:
                wait += self.rnd.uniform(2, 8)
            time.sleep(min(wait, max(0.0, end - time.time())))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("--rate", type=float, default=0.7, help="mean events per second")
    p.add_argument("--max-events", type=int, default=10 ** 7)
    p.add_argument("--profile", choices=sorted(PROFILES), default="workstation")
    p.add_argument("--peers", default="", help="comma-separated other hosts to ping")
    p.add_argument("--pause-file", default="")
    p.add_argument("--source-port-base", type=int, default=0,
                   help="use ports BASE..BASE+9999 in turn as source ports (0: the kernel picks)")
    p.add_argument("--download-max-mb", type=int, default=8, help="largest download (1, 4 or 8 MB)")
    p.add_argument("--ssh-user", default="nwlab")
    p.add_argument("--ssh-password", default="")
    p.add_argument("--log", default="")
    a = p.parse_args()
    a.peers = [x for x in a.peers.split(",") if x]
    Driver(a).run()


if __name__ == "__main__":
    main()
