#!/usr/bin/env python3
"""A socket.io server for the socket.io client's tests, on 127.0.0.1.

The same script runs on python-socketio 5.x (Engine.IO v4; Debian's python3-socketio) and on
python-socketio 4.6 with python-engineio 3.14 (Engine.IO v3; the venv the tests make), both on
aiohttp. It prints `PORT <n>` once it listens, then one line per thing a test waits for.

A test drives it through the socket.io connection itself, with `please` events:
  {"action": "emit", "event": E, "data": D, "count": N,
   "every": S}                                            emit E N times (D may be any JSON), S seconds
                                                          before each
  {"action": "raw", "frames": [...]}                      send each text as a raw WebSocket frame
  {"action": "mute"}                                      stop the heartbeat: on Engine.IO v3, no
                                                          more pongs; on v4, no more pings
  {"action": "disconnect"}                                socket.io disconnect (41) from the server
Other events it answers: `echo` (acknowledged with its arguments, and emitted back as `echoed`),
`keepalive` (answered with `keepaliveResponse`, as Voicenter does).

A token other than --token (in the query, or on v4 also in the CONNECT auth) is refused, as each
version refuses it: HTTP 401 on the v3 handshake, CONNECT_ERROR `44` on v4. With --token '*'
every token is taken, but for the next connections `/test/refuse` names.

For a client the test does not hold (the daemon's), the same requests go to every connected
session through HTTP routes on the same port:
  POST /test/please    a `please` request (above), applied to every connected session
  POST /test/snapshot  {"event": E, "data": D}: emitted to every session now (unless "emit":
                       false), to each new one once it is connected, and again when a session
                       emits `resync`
  POST /test/refuse    {"count": N}: refuse the next N connections' tokens
  GET  /test/state     {"connected": N, "tokens": [every token offered, in order]}
"""
import argparse
import asyncio
import importlib.metadata
import json
import sys
import urllib.parse

from aiohttp import web
import engineio
import socketio
from engineio import packet as eio_packet

try:
    from engineio.asyncio_socket import AsyncSocket
except ImportError:  # newer layouts
    from engineio.async_socket import AsyncSocket

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--token", default="good-token")
parser.add_argument("--ping-interval", type=float, default=25)
parser.add_argument("--ping-timeout", type=float, default=20)
# Advertised in the open packet is --ping-timeout; once a session is connected, the server's own
# waits (python-engineio closes a socket with nothing to send or receive for interval + timeout)
# use this instead, so that a client's heartbeat deadline is what a test sees first.
parser.add_argument("--server-timeout", type=float, default=None)
args = parser.parse_args()

SIO_VERSION = importlib.metadata.version("python-socketio")
EIO_VERSION = importlib.metadata.version("python-engineio")
EIO = 3 if SIO_VERSION.startswith("4.") else 4


if EIO == 3:
    # python-socketio 4.6 hands bare coroutines to asyncio.wait, which Python 3.11 refuses; the
    # versions that speak Engine.IO v3 predate it. Wrapped in tasks, as 3.11 asks.
    _wait = asyncio.wait

    async def wait(awaitables, *args, **kwargs):
        return await _wait([asyncio.ensure_future(a) for a in awaitables], *args, **kwargs)

    asyncio.wait = wait


def say(line):
    print(line, flush=True)


sio = socketio.AsyncServer(
    async_mode="aiohttp", ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
    logger=False, engineio_logger=False, cors_allowed_origins="*")
app = web.Application()
sio.attach(app)

# Engine.IO sessions whose heartbeat a test stopped.
muted = set()
# socket.io sessions connected now; tokens offered; connections still to refuse; the snapshot.
connected = set()
offered = []
refusals = {"count": 0}
snapshot = {"event": None, "data": None}


def engine_sid(sid):
    manager = sio.manager
    if hasattr(manager, "eio_sid_from_sid"):  # 5.x: socket.io and Engine.IO ids differ
        return manager.eio_sid_from_sid(sid, "/")
    return sid


_receive = AsyncSocket.receive


async def receive(self, pkt):
    # v3: the client pings. A muted session is still taken as alive (so the server does not time
    # it out first), but never answered: the client must notice by itself.
    if self.sid in muted and pkt.packet_type == eio_packet.PING:
        import time
        self.last_ping = time.time()
        say("ping unanswered")
        return
    return await _receive(self, pkt)


AsyncSocket.receive = receive

if hasattr(AsyncSocket, "schedule_ping"):
    _schedule_ping = AsyncSocket.schedule_ping

    def schedule_ping(self):
        # v4: the server pings. A muted session is simply never pinged again.
        if self.sid in muted:
            say("pings stopped")
            return
        return _schedule_ping(self)

    AsyncSocket.schedule_ping = schedule_ping


class RawPacket(eio_packet.Packet):
    """A frame sent exactly as given, however malformed."""

    def __init__(self, text):
        super().__init__(eio_packet.MESSAGE, text)
        self.text = text

    def encode(self, *args, **kwargs):
        return self.text


_eio_disconnect = sio._handle_eio_disconnect


async def eio_disconnect(*args, **kwargs):
    # Every end of an Engine.IO session, socket.io connected or not (a refused CONNECT is not).
    say("engine.io closed")
    return await _eio_disconnect(*args, **kwargs)


sio.eio.on("disconnect", eio_disconnect)


@sio.event
async def connect(sid, environ, auth=None):
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    token = (query.get("token") or [None])[0]
    if token is None and isinstance(auth, dict):
        token = auth.get("token")
    offered.append(token)
    refused = refusals["count"] > 0 if args.token == "*" else token != args.token
    if refused:
        refusals["count"] = max(0, refusals["count"] - 1)
        say("refused a token")
        if EIO == 3:
            return False  # python-engineio 3.x answers the handshake with HTTP 401
        raise socketio.exceptions.ConnectionRefusedError("token refused")
    say(f"connected {'auth ' + json.dumps(auth, sort_keys=True) if auth else 'no-auth'}")
    connected.add(sid)
    if args.server_timeout is not None:
        sio.eio.ping_timeout = args.server_timeout
    if snapshot["event"]:
        # After the handler returns: the client must have its CONNECT before any event.
        sio.start_background_task(send_snapshot, sid)


async def send_snapshot(sid):
    await sio.sleep(0.05)
    if sid in connected and snapshot["event"]:
        await sio.emit(snapshot["event"], snapshot["data"], room=sid)
        say("snapshot sent")


@sio.event
async def disconnect(sid):
    connected.discard(sid)
    say("disconnected")


@sio.event
async def resync(sid, *data):
    say("resync")
    if snapshot["event"]:
        await sio.emit(snapshot["event"], snapshot["data"], room=sid)
        say("snapshot sent")


@sio.event
async def echo(sid, *data):
    say("echo " + json.dumps(list(data)))
    await sio.emit("echoed", list(data), room=sid)
    return list(data)


@sio.event
async def keepalive(sid, token):
    say("keepalive")
    await sio.emit("keepaliveResponse", {"isOk": True, "errorCode": 0}, room=sid)


@sio.event
async def please(sid, request):
    await carry_out(sid, request)


async def carry_out(sid, request):
    action = request.get("action")
    say(f"please {action}")
    if action == "emit":
        for _ in range(int(request.get("count", 1))):
            if request.get("every"):
                await asyncio.sleep(float(request["every"]))
            await sio.emit(request["event"], request.get("data"), room=sid)
    elif action == "raw":
        socket = sio.eio._get_socket(engine_sid(sid))
        for frame in request["frames"]:
            await socket.send(RawPacket(frame))
    elif action == "mute":
        muted.add(engine_sid(sid))
    elif action == "disconnect":
        await sio.disconnect(sid)
    say(f"done {action}")


async def test_please(request):
    body = await request.json()
    for sid in list(connected):
        await carry_out(sid, body)
    return web.json_response({"sessions": len(connected)})


async def test_snapshot(request):
    body = await request.json()
    snapshot["event"], snapshot["data"] = body["event"], body.get("data")
    for sid in list(connected) if body.get("emit", True) else []:
        await sio.emit(snapshot["event"], snapshot["data"], room=sid)
    say("snapshot set")
    return web.json_response({"sessions": len(connected)})


async def test_refuse(request):
    body = await request.json()
    refusals["count"] = int(body.get("count", 1))
    return web.json_response({})


async def test_state(request):
    return web.json_response({"connected": len(connected), "tokens": offered})


app.router.add_post("/test/please", test_please)
app.router.add_post("/test/snapshot", test_snapshot)
app.router.add_post("/test/refuse", test_refuse)
app.router.add_get("/test/state", test_state)


async def main():
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    say(f"VERSION python-socketio {SIO_VERSION} python-engineio {EIO_VERSION} EIO {EIO}")
    say(f"PORT {port}")
    # Ends when the test closes standard input (or by SIGTERM), so a crashed test leaves nothing.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
