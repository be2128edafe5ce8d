#!/usr/bin/env python3
"""A fake of Microsoft Entra ID's v2.0 token endpoint (client credentials grant), standard
library only, built from the documented shapes:

  POST /{tenant}/oauth2/v2.0/token   form: client_id, client_secret, scope, grant_type
    200 {"token_type":"Bearer","expires_in":N,"ext_expires_in":N,"access_token":"…"}
    400 {"error":"invalid_request","error_description":"AADSTS90002: Tenant '…' not found. …\r\nTrace ID: …",
         "error_codes":[90002],…}                                  an unknown tenant
    400 {"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier '…'
         was not found in the directory '…'. …","error_codes":[700016]}   an unknown client id
    401 {"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. …",
         "error_codes":[7000215]}                                  a wrong secret
    400 {"error":"unsupported_grant_type",…}                       another grant type

Control API for the tests (no auth): POST /test/config {"token_life": s, "delay_ms": n},
GET /test/stats {"token_requests": n, "tokens": [issued tokens]}.

Listens on 127.0.0.1 and a port the kernel chooses, printed as "port N"; exits when its
standard input closes or after --lifetime seconds.
"""

import argparse
import json
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

LOCK = threading.Lock()
STATE = {"token_life": 3600, "delay_ms": 0, "token_requests": 0, "tokens": []}
ARGS = None


def aad_error(code, error, text):
    trace = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: 2024-06-01 10:00:00Z"
        % (code, text, trace, uuid.uuid4()),
        "error_codes": [code],
        "timestamp": "2024-06-01 10:00:00Z",
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path == "/test/stats":
            with LOCK:
                self.answer(200, {"token_requests": STATE["token_requests"], "tokens": list(STATE["tokens"])})
        else:
            self.answer(404, {"error": "not_found"})

    def do_POST(self):
        body = self.read_body()
        if self.path == "/test/config":
            with LOCK:
                STATE.update(json.loads(body or b"{}"))
            self.answer(200, {})
            return
        parts = self.path.split("/")
        if len(parts) != 5 or parts[2:] != ["oauth2", "v2.0", "token"]:
            self.answer(404, {"error": "not_found"})
            return
        tenant = parts[1]
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        with LOCK:
            STATE["token_requests"] += 1
            delay = STATE["delay_ms"]
            life = STATE["token_life"]
        if delay:
            time.sleep(delay / 1000.0)
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            self.answer(400, aad_error(900144, "invalid_request", "The request body must contain the following parameter: 'grant_type'."))
        elif tenant != ARGS.tenant:
            self.answer(400, aad_error(90002, "invalid_request", "Tenant '%s' not found. Check to make sure you have the correct tenant ID." % tenant))
        elif form.get("grant_type") != "client_credentials":
            self.answer(400, aad_error(70003, "unsupported_grant_type", "The app requested an unsupported grant type."))
        elif form.get("client_id") != ARGS.client_id:
            self.answer(400, aad_error(700016, "unauthorized_client",
                                       "Application with identifier '%s' was not found in the directory '%s'." % (form.get("client_id"), tenant)))
        elif form.get("client_secret") != ARGS.client_secret:
            self.answer(401, aad_error(7000215, "invalid_client",
                                       "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'." % ARGS.client_id))
        elif form.get("scope") != ARGS.scope:
            self.answer(400, aad_error(1002012, "invalid_scope", "The provided value for scope %s is not valid." % form.get("scope")))
        else:
            token = "eyJ0eXAi." + secrets.token_urlsafe(24)
            with LOCK:
                STATE["tokens"].append(token)
            self.answer(200, {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token})


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--scope", required=True)
    parser.add_argument("--lifetime", type=float, default=600)
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("port %d" % server.server_address[1], flush=True)

    done = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(ARGS.lifetime)
    server.shutdown()


if __name__ == "__main__":
    main()
