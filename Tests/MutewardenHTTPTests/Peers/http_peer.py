#!/usr/bin/env python3
"""A misbehaving HTTP/1.1 peer for the MutewardenHTTP tests (standard library only).

Listens on 127.0.0.1 only, on ephemeral ports, and writes them as JSON to --port-file:
  {"http": P, "https": P or null, "mtls": P or null}
It exits when its standard input closes (the test process went away) or after --lifetime seconds.

Endpoints (any method unless noted; the request body is always read first):
  /echo                method, path, headers and body back as JSON
  /slow?ms=N           answers after N milliseconds
  /status/N            answers with status N
  /reset               closes the connection with SO_LINGER 0: the client sees a TCP reset
  /big?bytes=N&chunked=1   an N-byte body, with Content-Length or chunked
  /login               sets a JSESSIONID cookie; /protected answers 403 without a valid one
  /redirect?to=P&code=C    a redirect to P
  /whoami              the client certificate's CN (mutual-TLS listener), else "anonymous"
  /stats               connections accepted per listener, requests per path
A request in absolute form (a proxy request, "GET http://host/path") is answered as /echo with
the header X-Proxied: yes.
"""

import argparse
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATS_LOCK = threading.Lock()
STATS = {"connections": {}, "requests": {}}
SESSIONS = set()


class Abort(Exception):
    """Ends a handler without answering (after a deliberate reset)."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mutewarden-test-peer"
    # Headers and body go out in two writes: with Nagle's algorithm on, the second waits for the
    # client's delayed ACK, and every keep-alive exchange takes 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def answer(self, status, body=b"", content_type="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self):
        body = self.read_body()
        proxied = self.path.startswith("http://") or self.path.startswith("https://")
        parts = urlsplit(self.path)
        path = "/echo" if proxied else parts.path
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        with STATS_LOCK:
            key = f"{self.command} {path}"
            STATS["requests"][key] = STATS["requests"].get(key, 0) + 1
        try:
            self.route(path, query, body, proxied)
        except (ConnectionError, BrokenPipeError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    def route(self, path, query, body, proxied):
        if path == "/echo":
            payload = {
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            extra = [("X-Proxied", "yes")] if proxied else []
            self.answer(200, json.dumps(payload).encode(), "application/json", extra)
        elif path == "/slow":
            time.sleep(int(query.get("ms", "1000")) / 1000)
            self.answer(200, b"slow")
        elif path.startswith("/status/"):
            self.answer(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/reset":
            # SO_LINGER with a zero timeout turns close() into a RST. The buffered reader holds a
            # reference to the socket, so it must go first for close() to really close.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
            raise Abort()
        elif path == "/big":
            self.send_big(int(query.get("bytes", "0")), query.get("chunked") == "1")
        elif path == "/login":
            token = uuid.uuid4().hex
            with STATS_LOCK:
                SESSIONS.add(token)
            self.answer(200, b"welcome", headers=[("Set-Cookie", f"JSESSIONID={token}; Path=/; HttpOnly")])
        elif path == "/protected":
            cookies = self.headers.get("Cookie", "")
            tokens = {part.strip().split("=", 1)[1] for part in cookies.split(";") if "=" in part}
            with STATS_LOCK:
                known = bool(tokens & SESSIONS)
            self.answer(200 if known else 403, b"secret area" if known else b"log in first")
        elif path == "/redirect":
            code = int(query.get("code", "302"))
            self.answer(code, b"moved", headers=[("Location", query.get("to", "/echo"))])
        elif path == "/whoami":
            name = "anonymous"
            if isinstance(self.connection, ssl.SSLSocket):
                cert = self.connection.getpeercert()
                if cert:
                    name = dict(item[0] for item in cert["subject"]).get("commonName", "?")
            self.answer(200, name.encode())
        elif path == "/stats":
            with STATS_LOCK:
                data = json.dumps(STATS).encode()
            self.answer(200, data, "application/json")
        else:
            self.answer(404, b"no such endpoint")

    def send_big(self, size, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        block = b"x" * 65536
        remaining = size
        while remaining > 0:
            piece = block[: min(remaining, len(block))]
            if chunked:
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                self.wfile.write(piece)
            remaining -= len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # 1,000 concurrent requests open a burst of connections: the default backlog of 5 would drop
    # SYNs and add retransmission delays that have nothing to do with the client.
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, name, context=None):
        self.name = name
        self.context = context
        with STATS_LOCK:
            STATS["connections"][name] = 0
        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self):
        connection, address = super().get_request()
        with STATS_LOCK:
            STATS["connections"][self.name] += 1
        return connection, address

    def finish_request(self, request, client_address):
        if self.context is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        # The handshake runs here, in the connection's own thread, so a client that stalls in
        # it cannot hold up accept() for everyone else.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if not isinstance(error, (Abort, ConnectionError, ssl.SSLError, OSError, ValueError)):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca")
    parser.add_argument("--lifetime", type=float, default=300)
    args = parser.parse_args()

    servers = {"http": Server("http")}
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        context.set_alpn_protocols(["http/1.1"])
        servers["https"] = Server("https", context)
        if args.client_ca:
            mutual = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            mutual.load_cert_chain(args.tls_cert, args.tls_key)
            mutual.load_verify_locations(args.client_ca)
            mutual.verify_mode = ssl.CERT_REQUIRED
            mutual.set_alpn_protocols(["http/1.1"])
            servers["mtls"] = Server("mtls", mutual)
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()

    ports = {name: None for name in ("http", "https", "mtls")}
    ports.update({name: server.server_address[1] for name, server in servers.items()})
    temporary = args.port_file + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(ports, handle)
    os.rename(temporary, args.port_file)

    # Stop when the test process closes our standard input (or dies), or at the lifetime limit.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    time.sleep(args.lifetime)
    os._exit(0)


if __name__ == "__main__":
    main()
