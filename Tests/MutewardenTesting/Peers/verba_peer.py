#!/usr/bin/env python3
"""A fake of the Verba Media Repository's HTTP Business API for the verba provider's tests
(standard library only), from the documented shapes (docs/providers/verba.md).

Serves GET and POST (form) on 127.0.0.1 only and a port the kernel chooses, printed as
"port N" once listening:

  /verba/api?action=RequestToken&apiKey=K   with Authorization: Basic user:password; answers
      <VerbaApi><Response code="0" type="RequestToken"><Token>…</Token></Response></VerbaApi>,
      HTTP 401 for wrong credentials, code 1 for a wrong API key. Tokens live --token-life s.
  /verba/api?action=MuteRecording&apiKey=K&token=T&(callID=…|extension=…&status=…)&mute=M
      answers the next scripted answer if any, else: a missing or expired token (with
      authentication on) as configured by "unauthorized" ("http": HTTP 401, "xml": code 3
      "Invalid token."); a call listed as gone: code 2 "Call cannot be found."; an extension
      listed as several: code 2 "More than one call matches the given criteria."; else code 0.

Every request (but the commands) is printed on standard output as one line,
"REQUEST {json}" with its action, method, parameters and Authorization header, flushed, so that
the test reads what was sent. Commands come on standard input, one per line, each acknowledged
with "ACK <n>" (n counts commands from 1):

  expire                 every issued token is expired now
  script [{"status": N, "body": "…"}, …]   answers to the next MuteRecording requests, in order
  config {"gone": […], "several": […], "unauthorized": "http"|"xml", "token_life": s}
  sync                   nothing: its ACK follows every REQUEST line printed before it

It exits when its standard input closes (the test process went away) or after --lifetime seconds.
"""

import argparse
import base64
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATE = {"tokens": {}, "answers": [], "gone": [], "several": [], "unauthorized": "http", "token_life": 3600.0}
ARGS = None


def xml(code, kind, inner=""):
    return ('<?xml version="1.0" encoding="UTF-8"?><VerbaApi><Response code="%s" type="%s">%s</Response></VerbaApi>'
            % (code, kind, inner))


def error(code, kind, text):
    return xml(code, kind, '<ErrorMessage description="Error">%s</ErrorMessage>' % text)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "verba-test-peer"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path != "/verba/api":
            return self.answer(404, "no such path")
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if self.command == "POST":
            params.update({k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()})
        record = {"action": params.get("action"), "method": self.command, "params": params,
                  "authorization": self.headers.get("Authorization"), "content_type": self.headers.get("Content-Type")}
        with LOCK:
            print("REQUEST " + json.dumps(record), flush=True)
        action = params.get("action")
        if action == "RequestToken":
            return self.request_token(params)
        if action == "MuteRecording":
            return self.mute(params)
        self.answer(200, error(1, action or "", "Unknown action."))

    do_POST = do_GET

    def request_token(self, params):
        expected = "Basic " + base64.b64encode(("%s:%s" % (ARGS.user, ARGS.password)).encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self.answer(401, error(1, "RequestToken", "Authentication failed."))
        if params.get("apiKey") != ARGS.api_key:
            return self.answer(200, error(1, "RequestToken", "Invalid API key."))
        token = secrets.token_hex(8) + "-" + secrets.token_hex(4)
        with LOCK:
            STATE["tokens"][token] = time.time() + STATE["token_life"]
        self.answer(200, xml(0, "RequestToken", "<Token>%s</Token>" % token))

    def mute(self, params):
        with LOCK:
            scripted = STATE["answers"].pop(0) if STATE["answers"] else None
            expiry = STATE["tokens"].get(params.get("token") or "")
            gone, several, unauthorized = list(STATE["gone"]), list(STATE["several"]), STATE["unauthorized"]
        if scripted is not None:
            return self.answer(int(scripted.get("status", 200)), scripted.get("body", ""))
        if params.get("apiKey") != ARGS.api_key:
            return self.answer(200, error(1, "MuteRecording", "Invalid API key."))
        if ARGS.auth == "basic" and (expiry is None or expiry < time.time()):
            if unauthorized == "xml":
                return self.answer(200, error(3, "MuteRecording", "Invalid token."))
            return self.answer(401, error(3, "MuteRecording", "Invalid token."))
        if "mute" not in params or not ("callID" in params or ("extension" in params and "status" in params)):
            return self.answer(200, error(1, "MuteRecording", "Missing parameter."))
        subject = params.get("callID") or params.get("extension")
        if subject in gone:
            return self.answer(200, error(2, "MuteRecording", "Call cannot be found."))
        if subject in several:
            return self.answer(200, error(2, "MuteRecording", "More than one call matches the given criteria."))
        self.answer(200, xml(0, "MuteRecording"))


def commands():
    count = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        count += 1
        name, _, rest = line.partition(" ")
        with LOCK:
            if name == "expire":
                for token in STATE["tokens"]:
                    STATE["tokens"][token] = 0
            elif name == "script":
                STATE["answers"].extend(json.loads(rest))
            elif name == "config":
                STATE.update(json.loads(rest))
            print("ACK %d" % count, flush=True)
    # The test process went away.
    import os
    os._exit(0)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--auth", choices=["basic", "none"], default="basic")
    parser.add_argument("--token-life", type=float, default=3600)
    parser.add_argument("--lifetime", type=float, default=600)
    ARGS = parser.parse_args()
    STATE["token_life"] = ARGS.token_life
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=commands, daemon=True).start()
    threading.Timer(ARGS.lifetime, lambda: __import__("os")._exit(0)).start()
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
