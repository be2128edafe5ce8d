#!/usr/bin/env python3
"""Serves an issuer's OpenID configuration and signing keys for the callback-authentication
tests (standard library only).

  GET /<name>      the file <name> of --directory (the test writes openid-configuration and
                   jwks there, and rewrites them, atomically, to rotate keys), as JSON
  GET /test/stats  {"<path>": requests so far, …}

Listens on 127.0.0.1 and a port the kernel chooses, printed as "port N"; exits when its
standard input closes or after --lifetime seconds.
"""

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATS = {}
DIRECTORY = "."


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/test/stats":
            with LOCK:
                self.answer(200, json.dumps(STATS).encode())
            return
        with LOCK:
            STATS[self.path] = STATS.get(self.path, 0) + 1
        name = self.path.lstrip("/")
        if "/" in name or name.startswith(".") or not name:
            self.answer(404, b"{}")
            return
        try:
            with open(os.path.join(DIRECTORY, name), "rb") as handle:
                body = handle.read()
        except OSError:
            self.answer(404, b"{}")
            return
        self.answer(200, body)


def main():
    global DIRECTORY
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    DIRECTORY = args.directory
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("port %d" % server.server_address[1], flush=True)
    done = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(args.lifetime)
    server.shutdown()


if __name__ == "__main__":
    main()
