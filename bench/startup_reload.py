#!/usr/bin/env python3
"""Time from exec to READY=1, and from SIGHUP to the READY=1 that ends the reload, measured on
the systemd notify socket as systemd itself would see them.

Usage: bench/startup_reload.py [BINARY] [CONFIG] [RUNS]   (defaults: the release build, the demo)
"""
import os, signal, socket, statistics, subprocess, sys, tempfile, time

binary = sys.argv[1] if len(sys.argv) > 1 else ".build/release/mutewarden"
config = sys.argv[2] if len(sys.argv) > 2 else "config/demo.yaml"
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20


def wait_for(sock, wanted, deadline):
    while time.monotonic() < deadline:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            break
        if wanted in data.split("\n"):
            return time.monotonic()
    raise SystemExit(f"no {wanted} within the deadline")


def one_run(state_dir):
    path = os.path.join(tempfile.mkdtemp(), "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    text = open(config).read().replace("directory: /tmp/mutewarden-demo", f"directory: {state_dir}")
    conf = os.path.join(os.path.dirname(path), "mutewarden.yaml")
    open(conf, "w").write(text)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    start = time.monotonic()
    process = subprocess.Popen([binary, "run", "--config", conf], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = wait_for(sock, "READY=1", start + 10)
    time.sleep(0.3)
    reload_start = time.monotonic()
    process.send_signal(signal.SIGHUP)
    wait_for(sock, "RELOADING=1", reload_start + 10)
    reloaded = wait_for(sock, "READY=1", reload_start + 10)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    sock.close()
    return (ready - start) * 1000, (reloaded - reload_start) * 1000


startups, reloads = [], []
for _ in range(runs):
    s, r = one_run(tempfile.mkdtemp())
    startups.append(s)
    reloads.append(r)
for name, values in (("start to READY=1", startups), ("SIGHUP to READY=1", reloads)):
    values.sort()
    print(f"{name}: median {statistics.median(values):.1f} ms, p90 {values[int(len(values) * 0.9) - 1]:.1f} ms, "
          f"max {values[-1]:.1f} ms over {len(values)} runs")
