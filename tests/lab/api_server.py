#!/usr/bin/env python3
"""Tiny JSON API for the lab's web host: GET /api/items[?page=N], GET /api/items/ID
(404 JSON for unknown ids), POST /api/orders, GET /api/health. Standard library only.
Usage: api_server.py BIND_IP PORT"""
import json
import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

rnd = random.Random(42)
ITEMS = [{"id": i, "name": "item-%03d" % i, "price": round(rnd.uniform(1, 500), 2),
          "stock": rnd.randint(0, 100)} for i in range(1, 61)]
ORDERS = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-api/1.0"

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/api/health":
            return self.send_json(200, {"status": "ok", "time": int(time.time())})
        if path == "/api/items":
            page = 1
            if query.startswith("page="):
                try:
                    page = max(1, int(query[5:]))
                except ValueError:
                    return self.send_json(400, {"error": "bad page"})
            return self.send_json(200, {"page": page, "items": ITEMS[(page - 1) * 12:page * 12]})
        if path.startswith("/api/items/"):
            try:
                i = int(path.rsplit("/", 1)[1])
            except ValueError:
                return self.send_json(400, {"error": "bad id"})
            if 1 <= i <= len(ITEMS):
                return self.send_json(200, ITEMS[i - 1])
            return self.send_json(404, {"error": "no such item", "id": i})
        self.send_json(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(min(n, 65536))
        if self.path != "/api/orders":
            return self.send_json(404, {"error": "not found"})
        try:
            order = json.loads(data)
        except ValueError:
            return self.send_json(400, {"error": "bad json"})
        ORDERS.append(order)
        self.send_json(201, {"order": len(ORDERS), "accepted": order})

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
