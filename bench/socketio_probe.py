#!/usr/bin/python3
"""A Voicenter Real-Time client for mutewarden-loadgen's Voicenter side, built on python-socketio,
until the daemon has its own voicenter feed, and to check the server against a socket.io client
that is not ours: Debian's python3-socketio 5.x speaks Engine.IO 4, python-socketio 4.6.1 with
python-engineio 3.14.2 (in a venv) Engine.IO 3, as Voicenter's own SDK does.

It logs in (POST /monitorAPI/Login/Token), connects to the socket server the login names with
the token in the query, over WebSocket only, takes the AllExtensionsStatus snapshot and the
ExtensionEvents, emits keepalive (and resync with --resync), and plays the daemon's policy
(pause the recording of every call on the extension while PCI_STAGE=CARD, a new call on it
included; resume them all when the stage ends) with MuteUnmuteCalls by ivrid, so that the
generator's ledger can say whether each expected request came once.

    mutewarden-loadgen --platform voicenter --external --rate 500 --calls 2000 &   # prints the port
    bench/socketio_probe.py --port PORT --seconds 12
    /tmp/sio4/bin/python bench/socketio_probe.py --port PORT --seconds 12           # Engine.IO 3

Prints one JSON line: what arrived, what was sent, and whether each step succeeded.
"""
import argparse
import asyncio
import importlib.metadata
import json
import urllib.request

import aiohttp
import socketio

TOKEN = "loadgen-monitor-token"


def login(port):
    request = urllib.request.Request(
        "http://127.0.0.1:%d/monitorAPI/Login/Token" % port, data=json.dumps({"token": TOKEN}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)["Data"]["Socket"]


class Center:
    """What the probe knows of the calls, and the extension windows it holds open."""

    def __init__(self, http, base, result):
        self.http, self.base, self.result = http, base, result
        self.stage = {}      # ivrid -> PCI_STAGE
        self.muted = {}      # ivrid -> IsMuted
        self.windows = {}    # extension -> {"trigger": ivrid, "covered": set of ivrids}
        self.tasks = set()

    def mute(self, ivrid, state):
        self.result["mutes_sent" if state == "1" else "unmutes_sent"] += 1
        task = asyncio.ensure_future(self.post(ivrid, state))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def post(self, ivrid, state):
        async with self.http.post(self.base + "/api/MuteUnmuteCalls", json={"ivrid": ivrid, "state": state}) as answer:
            body = await answer.json(content_type=None)
            if answer.status != 200 or str(body.get("ErrorCode")) != "200":
                self.result["mute_errors"] += 1

    def calls(self, extension, calls):
        """One extension's live calls, as a snapshot or an event states them."""
        window = self.windows.get(extension)
        for call in calls:
            ivrid = call["ivrid"]
            stage = (call.get("customdata") or {}).get("PCI_STAGE")
            new = ivrid not in self.stage
            before = self.stage.get(ivrid)
            self.stage[ivrid] = stage
            muted = (call.get("recording") or {}).get("IsMuted")
            if ivrid in self.muted and muted != self.muted[ivrid]:
                self.result["recording_changes"] += 1
            self.muted[ivrid] = muted
            if window and new and ivrid not in window["covered"]:
                self.result["new_calls_in_window"] += 1
                window["covered"].add(ivrid)
                self.mute(ivrid, "1")
            elif window is None and stage == "CARD" and before != "CARD":
                window = {"trigger": ivrid, "covered": {c["ivrid"] for c in calls}}
                self.windows[extension] = window
                self.result["windows_opened"] += 1
                for covered in sorted(window["covered"]):
                    self.mute(covered, "1")
            elif window and ivrid == window["trigger"] and stage in ("DONE", "ABORTED"):
                self.close(extension)
                window = None

    def close(self, extension):
        window = self.windows.pop(extension)
        self.result["windows_closed"] += 1
        for covered in sorted(window["covered"]):
            if covered in self.stage:
                self.mute(covered, "0")

    def ended(self, extension, ivrid):
        self.stage.pop(ivrid, None)
        self.muted.pop(ivrid, None)
        window = self.windows.get(extension)
        if window:
            window["covered"].discard(ivrid)
            if ivrid == window["trigger"]:
                self.windows.pop(extension)


async def probe(port, seconds, resync):
    result = {"socketio": importlib.metadata.version("python-socketio"),
              "engineio": importlib.metadata.version("python-engineio"), "login": False, "connected": False,
              "snapshots": 0, "snapshot_extensions": 0, "snapshot_calls": 0, "events": 0, "reasons": {},
              "keepalive_answers": [], "windows_opened": 0, "windows_closed": 0, "new_calls_in_window": 0,
              "mutes_sent": 0, "unmutes_sent": 0, "mute_errors": 0, "recording_changes": 0, "disconnects": 0}
    socket = login(port)
    result["login"] = bool(socket.get("Token"))
    base = socket["Url"]
    async with aiohttp.ClientSession() as http:
        center = Center(http, "http://127.0.0.1:%d" % port, result)
        # Our session, closed on the way out: the one engineio would make is left open.
        client = socketio.AsyncClient(reconnection=False, http_session=http)

        @client.event
        async def connect():
            result["connected"] = True

        @client.event
        async def disconnect():
            result["disconnects"] += 1

        @client.on("AllExtensionsStatus")
        async def snapshot(data):
            result["snapshots"] += 1
            result["snapshot_extensions"] = len(data["extensions"])
            result["snapshot_calls"] = sum(len(e.get("calls") or []) for e in data["extensions"])
            for extension in data["extensions"]:
                center.calls(extension["extenUser"], extension.get("calls") or [])

        @client.on("ExtensionEvent")
        async def event(data):
            result["events"] += 1
            reason = data["reason"]
            result["reasons"][reason] = result["reasons"].get(reason, 0) + 1
            extension = data["data"]["extenUser"]
            live = data["data"].get("calls") or []
            if reason == "HANGUP":
                ended = data.get("ivruniqueid") or data["data"]["currentCall"]["ivrid"]
                if ended not in {c["ivrid"] for c in live}:
                    center.ended(extension, ended)
            center.calls(extension, live)

        @client.on("keepaliveResponse")
        async def keepalive(data):
            result["keepalive_answers"].append(data)

        await client.connect(base + "/?token=" + socket["Token"], transports=["websocket"])
        await client.emit("keepalive", socket["Token"])
        if resync:
            await asyncio.sleep(1)
            await client.emit("resync", {"cache": False})
        await asyncio.sleep(seconds)
        await client.disconnect()
        if center.tasks:
            await asyncio.wait(center.tasks, timeout=5)
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--resync", action="store_true", help="emit resync once, a second after connecting")
    options = parser.parse_args()
    asyncio.run(probe(options.port, options.seconds, options.resync))


if __name__ == "__main__":
    main()
