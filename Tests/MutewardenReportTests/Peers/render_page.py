#!/usr/bin/env python3
"""Opens a page in headless Chromium and reports, as one JSON line on stdout, what a reader of
the page would have run into: console errors, uncaught exceptions, log errors, and every network
request other than the page itself. Keeps a screenshot (PNG) and a print (PDF).

Chromium is driven over the DevTools protocol on 127.0.0.1 (Page, Runtime, Log, Network
domains), with python3-websockets. Usage: render_page.py CHROMIUM PAGE.html SHOT.png PRINT.pdf
"""
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets


def wait_for_port(profile, process, deadline):
    """Chromium writes the port it took (--remote-debugging-port=0) in DevToolsActivePort."""
    path = os.path.join(profile, "DevToolsActivePort")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("chromium exited with status %s before opening its DevTools port" % process.returncode)
        try:
            with open(path) as handle:
                first = handle.readline().strip()
                if first:
                    return int(first)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    raise SystemExit("chromium opened no DevTools port within the time allowed")


def page_socket(port, deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=2) as answer:
                for target in json.load(answer):
                    if target.get("type") == "page":
                        return target["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("chromium listed no page target")


async def drive(url, page_url, shot, pdf, deadline):
    findings = {"console_errors": [], "exceptions": [], "log_errors": [], "requests": [], "loaded": False}
    async with websockets.connect(url, max_size=None) as socket:
        counter = 0
        pending = {}

        async def call(method, params=None):
            nonlocal counter
            counter += 1
            ident = counter
            await socket.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
            while time.monotonic() < deadline:
                message = json.loads(await asyncio.wait_for(socket.recv(), timeout=max(0.1, deadline - time.monotonic())))
                if message.get("id") == ident:
                    if "error" in message:
                        raise SystemExit("%s failed: %s" % (method, message["error"]))
                    return message.get("result", {})
                note(message)
            raise SystemExit("no answer to %s in time" % method)

        def note(message):
            method = message.get("method")
            params = message.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                findings["console_errors"].append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                findings["exceptions"].append(params.get("exceptionDetails", {}).get("text", "exception"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                findings["log_errors"].append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                requested = params.get("request", {}).get("url", "")
                if requested != page_url:
                    findings["requests"].append(requested)
            elif method == "Page.loadEventFired":
                findings["loaded"] = True

        for domain in ("Page", "Runtime", "Log", "Network"):
            await call(domain + ".enable")
        await call("Page.navigate", {"url": page_url})
        while not findings["loaded"] and time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=max(0.1, deadline - time.monotonic())))
            note(message)
        if not findings["loaded"]:
            raise SystemExit("the page did not finish loading in time")
        # What the page shows: the title and whether the SVGs are there.
        result = await call("Runtime.evaluate", {"expression": "document.title + '|' + document.querySelectorAll('svg').length", "returnByValue": True})
        findings["title_and_svgs"] = result.get("result", {}).get("value")
        await call("Emulation.setDeviceMetricsOverride", {"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        shot_data = await call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(shot, "wb") as handle:
            handle.write(base64.b64decode(shot_data["data"]))
        await call("Emulation.setEmulatedMedia", {"media": "print"})
        printed = await call("Page.printToPDF", {"printBackground": False})
        with open(pdf, "wb") as handle:
            handle.write(base64.b64decode(printed["data"]))
        # Late events (a request started by the print layout) are still counted.
        try:
            while True:
                note(json.loads(await asyncio.wait_for(socket.recv(), timeout=0.3)))
        except asyncio.TimeoutError:
            pass
    return findings


def main():
    chromium, page, shot, pdf = sys.argv[1:5]
    deadline = time.monotonic() + 60
    profile = tempfile.mkdtemp(prefix="mutewarden-chromium-")
    arguments = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--user-data-dir=" + profile, "about:blank",
    ]
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = wait_for_port(profile, process, deadline)
        url = page_socket(port, deadline)
        page_url = "file://" + os.path.abspath(page)
        findings = asyncio.run(drive(url, page_url, shot, pdf, deadline))
        print(json.dumps(findings), flush=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
