#!/usr/bin/env python3
"""A fake of Microsoft Graph's cloud-communications side for a calling bot, built from the
documented shapes (microsoft-graph-docs api/call-mute.md, call-unmute.md, participant-mute.md,
call-updaterecordingstatus.md, resources/commsnotification.md, commsoperation.md; msteams-docs
call-notifications.md). Needs python3-jwt and python3-cryptography (Debian's).

  GET  /oidc                                     the OpenID configuration (issuer, jwks_uri)
  GET  /keys                                     the JWKS with the key notifications are signed with
  POST /{tenant}/oauth2/v2.0/token               client credentials -> {"token_type":"Bearer",...}
                                                 (401 invalid_client AADSTS7000215 for a wrong secret)
  POST /v1.0/communications/calls/{id}/mute      the bot mutes itself     -> muteParticipantOperation
  POST /v1.0/communications/calls/{id}/unmute    the bot unmutes itself   -> unmuteParticipantOperation
  POST /v1.0/communications/calls/{id}/participants/{pid}/mute           -> muteParticipantOperation
  POST /v1.0/communications/calls/{id}/updateRecordingStatus             -> updateRecordingStatusOperation
    401 {"error":{"code":"InvalidAuthenticationToken",...}} for a token it did not issue or revoked
    404 {"error":{"code":"ItemNotFound",...}} for a call in "gone"
    otherwise 200 with the operation, status per "mode": completed | running | failed. With
    "running", the outcome (completed) is notified 0.2 s later on .../operations/{opId}. A
    completed bot mute/unmute is followed by a roster notification with the bot's isMuted.

Control (no auth): POST /test/config {...} merges into the configuration (ingress, tenant,
app_id, client_secret, mode, gone, token_life); POST /test/notify {"body":…, "token":
"valid"|"forged"|"expired"|"wrong-tenant"|"none"} signs and posts one notification to the
ingress and answers {"status": N}; POST /test/revoke invalidates every token issued so far (the
daemon still thinks them valid: a token that expired early); GET /test/stats.

Listens on 127.0.0.1 and a port the kernel chooses, printed as "port N"; exits when its
standard input closes or after --lifetime seconds.
"""

import argparse
import base64
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

LOCK = threading.Lock()
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FORGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "graph-test-key"
ISSUER = "https://api.botframework.com"
CONFIG = {"ingress": None, "tenant": "tenant-1", "app_id": "app-1", "client_secret": "", "mode": "completed", "gone": [],
          "token_life": 3600}
STATE = {"requests": [], "token_requests": 0, "valid_tokens": set(), "notified": [], "muted": {}}
PORT = 0


def b64(number):
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks():
    numbers = KEY.public_key().public_numbers()
    return {"keys": [{"kty": "RSA", "use": "sig", "kid": KID, "n": b64(numbers.n), "e": b64(numbers.e)}]}


def sign(kind):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CONFIG["app_id"], "tid": CONFIG["tenant"], "iat": now - 10, "nbf": now - 10, "exp": now + 300}
    key = KEY
    if kind == "forged":
        key = FORGER
    elif kind == "expired":
        claims["exp"] = now - 600
        claims["iat"] = claims["nbf"] = now - 900
    elif kind == "wrong-tenant":
        claims["tid"] = "another-tenant"
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def post_notification(body, kind="valid"):
    url = CONFIG["ingress"]
    if not url:
        return 0
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    if kind != "none":
        request.add_header("Authorization", "Bearer " + sign(kind))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = -1
    with LOCK:
        STATE["notified"].append({"status": status, "kind": kind})
    return status


def commsNotifications(items):
    return {"@odata.type": "#microsoft.graph.commsNotifications",
            "value": [dict({"@odata.type": "#microsoft.graph.commsNotification"}, **item) for item in items]}


def roster(call):
    with LOCK:
        muted = STATE["muted"].get(call, False)
    return commsNotifications([{
        "changeType": "updated", "resourceUrl": "/communications/calls/%s/participants" % call,
        "resourceData": [
            {"@odata.type": "#microsoft.graph.participant", "id": "agent-" + call,
             "info": {"identity": {"user": {"displayName": "Agent", "id": "user-1"}}}, "isMuted": False, "isInLobby": False},
            {"@odata.type": "#microsoft.graph.participant", "id": "bot-" + call,
             "info": {"identity": {"application": {"displayName": "Recorder", "id": CONFIG["app_id"]}}}, "isMuted": muted},
        ]}])


def later(delay, function, *args):
    timer = threading.Timer(delay, function, args)
    timer.daemon = True
    timer.start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, document=None, headers=None):
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path == "/oidc":
            self.answer(200, {"issuer": ISSUER, "jwks_uri": "http://127.0.0.1:%d/keys" % PORT,
                              "id_token_signing_alg_values_supported": ["RS256"]})
        elif self.path == "/keys":
            self.answer(200, jwks())
        elif self.path == "/test/stats":
            with LOCK:
                self.answer(200, {"requests": STATE["requests"], "token_requests": STATE["token_requests"],
                                  "notified": STATE["notified"]})
        else:
            self.answer(404, {"error": {"code": "NotFound", "message": "no such path"}})

    def do_POST(self):
        body = self.read_body()
        if self.path == "/test/config":
            with LOCK:
                CONFIG.update(json.loads(body or b"{}"))
            self.answer(200, {})
            return
        if self.path == "/test/notify":
            request = json.loads(body)
            status = post_notification(request["body"], request.get("token", "valid"))
            self.answer(200, {"status": status})
            return
        if self.path == "/test/revoke":
            with LOCK:
                STATE["valid_tokens"].clear()
            self.answer(200, {})
            return
        if self.path.endswith("/oauth2/v2.0/token"):
            self.token(body)
            return
        match = re.fullmatch(r"/v1\.0/communications/calls/([^/]+)/(mute|unmute|participants/([^/]+)/mute|updateRecordingStatus)", self.path)
        if match:
            self.calls(match.group(1), match.group(2), body)
            return
        self.answer(404, {"error": {"code": "NotFound", "message": "no such path"}})

    def token(self, body):
        form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        with LOCK:
            STATE["token_requests"] += 1
        tenant = self.path.split("/")[1]
        if tenant != CONFIG["tenant"]:
            self.answer(400, {"error": "invalid_request", "error_codes": [90002],
                              "error_description": "AADSTS90002: Tenant '%s' not found.\r\nTrace ID: x" % tenant})
            return
        if form.get("client_secret") != CONFIG["client_secret"] or form.get("client_id") != CONFIG["app_id"]:
            self.answer(401, {"error": "invalid_client", "error_codes": [7000215],
                              "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"})
            return
        if form.get("scope") != "https://graph.microsoft.com/.default" or form.get("grant_type") != "client_credentials":
            self.answer(400, {"error": "invalid_scope", "error_codes": [70011], "error_description": "AADSTS70011: bad scope"})
            return
        token = "graph-token-" + secrets.token_hex(16)
        with LOCK:
            STATE["valid_tokens"].add(token)
        self.answer(200, {"token_type": "Bearer", "expires_in": CONFIG["token_life"], "ext_expires_in": CONFIG["token_life"],
                          "access_token": token})

    def calls(self, call, action, body):
        authorization = self.headers.get("Authorization") or ""
        token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else ""
        document = json.loads(body or b"{}")
        with LOCK:
            authorized = token in STATE["valid_tokens"]
            STATE["requests"].append({"call": call, "action": action, "body": document, "authorized": authorized})
            mode = CONFIG["mode"]
            gone = call in CONFIG["gone"]
        if not authorized:
            self.answer(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}})
            return
        if gone:
            self.answer(404, {"error": {"code": "ItemNotFound", "message": "Call %s not found." % call}})
            return
        context = document.get("clientContext")
        if not isinstance(context, str) or len(context) > 256:
            self.answer(400, {"error": {"code": "BadRequest", "message": "clientContext"}})
            return
        if action == "updateRecordingStatus":
            kind = "updateRecordingStatusOperation"
            if document.get("status") not in ("notRecording", "recording", "failed"):
                self.answer(400, {"error": {"code": "BadRequest", "message": "status"}})
                return
        else:
            kind = "unmuteParticipantOperation" if action == "unmute" else "muteParticipantOperation"
        operation = {"@odata.type": "#microsoft.graph." + kind, "id": str(uuid.uuid4()), "clientContext": context}
        location = "https://graph.microsoft.com/v1.0/communications/calls/%s/operations/%s" % (call, operation["id"])
        if mode == "failed":
            operation.update(status="failed", resultInfo={"@odata.type": "#microsoft.graph.resultInfo", "code": 403, "subcode": 8522,
                                                          "message": "The bot is not allowed to do this in this call."})
            self.answer(200, operation, {"Location": location})
            return

        def apply():
            if action in ("mute", "unmute"):
                with LOCK:
                    STATE["muted"][call] = action == "mute"
                post_notification(roster(call))

        if mode == "running":
            operation["status"] = "running"
            self.answer(200, operation, {"Location": location})

            def complete():
                done = dict(operation, status="completed")
                post_notification(commsNotifications([{"changeType": "updated",
                                                       "resourceUrl": "/communications/calls/%s/operations/%s" % (call, operation["id"]),
                                                       "resourceData": done}]))
                apply()

            later(0.2, complete)
            return
        operation["status"] = "completed"
        self.answer(200, operation, {"Location": location})
        later(0.05, apply)


def main():
    global PORT
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    PORT = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("port %d" % PORT, flush=True)
    done = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(args.lifetime)
    server.shutdown()


if __name__ == "__main__":
    main()
