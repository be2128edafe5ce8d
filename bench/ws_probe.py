#!/usr/bin/python3
"""A Bayeux-over-WebSocket client for mutewarden-loadgen's WebSocket side, until the daemon has its
own websocket transport: logs in (GET /api/v2/me, Basic), opens the CometD websocket with the
session cookie and the Basic credentials, as the daemon will, then handshakes, subscribes to
/v2/me/calls and holds /meta/connect, counting the events pushed to it.

    mutewarden-loadgen --external --rate 2000 --duration 5 &     # prints the port on stderr
    bench/ws_probe.py --port PORT --seconds 8

Prints one JSON line: events received, frames, meta replies, and whether each step succeeded.
"""
import argparse
import asyncio
import base64
import json
import urllib.request

import websockets


async def probe(port, seconds):
    authorization = "Basic " + base64.b64encode(b"agent1:loadgen-secret").decode()
    request = urllib.request.Request("http://127.0.0.1:%d/api/v2/me" % port, headers={"Authorization": authorization})
    with urllib.request.urlopen(request) as answer:
        cookie = answer.headers["Set-Cookie"].split(";")[0]
    headers = {"Cookie": cookie, "Authorization": authorization}
    result = {"events": 0, "frames": 0, "handshake": False, "subscribed": False, "connect_replies": 0}
    async with websockets.connect("ws://127.0.0.1:%d/api/v2/notifications" % port, extra_headers=headers,
                                  max_size=None) as socket:
        await socket.send(json.dumps([{"channel": "/meta/handshake", "version": "1.0", "id": "1",
                                       "supportedConnectionTypes": ["websocket"]}]))
        client_id = None
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                frame = await asyncio.wait_for(socket.recv(), timeout=max(0.01, end - loop.time()))
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                break
            result["frames"] += 1
            for message in json.loads(frame):
                channel = message.get("channel")
                if channel == "/meta/handshake" and message.get("successful"):
                    result["handshake"] = True
                    client_id = message["clientId"]
                    await socket.send(json.dumps([{"channel": "/meta/subscribe", "clientId": client_id,
                                                   "subscription": "/v2/me/calls", "id": "2"}]))
                elif channel == "/meta/subscribe" and message.get("successful"):
                    result["subscribed"] = True
                    await socket.send(json.dumps([{"channel": "/meta/connect", "clientId": client_id,
                                                   "connectionType": "websocket", "id": "3"}]))
                elif channel == "/meta/connect":
                    result["connect_replies"] += 1
                elif channel == "/v2/me/calls" and message.get("data", {}).get("messageType") == "CallStateChangeMessage":
                    result["events"] += 1
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=8)
    options = parser.parse_args()
    asyncio.run(probe(options.port, options.seconds))


if __name__ == "__main__":
    main()
