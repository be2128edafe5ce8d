#!/usr/bin/python3
"""WebSocket peer for MutewardenWebSocketTests, on Debian's python3-websockets (10.4).

Each request path is one behaviour, so that one server process covers every case and a test can
stop it and start it again on the same port. Prints `PORT <n>` once it listens, then one line per
event the tests check (`closed <path> <code>` with the close code the client sent, `refused ...`).
It only ever listens on 127.0.0.1.
"""

import argparse
import asyncio
import http
import json
import signal
import ssl
import sys
import urllib.parse

import websockets
from websockets.frames import OP_CONT, OP_TEXT


def log(*parts):
    print(*parts, flush=True)


REFUSALS = {
    # What a socket.io server answers an Engine.IO version it does not speak.
    "/400": (http.HTTPStatus.BAD_REQUEST, [("Content-Type", "application/json")], b'{"code":5,"message":"Unsupported protocol version"}'),
    "/401": (http.HTTPStatus.UNAUTHORIZED, [("WWW-Authenticate", "Bearer")], b"token rejected\n"),
    "/503": (http.HTTPStatus.SERVICE_UNAVAILABLE, [("Retry-After", "1")], b"busy\n"),
}


async def process_request(path, request_headers):
    route = path.partition("?")[0]
    if route in REFUSALS:
        log("refused", route)
        return REFUSALS[route]
    return None


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def handler(ws):
    route, _, query = ws.path.partition("?")
    params = dict(urllib.parse.parse_qsl(query))
    log("open", route)
    try:
        if route == "/echo":
            await echo(ws)
        elif route == "/headers":
            # What the client really sent, for the tests to check (they are test values, not secrets).
            headers = {name.lower(): value for name, value in ws.request_headers.raw_items()}
            await ws.send(json.dumps({"path": ws.path, "headers": headers, "subprotocol": ws.subprotocol}))
            await echo(ws)
        elif route == "/tick":
            count = 0
            every = float(params.get("every", "0.05"))
            while True:
                await ws.send(str(count))
                count += 1
                await asyncio.sleep(every)
        elif route == "/flood":
            # `count` numbered messages of `size` bytes as fast as the client takes them.
            size = int(params.get("size", "1024"))
            for index in range(int(params.get("count", "1000"))):
                await ws.send(str(index).ljust(size, "."))
            log("flooded", route)
            await ws.wait_closed()
        elif route == "/big":
            await ws.send("x" * int(params.get("size", str(10 << 20))))
            await ws.wait_closed()
        elif route == "/fragments":
            # One text and one binary message, each in several frames (first frame + continuations).
            await ws.send(["he", "llo", " wor", "ld ", "\u00e9t\u00e9"])
            await ws.send([b"\x00\x01", b"\x02", b"\x03\x04"])
            await echo(ws)
        elif route == "/badutf8":
            await ws.write_frame(True, OP_TEXT, b"card \xff\xfe")
            await ws.wait_closed()
        elif route == "/badutf8-split":
            # Valid start, then a continuation frame that breaks the UTF-8 sequence.
            await ws.write_frame(False, OP_TEXT, b"caf\xc3")
            await ws.write_frame(True, OP_CONT, b"(")
            await ws.wait_closed()
        elif route == "/dropmid":
            # A frame header announcing 1000 bytes, 100 of them, then the TCP connection is cut.
            ws.transport.write(b"\x81\x7e\x03\xe8" + b"a" * 100)
            await asyncio.sleep(0.05)
            ws.transport.abort()
        elif route == "/silent":
            # Stops reading: pings are never seen, so never answered.
            await ws.send("hello")
            ws.transport.pause_reading()
            await asyncio.sleep(3600)
        elif route == "/quiet":
            # Answers pings but sends nothing.
            await ws.send("hello")
            await ws.wait_closed()
        elif route == "/closeafter":
            await ws.send("hello")
            await asyncio.sleep(float(params.get("ms", "0")) / 1000)
            await ws.close(int(params.get("code", "1000")))
        else:
            await ws.close(1008)
    except websockets.ConnectionClosed:
        pass
    finally:
        log("closed", route, ws.close_code)


async def main():
    # The test process starts us from a thread that blocks SIGTERM (libdispatch's workers do), and
    # a blocked mask is inherited: unblock it, or the graceful stop the tests rely on never comes.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca", help="require a client certificate signed by this CA")
    args = parser.parse_args()

    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)

    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))

    async with websockets.serve(
        handler, "127.0.0.1", args.port, ssl=context, process_request=process_request,
        subprotocols=["mw.test.v1", "mw.test.v2"], ping_interval=None, max_size=1 << 20,
        close_timeout=1,
    ) as server:
        log("PORT", server.sockets[0].getsockname()[1])
        await stop
    log("stopped")


if __name__ == "__main__":
    asyncio.run(main())
