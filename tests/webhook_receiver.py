#!/usr/bin/env python3
"""A case system's webhook endpoint for tests/test_rest.c.

usage: webhook_receiver.py PORT LOG READY

Listens on 127.0.0.1:PORT.  The first POST to each path is answered 500
(a receiver that is briefly down), every later one 204.  Each POST is one
JSON line in LOG: {"path", "status" (as answered), "notice" (the body)}.
READY is created once the port is bound.  It exits by itself after 300 s,
so a failed test leaves nothing running.
"""
import http.server
import json
import os
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    seen = set()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        status = 204 if self.path in Handler.seen else 500
        Handler.seen.add(self.path)
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"path": self.path, "status": status,
                                "type": self.headers.get("Content-Type"),
                                "notice": json.loads(body)}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    threading.Timer(300, os._exit, [0]).start()
    srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    open(sys.argv[3], "w").close()
    srv.serve_forever()


if __name__ == "__main__":
    main()
