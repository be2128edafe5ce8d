#!/usr/bin/env python3
"""A fake of Voicenter's REST APIs for the voicenter provider's tests (standard library only).

Serves, on 127.0.0.1 only and a port the kernel chooses (printed as "port N" once listening):

  POST /monitorAPI/Login/Token|User|Account   the Real-Time API login, JSON body
        {"token"} | {"email","pin"} | {"username","password"}; answers
        {"StatusCode":0,"Status":"OK","Data":{"Socket":{Token, TokenExpiry, RefreshToken,
        RefreshTokenExpiry, Url, URLList, Client, Version, PersonId}}}, or a refusal
        {"StatusCode":401,"Status":"Invalid credentials","Data":null}
  GET  /monitorAPI/RefreshIdentityToken       Authorization: Bearer <RefreshToken>; a new token in
        the same shape (at the top, or under Data.Socket: --refresh-shape), HTTP 401 for an
        unknown or expired refresh token
  POST /api/MuteUnmuteCalls (JSON body) and GET /api/MuteUnmuteCalls?… (query)
        {"ivrid"|"extension", "state"}; answers the next scripted answer, else
        {"ErrorCode":200,"Message":"Success","ActionID":…} ("UniqueIvrID not found" for an ivrid
        listed as gone), with ErrorCode a number or a string as configured

and a control API for the tests, under /test/ (no auth):

  POST /test/config      {"token_life": s, "refresh_life": s, "expiry_format": "iso"|"epoch-s"|
                          "epoch-ms", "url": …, "url_list": […], "error_code_type": "number"|"string",
                          "refresh_shape": "top"|"nested", "gone": [ivrid, …], "refuse_login": bool}
  POST /test/answers     a list of {"status": N, "body": text, "delay_ms": N} answered, in order,
                          to the next MuteUnmuteCalls requests (delay_ms: a server that hangs)
  POST /test/expire      expires every issued token (and refresh token with {"refresh": true})
  GET  /test/requests    every request so far: {"kind", "method", "path", "query", "body",
                          "authorization"} (the Authorization header's value, for the tests)
  GET  /test/tokens      the tokens issued, in order

It exits when its standard input closes (the test process went away) or after --lifetime seconds.
"""

import argparse
import datetime
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATE = {
    "config": {
        "token_life": 3600, "refresh_life": 86400, "expiry_format": "iso", "url": None, "url_list": [],
        "error_code_type": "string", "refresh_shape": "top", "gone": [], "refuse_login": False,
    },
    "answers": [],
    "requests": [],
    "tokens": {},          # token -> expiry (epoch seconds)
    "refresh_tokens": {},  # refresh token -> expiry
    "issued": [],
}
CREDENTIALS = {}
MAX_DELAY_MS = 60_000


def expiry_value(epoch_seconds, form):
    if form == "epoch-s":
        return int(epoch_seconds)
    if form == "epoch-ms":
        return int(epoch_seconds * 1000)
    moment = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def issue():
    """A new token and refresh token, under the lock."""
    config = STATE["config"]
    now = time.time()
    token = "tok-" + secrets.token_hex(12)
    refresh = "ref-" + secrets.token_hex(12)
    STATE["tokens"][token] = now + config["token_life"]
    STATE["refresh_tokens"][refresh] = now + config["refresh_life"]
    STATE["issued"].append(token)
    return {
        "Token": token,
        "TokenExpiry": expiry_value(now + config["token_life"], config["expiry_format"]),
        "RefreshToken": refresh,
        "RefreshTokenExpiry": expiry_value(now + config["refresh_life"], config["expiry_format"]),
        "Url": config["url"],
        "URLList": config["url_list"],
        "Client": "https://loginapi.voicenter.co.il/monitorAPI/GetSocketClient?v=1.3.7",
        "Version": "1",
        "PersonId": 42,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "voicenter-test-peer"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.dispatch()

    do_POST = do_GET

    def answer(self, status, payload):
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def dispatch(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        path = url.path
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if path.startswith("/test/"):
            return self.control(path, body)
        record = {
            "method": self.command, "path": path, "query": {k: v[0] for k, v in parse_qs(url.query).items()},
            "body": body, "authorization": self.headers.get("Authorization"),
            "content_type": self.headers.get("Content-Type"),
        }
        if path.startswith("/monitorAPI/Login/") and self.command == "POST":
            record["kind"] = "login"
            with LOCK:
                STATE["requests"].append(record)
            return self.login(path.rsplit("/", 1)[-1], body or {})
        if path == "/monitorAPI/RefreshIdentityToken" and self.command == "GET":
            record["kind"] = "refresh"
            with LOCK:
                STATE["requests"].append(record)
            return self.refresh()
        if path == "/api/MuteUnmuteCalls":
            record["kind"] = "mute"
            parameters = body if self.command == "POST" else record["query"]
            with LOCK:
                STATE["requests"].append(record)
            return self.mute(parameters or {})
        self.answer(404, {"error": "no such path"})

    def login(self, kind, body):
        expected = CREDENTIALS.get(kind)
        with LOCK:
            refuse = STATE["config"]["refuse_login"]
            if expected is not None and not refuse and all(body.get(k) == v for k, v in expected.items()):
                socket = issue()
                return self.answer(200, {"StatusCode": 0, "Status": "OK", "Data": {"Socket": socket}})
        self.answer(200, {"StatusCode": 401, "Status": "Invalid credentials", "Data": None})

    def refresh(self):
        header = self.headers.get("Authorization") or ""
        presented = header[len("Bearer "):] if header.startswith("Bearer ") else None
        with LOCK:
            expiry = STATE["refresh_tokens"].get(presented)
            if expiry is None or expiry <= time.time():
                return self.answer(401, {"StatusCode": 401, "Status": "Unauthorized"})
            del STATE["refresh_tokens"][presented]
            socket = issue()
            shape = STATE["config"]["refresh_shape"]
        self.answer(200, socket if shape == "top" else {"StatusCode": 0, "Data": {"Socket": socket}})

    def mute(self, parameters):
        with LOCK:
            scripted = STATE["answers"].pop(0) if STATE["answers"] else None
            config = dict(STATE["config"])
        if scripted is not None:
            delay = min(int(scripted.get("delay_ms", 0)), MAX_DELAY_MS)
            if delay:
                time.sleep(delay / 1000)
            return self.answer(int(scripted.get("status", 200)), scripted.get("body", ""))
        code = 200
        message = "Success"
        if not ({"ivrid", "extension"} & set(parameters)) or parameters.get("state") not in ("0", "1"):
            code, message = 400, 'Parameters are not valid, should be "ivrid" and "mute"'
        elif parameters.get("ivrid") in config["gone"]:
            code, message = 404, "UniqueIvrID not found"
        shown = str(code) if config["error_code_type"] == "string" else code
        self.answer(200, {"ErrorCode": shown, "Message": message, "ActionID": secrets.token_hex(16)})

    def control(self, path, body):
        with LOCK:
            if path == "/test/config" and self.command == "POST":
                STATE["config"].update(body or {})
                return self.answer(200, STATE["config"])
            if path == "/test/answers" and self.command == "POST":
                STATE["answers"].extend(body or [])
                return self.answer(200, {"queued": len(STATE["answers"])})
            if path == "/test/expire" and self.command == "POST":
                for token in STATE["tokens"]:
                    STATE["tokens"][token] = 0
                if (body or {}).get("refresh"):
                    for token in STATE["refresh_tokens"]:
                        STATE["refresh_tokens"][token] = 0
                return self.answer(200, {"expired": len(STATE["tokens"])})
            if path == "/test/requests":
                return self.answer(200, STATE["requests"])
            if path == "/test/tokens":
                return self.answer(200, STATE["issued"])
        self.answer(404, {"error": "no such control path"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifetime", type=float, default=600)
    parser.add_argument("--token", default="monitor-token")
    parser.add_argument("--email", default="agent@example.com")
    parser.add_argument("--pin", default="1234")
    parser.add_argument("--username", default="ops")
    parser.add_argument("--password", default="account-password")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    options = parser.parse_args()
    CREDENTIALS.update({
        "Token": {"token": options.token},
        "User": {"email": options.email, "pin": options.pin},
        "Account": {"username": options.username, "password": options.password},
    })
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("port %d" % server.server_address[1], flush=True)
    stop = threading.Event()
    if options.exit_on_stdin_eof:
        def watch():
            sys.stdin.read()
            stop.set()
        threading.Thread(target=watch, daemon=True).start()
    stop.wait(timeout=options.lifetime)
    server.shutdown()

if __name__ == "__main__":
    main()
