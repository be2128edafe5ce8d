#!/usr/bin/env python3
"""A fake of Azure Communication Services Call Automation for the `acs` provider's tests, built
from the documented shapes (docs/providers/acs.md, and the platform reference §4):

REST API, each request authenticated as the platform does:
  POST /calling/callConnections/{id}/participants:mute?api-version=2024-09-15      200 {"operationContext":…}
  POST /calling/callConnections/{id}/participants:unmute?api-version=<preview>     200 (previews only)
  POST /calling/recordings/{id}:pause?api-version=…                                202
  POST /calling/recordings/{id}:resume?api-version=…                               202
    - HMAC-SHA256 (x-ms-date, x-ms-content-sha256, Authorization: HMAC-SHA256
      SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=…), recomputed here over
      VERB\\npath?query\\ndate;host;hash with the access key; or
    - Authorization: Bearer <a token this fake issued and that has not expired>;
    - Repeatability-Request-ID (a UUID) requires Repeatability-First-Sent (IMF-fixdate); a request
      id already seen is answered with the first answer and not performed again;
    - errors as CommunicationErrorResponse {"error":{"code":…,"message":…}}.
  After performing a mute/unmute/pause/resume it posts the confirming event (ParticipantsUpdated
  with isMuted, RecordingStateChanged inactive/active) to every callback URL.

Entra ID: POST /{tenant}/oauth2/v2.0/token (client credentials), tokens valid --token-life seconds.

Callback signing: GET /calling/.well-known/acsopenidconfiguration and GET /calling/keys (an RSA key
made at start); every callback it posts carries a fresh RS256 JWT (iss, aud = the resource id,
exp 5 minutes) unless the test asks for a bad one.

Control API for the tests (no auth):
  POST /test/config  {"callbacks":[url…], "token_life":s, "confirm":bool, "confirm_delay_ms":n,
                      "answers":{"pause":[{"status":500,"code":"…"}…]}   next answers of an operation
                      "always":{"pause":{"status":403,"code":"…"}}}      every answer of an operation
  POST /test/call    {"id","agent","caller","recording", "operation_context"?} CallConnected,
                     ParticipantsUpdated and RecordingStateChanged(active), in one callback
  POST /test/tone    {"call","tone","shape":"top"|"toneInfo"}
  POST /test/hangup  {"call"}
  POST /test/events  {"events":[…], "token":"good"|"forged"|"expired"|"wrong-audience"|
                      "wrong-issuer"|"missing"|"hs256", "callbacks":[…]?}
    each answers {"statuses":[HTTP status per callback URL]}
  GET  /test/state   {"performed":[…], "requests":[…], "token_requests":n, "tokens":[…],
                      "callback_statuses":[…]}

Listens on 127.0.0.1 and a port the kernel chooses, printed as "port N"; exits when its
standard input closes or after --lifetime seconds. Needs python3-cryptography and python3-jwt.
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import re
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ARGS = None
PORT = 0
LOCK = threading.Lock()
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "fake-acs-" + secrets.token_hex(4)
UNMUTE_VERSIONS = {"2023-10-03-preview", "2024-09-01-preview"}

STATE = {
    "callbacks": [],
    "token_life": 3600,
    "confirm": True,
    "confirm_delay_ms": 0,
    "answers": {},
    "always": {},
    "calls": {},
    "ledger": {},
    "performed": [],
    "requests": [],
    "tokens": {},
    "token_requests": 0,
    "callback_statuses": [],
}


def b64url_uint(value):
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks():
    numbers = KEY.public_key().public_numbers()
    return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID, "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}]}


def callback_token(kind):
    now = int(time.time())
    claims = {"iss": ARGS.issuer, "aud": ARGS.resource_id, "iat": now, "nbf": now, "exp": now + 300, "sub": "acs-callbacks"}
    key = KEY
    algorithm = "RS256"
    if kind == "expired":
        claims.update(iat=now - 900, nbf=now - 900, exp=now - 600)
    elif kind == "wrong-audience":
        claims["aud"] = "another-resource"
    elif kind == "wrong-issuer":
        claims["iss"] = "https://login.attacker.example"
    elif kind == "forged":
        key = OTHER_KEY  # a key the issuer does not publish, under the published key's id
    elif kind == "hs256":
        key = "shared-secret-" * 4
        algorithm = "HS256"
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": KID})


def cloud_event(kind, call, data):
    record = STATE["calls"].get(call, {})
    body = {
        "callConnectionId": call,
        "serverCallId": record.get("server", "server-" + call),
        "correlationId": record.get("correlation", "corr-" + call),
    }
    if record.get("operation_context"):
        body["operationContext"] = record["operation_context"]
    body.update(data)
    return {
        "id": str(uuid.uuid4()),
        "source": "calling/callConnections/" + call,
        "type": "Microsoft.Communication." + kind,
        "data": body,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": "calling/callConnections/" + call,
    }


def identifier(raw):
    if raw.startswith("8:acs:"):
        return {"rawId": raw, "kind": "communicationUser", "communicationUser": {"id": raw}}
    if raw.startswith("4:"):
        return {"rawId": raw, "kind": "phoneNumber", "phoneNumber": {"value": raw[2:]}}
    return {"rawId": raw, "kind": "unknown"}


def roster_event(call):
    """ParticipantsUpdated for the call's roster now, with the next sequence number (under LOCK)."""
    record = STATE["calls"][call]
    record["sequence"] += 1
    participants = [{"identifier": identifier(p["id"]), "isMuted": p["muted"], "isOnHold": False} for p in record["participants"]]
    return cloud_event("ParticipantsUpdated", call, {"sequenceNumber": record["sequence"], "participants": participants})


def recording_event(call):
    record = STATE["calls"][call]
    return cloud_event(
        "RecordingStateChanged", call,
        {"recordingId": record["recording"], "state": record["recording_state"], "recordingKind": "AzureCommunicationServices",
         "startDateTime": "2024-06-01T10:00:00Z"})


def post(url, body, token_kind):
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if token_kind != "missing":
        headers["Authorization"] = "Bearer " + callback_token(token_kind)
    try:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
        connection.request("POST", parts.path + ("?" + parts.query if parts.query else ""), body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status
    except OSError as error:
        print("callback to %s failed: %s" % (url, error), flush=True)
        return 0


def deliver(events, token_kind="good", callbacks=None):
    """Posts one batch to every callback URL (in parallel, as two replicas would each get it) and
    returns their statuses in the order of the URLs."""
    with LOCK:
        targets = list(callbacks if callbacks is not None else STATE["callbacks"])
    body = json.dumps(events).encode()
    statuses = [0] * len(targets)

    def one(index, url):
        statuses[index] = post(url, body, token_kind)

    threads = [threading.Thread(target=one, args=(i, url)) for i, url in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with LOCK:
        STATE["callback_statuses"].extend(statuses)
    return statuses


def communication_error(code, message):
    return {"error": {"code": code, "message": message}}


class Refusal(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.document = communication_error(code, message)


def check_hmac(handler, body):
    date = handler.headers.get("x-ms-date")
    content_hash = handler.headers.get("x-ms-content-sha256")
    host = handler.headers.get("Host")
    authorization = handler.headers.get("Authorization", "")
    if not date or not content_hash or not host:
        raise Refusal(401, "Denied", "x-ms-date, x-ms-content-sha256 and Host are required")
    if base64.b64encode(hashlib.sha256(body).digest()).decode() != content_hash:
        raise Refusal(401, "Denied", "x-ms-content-sha256 does not match the body")
    try:
        sent = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        raise Refusal(401, "Denied", "x-ms-date is not an RFC 1123 date")
    if abs(sent - time.time()) > 900:
        raise Refusal(401, "Denied", "x-ms-date is more than 15 minutes off")
    to_sign = "%s\n%s\n%s;%s;%s" % (handler.command.upper(), handler.path, date, host, content_hash)
    key = base64.b64decode(ARGS.access_key)
    signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
    expected = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=" + signature
    if not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise Refusal(401, "Denied", "the HMAC signature does not match")
    return "hmac", None


def authenticate(handler, body):
    authorization = handler.headers.get("Authorization", "")
    if authorization.startswith("HMAC-SHA256 "):
        return check_hmac(handler, body)
    if authorization.startswith("Bearer "):
        token = authorization[7:]
        with LOCK:
            expires = STATE["tokens"].get(token)
        if expires is None:
            raise Refusal(401, "InvalidAuthenticationToken", "the token was not issued here")
        if time.time() >= expires:
            raise Refusal(401, "InvalidAuthenticationToken", "the token has expired")
        return "bearer", token
    raise Refusal(401, "Denied", "no credential")


def repeatability(handler):
    request_id = handler.headers.get("Repeatability-Request-ID")
    first_sent = handler.headers.get("Repeatability-First-Sent")
    if request_id is None:
        if first_sent is not None:
            raise Refusal(400, "BadRequest", "Repeatability-First-Sent without Repeatability-Request-ID")
        return None, None
    try:
        uuid.UUID(request_id)
    except ValueError:
        raise Refusal(400, "BadRequest", "Repeatability-Request-ID is not a UUID")
    if first_sent is None:
        raise Refusal(400, "BadRequest", "Repeatability-First-Sent is required with Repeatability-Request-ID")
    try:
        email.utils.parsedate_to_datetime(first_sent)
    except (TypeError, ValueError):
        raise Refusal(400, "BadRequest", "Repeatability-First-Sent is not an IMF-fixdate")
    return request_id, first_sent


OPERATION = re.compile(r"^/calling/(callConnections/([^/?]+)/participants:(mute|unmute)|recordings/([^/?:]+):(pause|resume))$")


def perform(operation, subject, body):
    """Applies an operation to the fake's calls (under LOCK). Returns (status, document, events)."""
    calls = STATE["calls"]
    if operation in ("mute", "unmute"):
        call = calls.get(subject)
        if call is None:
            return 404, communication_error("8522", "Call not found."), None
        try:
            target = json.loads(body)["targetParticipants"][0]
            raw = target.get("rawId") or target["communicationUser"]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            return 400, communication_error("BadRequest", "targetParticipants is required"), None
        if not raw.startswith("8:acs:"):
            return 400, communication_error("BadRequest", "Only ACS Users are supported."), None
        participant = next((p for p in call["participants"] if p["id"] == raw), None)
        if participant is None:
            return 404, communication_error("8523", "Participant not found."), None
        participant["muted"] = operation == "mute"
        context = json.loads(body).get("operationContext")
        return 200, {"operationContext": context}, [roster_event(subject)]
    call_id = next((c for c, r in calls.items() if r["recording"] == subject), None)
    if call_id is None:
        return 404, communication_error("8522", "Recording not found."), None
    calls[call_id]["recording_state"] = "inactive" if operation == "pause" else "active"
    return 202, None, [recording_event(call_id)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, document):
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        base = "http://127.0.0.1:%d" % PORT
        if self.path == "/calling/.well-known/acsopenidconfiguration":
            self.answer(200, {"issuer": ARGS.issuer, "jwks_uri": base + "/calling/keys", "id_token_signing_alg_values_supported": ["RS256"]})
        elif self.path == "/calling/keys":
            self.answer(200, jwks())
        elif self.path == "/test/state":
            with LOCK:
                document = {k: STATE[k] for k in ("performed", "requests", "token_requests", "callback_statuses")}
                document["tokens"] = list(STATE["tokens"].keys())
            self.answer(200, document)
        else:
            self.answer(404, communication_error("NotFound", "no such resource"))

    def do_POST(self):
        body = self.read_body()
        path = urlsplit(self.path).path
        if path.startswith("/test/"):
            self.control(path, json.loads(body or b"{}"))
        elif path.endswith("/oauth2/v2.0/token"):
            self.token(path, body)
        else:
            self.operation(body)

    def token(self, path, body):
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        with LOCK:
            STATE["token_requests"] += 1
            life = STATE["token_life"]
        if path != "/%s/oauth2/v2.0/token" % ARGS.tenant or form.get("client_id") != ARGS.client_id:
            self.answer(400, {"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found.", "error_codes": [700016]})
        elif form.get("client_secret") != ARGS.client_secret:
            self.answer(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]})
        elif form.get("grant_type") != "client_credentials" or form.get("scope") != "https://communication.azure.com//.default":
            self.answer(400, {"error": "invalid_scope", "error_description": "AADSTS1002012: bad scope or grant.", "error_codes": [1002012]})
        else:
            token = "eyJ0eXAi." + secrets.token_urlsafe(24)
            with LOCK:
                STATE["tokens"][token] = time.time() + life
            self.answer(200, {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token})

    def operation(self, body):
        parts = urlsplit(self.path)
        match = OPERATION.match(parts.path)
        if match is None:
            self.answer(404, communication_error("NotFound", "no such operation"))
            return
        operation = match.group(3) or match.group(5)
        subject = match.group(2) or match.group(4)
        version = parse_qs(parts.query).get("api-version", [""])[0]
        entry = {"operation": operation, "subject": subject, "api_version": version}
        try:
            entry["auth"], entry["token"] = authenticate(self, body)
            if operation == "unmute" and version not in UNMUTE_VERSIONS:
                raise Refusal(400, "UnsupportedApiVersion", "participants:unmute is not in api-version " + version)
            if version == "":
                raise Refusal(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
            request_id, first_sent = repeatability(self)
        except Refusal as refusal:
            entry["status"] = refusal.status
            with LOCK:
                STATE["requests"].append(entry)
            self.answer(refusal.status, refusal.document)
            return
        entry.update(request_id=request_id, first_sent=first_sent)
        events = None
        # One lock across lookup, perform and store: two replicas' requests with one id arrive
        # together, and only one may be performed.
        with LOCK:
            if request_id is not None and request_id in STATE["ledger"]:
                status, document = STATE["ledger"][request_id]
                entry.update(status=status, deduplicated=True)
            else:
                scripted = STATE["answers"].get(operation) or []
                failure = scripted.pop(0) if scripted else STATE["always"].get(operation)
                if failure is not None:
                    status = failure["status"]
                    document = communication_error(failure.get("code", str(status)), failure.get("message", "scripted failure"))
                    entry["status"] = status
                else:
                    status, document, events = perform(operation, subject, body)
                    entry["status"] = status
                    if 200 <= status < 300:
                        STATE["performed"].append({"operation": operation, "subject": subject, "request_id": request_id, "auth": entry["auth"]})
                        if request_id is not None:
                            STATE["ledger"][request_id] = (status, document)
                    if not STATE["confirm"]:
                        events = None
            STATE["requests"].append(entry)
        self.answer(status, document)
        if events:
            with LOCK:
                delay = STATE["confirm_delay_ms"] / 1000.0
            threading.Thread(target=lambda: (time.sleep(delay), deliver(events)), daemon=True).start()

    def control(self, path, request):
        if path == "/test/config":
            with LOCK:
                for key in ("callbacks", "token_life", "confirm", "confirm_delay_ms", "answers", "always"):
                    if key in request:
                        STATE[key] = request[key]
            self.answer(200, {})
            return
        if path == "/test/call":
            call = request["id"]
            with LOCK:
                STATE["calls"][call] = {
                    "participants": [{"id": request["agent"], "muted": False}, {"id": request["caller"], "muted": False}],
                    "sequence": 0, "recording": request["recording"], "recording_state": "active",
                    "operation_context": request.get("operation_context"),
                }
                events = [cloud_event("CallConnected", call, {}), roster_event(call), recording_event(call)]
        elif path == "/test/tone":
            call = request["call"]
            data = {"sequenceId": 1}
            if request.get("shape") == "toneInfo":
                data["toneInfo"] = {"sequenceId": 1, "tone": request["tone"]}
            else:
                data["tone"] = request["tone"]
            with LOCK:
                events = [cloud_event("ContinuousDtmfRecognitionToneReceived", call, data)]
        elif path == "/test/hangup":
            call = request["call"]
            with LOCK:
                events = [cloud_event("CallDisconnected", call, {})]
                STATE["calls"].pop(call, None)
        elif path == "/test/events":
            events = request["events"]
        else:
            self.answer(404, {})
            return
        statuses = deliver(events, request.get("token", "good"), request.get("callbacks"))
        self.answer(200, {"statuses": statuses})


def main():
    global ARGS, PORT
    parser = argparse.ArgumentParser()
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--resource-id", required=True)
    parser.add_argument("--issuer", default="https://acscallautomation.communication.azure.com")
    parser.add_argument("--tenant", default="fake-tenant")
    parser.add_argument("--client-id", default="fake-client")
    parser.add_argument("--client-secret", default="fake-client-secret")
    parser.add_argument("--lifetime", type=float, default=600)
    ARGS = parser.parse_args()
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
    done.wait(ARGS.lifetime)
    server.shutdown()


if __name__ == "__main__":
    main()
