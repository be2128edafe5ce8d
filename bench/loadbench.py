#!/usr/bin/python3
"""End-to-end load benchmark of mutewarden against mutewarden-loadgen (make bench, make bench-soak).

    loadbench.py sweep [--rates 1000,5000,20000,50000] [--transports long-polling,websocket]
                       [--platforms genesys,voicenter] [--voicenter-rates 1000,5000]
    loadbench.py soak  [--rate 2000] [--minutes 30]
    loadbench.py plot              # redraws the plots and the table from bench/results/*.json
    loadbench.py compare --baseline BIN [--candidate BIN] [--rate 5000] [--rounds 3]
                                   # A/B of two daemon builds, interleaved, on both transports

The generator runs on CPU 0 and the daemon on CPU 1 (taskset), so "one daemon core" means what
it says. Voicenter runs (--platform voicenter: socket.io, extension windows, a new call in each)
come after Genesys's, at their own rates. Each run's JSON (the generator's report), a table (latest.md) and the plots go to
bench/results/. The daemon logs at info to a file in a temporary directory: every log line costs
a real write(2), as in production, without a terminal to slow it down; the file is deleted.
See docs/performance.md.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
LOADGEN = os.path.join(ROOT, ".build", "release", "mutewarden-loadgen")
DAEMON = os.path.join(ROOT, ".build", "release", "mutewarden")
GENERATOR_CPU, DAEMON_CPU = "0", "1"


JOURNAL_LINE = re.compile(r"window journal: (\d+) record\(s\) in (\d+) flush\(es\)(?:, (\d+) sync\(s\))?")


def run_loadgen(arguments, output, log_directory, daemon=DAEMON):
    log = os.path.join(log_directory, "daemon.log")
    if os.path.exists(log):
        os.unlink(log)  # a run without a daemon (sink, reflex) must not read the last one's
    command = ["taskset", "-c", GENERATOR_CPU, LOADGEN, "--daemon", daemon, "--daemon-cpu", DAEMON_CPU,
               "--output", output, "--daemon-log", log] + arguments
    print("$ " + " ".join(command[3:]), flush=True)
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    print(completed.stdout, end="", flush=True)
    if completed.returncode != 0 and not os.path.exists(output):
        sys.exit("mutewarden-loadgen failed:\n" + completed.stderr)
    with open(output) as handle:
        report = json.load(handle)
    journal = journal_figures(log, report)
    if journal:
        report["journal"] = journal
        with open(output, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


def journal_figures(log, report):
    """The window journal's records and flushes, from the daemon's stopped record. Flushes per
    second are over the time events flowed (warm-up and measurement): the journal writes nothing
    while no window opens or closes."""
    if not os.path.exists(log):
        return None
    found = None
    with open(log, errors="replace") as handle:
        for line in handle:
            match = JOURNAL_LINE.search(line)
            if match:
                found = match
    if not found:
        return None
    seconds = (report.get("warmup_seconds") or 0) + (report.get("duration_seconds") or 0)
    records, flushes = int(found.group(1)), int(found.group(2))
    syncs = int(found.group(3)) if found.group(3) is not None else None
    return {"records": records, "flushes": flushes, "syncs": syncs,
            "syncs_per_second": syncs / seconds if syncs is not None and seconds else None,
            "flushes_per_second": flushes / seconds if seconds else None,
            "records_per_flush": records / flushes if flushes else None}


def describe_machine():
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                            text=True).stdout.strip()
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"commit": commit, "cpu": cpu, "cores": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def consumer_result(kind, transport, rate=None):
    """Where a built-in consumer's run goes: `sink.json`, `reflex-5000.json`; the websocket runs
    name their transport (`sink-websocket.json`, `reflex-websocket-5000.json`)."""
    parts = [kind] + ([] if transport == "long-polling" else [transport]) + ([] if rate is None else [str(rate)])
    return os.path.join(RESULTS, "-".join(parts) + ".json")


def sweep(options):
    os.makedirs(RESULTS, exist_ok=True)
    platforms = options.platforms.split(",")
    unknown = set(platforms) - {"genesys", "voicenter"}
    if unknown:
        sys.exit("unknown platform(s): " + ", ".join(sorted(unknown)))
    runs, sinks = [], []
    with tempfile.TemporaryDirectory(prefix="mutewarden-bench-") as logs:
        if "genesys" in platforms:
            sweep_genesys(options, runs, sinks, logs)
        if "voicenter" in platforms:
            sweep_voicenter(options, runs, sinks, logs)
    summary = {"machine": describe_machine(), "sinks": sinks, "runs": runs}
    with open(os.path.join(RESULTS, "sweep.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    write_table(summary)
    plot_latency(runs)


def sweep_voicenter(options, runs, sinks, logs):
    """Voicenter: the generator's headroom over socket.io (one frame per event, so far below
    Bayeux's), then the daemon at each rate with 10,000 calls on 8,000 extensions."""
    sinks.append(run_loadgen(["--platform", "voicenter", "--sink", "--rate", str(options.voicenter_sink_rate),
                              "--warmup", "2", "--duration", "10", "--grace", "0"],
                             os.path.join(RESULTS, "sink-voicenter.json"), logs))
    for rate in [int(r) for r in options.voicenter_rates.split(",")]:
        report = run_loadgen(
            ["--platform", "voicenter", "--eio", options.eio, "--rate", str(rate), "--calls", str(options.calls),
             "--warmup", str(options.warmup), "--duration", str(options.duration), "--grace", str(options.grace)],
            os.path.join(RESULTS, "voicenter-%d.json" % rate), logs)
        runs.append(report)
        if report.get("error") and not (report.get("server") or {}).get("resyncs"):
            print("the daemon did not take Voicenter's snapshot (a build without the voicenter feed or its "
                  "socket.io client?); skipping the other Voicenter rates")
            break


def sweep_genesys(options, runs, sinks, logs):
    # The generator's own headroom: no daemon, a consumer that only reads, on each transport.
    for transport in options.transports.split(","):
        sinks.append(run_loadgen(["--sink", "--transport", transport, "--rate", str(options.sink_rate),
                                  "--warmup", "2", "--duration", "10", "--grace", "0"],
                                 consumer_result("sink", transport), logs))
    for transport in options.transports.split(","):
        for rate in [int(r) for r in options.rates.split(",")]:
            name = os.path.join(RESULTS, "%s-%d.json" % (transport, rate))
            report = run_loadgen(
                ["--transport", transport, "--rate", str(rate), "--calls", str(options.calls),
                 "--warmup", str(options.warmup), "--duration", str(options.duration), "--grace",
                 str(options.grace)], name, logs)
            runs.append(report)
            if report.get("error") and "before subscribing" in report["error"]:
                print("the daemon cannot use the %s transport in this build; skipping its rates" % transport)
                break
    # The floor under the daemon's latency: the least consumer that sends every action, on the
    # daemon's core, over each transport, at the rates it can keep up with.
    if not options.no_reflex:
        for transport in options.transports.split(","):
            for rate in [int(r) for r in options.rates.split(",") if int(r) <= 20000]:
                runs.append(run_loadgen(
                    ["--reflex", "--transport", transport, "--rate", str(rate), "--calls", str(options.calls),
                     "--warmup", str(options.warmup), "--duration", str(options.duration), "--grace",
                     str(options.grace)], consumer_result("reflex", transport, rate), logs))


def number(value, digits=2):
    return "—" if value is None else ("%.*f" % (digits, value))


def label(run):
    """The table's and the plot's name for a run: its transport, or the floor consumer."""
    return "floor, %s" % run["transport"] if run.get("reflex") else run["transport"]


def write_table(summary):
    machine, sinks = summary["machine"], summary.get("sinks") or []
    lines = [
        "# mutewarden end-to-end load benchmark",
        "",
        "Commit %s, %s, %s cores; %s. Generator on CPU %s, daemon on CPU %s (taskset); 10,000 concurrent "
        "calls unless said otherwise; loopback. Latency is from the generator handing the window's event to "
        "lws_write to the action request's arrival, in ms." % (
            machine["commit"], machine["cpu"], machine["cores"], machine["date"], GENERATOR_CPU, DAEMON_CPU),
        "",
        "| transport | target ev/s | achieved ev/s | p50 | p90 | p99 | p99.9 | max | actions | missed | dup | "
        "daemon CPU s | daemon cores | peak RSS MiB | bytes/call | generator cores | journal flushes/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in summary["runs"]:
        if run.get("error") and not run.get("latency_ms"):
            lines.append("| %s | %d | not run: %s |%s" % (label(run), run["target_rate"], run["error"],
                                                       " |" * 14))
            continue
        latency, actions = run.get("latency_ms") or {}, run.get("actions") or {}
        if not latency.get("count"):
            latency = {}  # no action arrived in time to measure: a dash, not a zero
        daemon, loadgen = run.get("daemon") or {}, run.get("loadgen") or {}
        journal = run.get("journal") or {}
        lines.append("| %s | %d | %.0f | %s | %s | %s | %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s |" % (
            label(run), run["target_rate"], run["events_per_second"], number(latency.get("p50"), 3),
            number(latency.get("p90"), 3), number(latency.get("p99"), 3), number(latency.get("p999"), 3),
            number(latency.get("max"), 3), actions.get("expected", 0), actions.get("missed", 0),
            actions.get("duplicated", 0), number(daemon.get("cpu_seconds")), number(daemon.get("cpu_cores")),
            number(daemon.get("peak_rss_mib"), 1), number(daemon.get("memory_per_call_bytes"), 0),
            number(loadgen.get("cpu_cores")), number(journal.get("flushes_per_second"), 1)))
    for sink in sinks:
        if sink.get("error"):
            lines += ["", "Generator headroom over %s: not measured: %s" % (sink["transport"], sink["error"])]
            continue
        lines += ["", "Generator headroom over %s (`--sink`: a trivial consumer instead of the daemon, no "
                  "actions): %.0f events/s achieved for %d asked, with %.2f generator cores." % (
                      sink["transport"], sink["events_per_second"], sink["target_rate"],
                      sink["loadgen"]["cpu_cores"])]
    new_calls = [run for run in summary["runs"] if (run.get("new_call_latency_ms") or {}).get("count")]
    if new_calls:
        lines += ["", "Voicenter (socket.io rows): a call the agent makes while the extension's window is open, from "
                  "writing its NEWCALL to its MuteUnmuteCalls request, in ms; the rows above time the windows' edges.",
                  "", "| target ev/s | p50 | p90 | p99 | p99.9 | max | calls |", "|---|---|---|---|---|---|---|"]
        for run in new_calls:
            latency = run["new_call_latency_ms"]
            lines.append("| %d | %s | %s | %s | %s | %s | %d |" % (
                run["target_rate"], number(latency["p50"], 3), number(latency["p90"], 3), number(latency["p99"], 3),
                number(latency["p999"], 3), number(latency["max"], 3), latency["count"]))
    if any(run.get("reflex") for run in summary["runs"]):
        lines += ["", "The floor rows replace the daemon with `--reflex`: one thread on the daemon's core that "
                  "long-polls (or reads the websocket itself), parses, and sends each edge's two operations at once, "
                  "with no engine, log or state file. What it measures, no change to the daemon can remove."]
    lines += ["", "![latency against rate](latency.png)", ""]
    with open(os.path.join(RESULTS, "latest.md"), "w") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines))


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def plot_latency(runs):
    """One panel per transport: the percentiles against the asked rate (x), since a saturated
    daemon achieves less than it is asked and the achieved rate would fold the curve back."""
    data = os.path.join(RESULTS, "latency.dat")
    transports = []
    blocks = []
    for transport in ["long-polling", "websocket", "socket.io", "floor, long-polling", "floor, websocket"]:
        rows = [run for run in runs if label(run) == transport and (run.get("latency_ms") or {}).get("count")]
        if not rows:
            continue
        transports.append(transport)
        block = ["# %s: asked p50 p90 p99 p99.9 max" % transport]
        for run in sorted(rows, key=lambda r: r["target_rate"]):
            latency = run["latency_ms"]
            block.append("%d %g %g %g %g %g" % (run["target_rate"], max(latency["p50"], 0.001), latency["p90"],
                                                latency["p99"], latency["p999"], latency["max"]))
        blocks.append("\n".join(block))
    if not blocks:
        return
    with open(data, "w") as handle:
        handle.write("\n\n\n".join(blocks) + "\n")
    panels = []
    for index, transport in enumerate(transports):
        lines = ["'%s' index %d using 1:%d with linespoints lw 2 title '%s'" % (data, index, column, label)
                 for column, label in [(2, "p50"), (3, "p90"), (4, "p99"), (5, "p99.9"), (6, "max")]]
        panels.append("set title '%s'\nplot %s, 1 with lines dashtype 2 lc rgb 'gray' title '1 ms'" % (
            transport, ", ".join(lines)))
    # Two rows once the floors have a panel per transport, so that the picture stays readable.
    rows = 1 if len(panels) <= 3 else 2
    columns = (len(panels) + rows - 1) // rows
    gnuplot("""
set terminal pngcairo size %d,%d
set output '%s'
set multiplot layout %d,%d title 'mutewarden: event to action request, 10,000 calls, one daemon core'
set xlabel 'events per second asked'
set ylabel 'latency (ms)'
set logscale xy
set xrange [700:70000]
set grid
set key left top
%s
unset multiplot
""" % (560 * columns, 520 * rows, os.path.join(RESULTS, "latency.png"), rows, columns, "\n".join(panels)))
    os.unlink(data)


def soak(options):
    os.makedirs(RESULTS, exist_ok=True)
    output = os.path.join(RESULTS, "soak.json")
    with tempfile.TemporaryDirectory(prefix="mutewarden-soak-") as logs:
        run_loadgen(["--rate", str(options.rate), "--calls", str(options.calls), "--warmup", str(options.warmup),
                     "--duration", str(options.minutes * 60 - options.warmup), "--grace", "5",
                     "--sample-every", "5"], output, logs)
    summarize_soak(output, options.warmup)


def summarize_soak(path, warmup=300):
    with open(path) as handle:
        report = json.load(handle)
    curve = report["daemon"]["rss_curve"]
    start = curve[0][0]
    after = [(t - start, mib) for t, mib in curve if t - start >= warmup]
    count = len(after)
    mean_t = sum(t for t, _ in after) / count
    mean_m = sum(m for _, m in after) / count
    slope = sum((t - mean_t) * (m - mean_m) for t, m in after) / max(1e-9, sum((t - mean_t) ** 2 for t, _ in after))
    # Growth is the mean of the last five minutes against the first five after warm-up. The
    # allocator gives freed pages back within a quarter of a second, so single samples move by a
    # megabyte or two with what is free at that instant; a leak moves the mean, noise does not.
    span = 300
    first = [m for t, m in after if t < after[0][0] + span]
    last = [m for t, m in after if t > after[-1][0] - span]
    growth = sum(last) / len(last) - sum(first) / len(first)
    verdict = "flat" if growth <= 1.0 else "GROWING"
    summary = ("Soak: %.0f events/s for %.0f min with %d calls: RSS after warm-up (%d s) between %.1f and %.1f MiB; "
               "mean %.1f MiB over the first five minutes after warm-up and %.1f over the last five (growth %.2f "
               "MiB, slope %.3f MiB/hour): %s. Actions expected %d, missed %d, duplicated %d; p99 %.3f ms." % (
                   report["events_per_second"], (curve[-1][0] - start) / 60, report["calls"], warmup,
                   min(m for _, m in after), max(m for _, m in after), sum(first) / len(first),
                   sum(last) / len(last), growth, slope * 3600, verdict,
                   report["actions"]["expected"], report["actions"]["missed"], report["actions"]["duplicated"],
                   report["latency_ms"]["p99"]))
    with open(os.path.join(RESULTS, "soak.md"), "w") as handle:
        handle.write("# Soak\n\n" + summary + "\n\n![RSS over the soak](soak-rss.png)\n")
    print(summary)
    data = os.path.join(RESULTS, "soak.dat")
    with open(data, "w") as handle:
        handle.write("\n".join("%g %g" % ((t - start) / 60, m) for t, m in curve) + "\n")
    gnuplot("""
set terminal pngcairo size 900,480
set output '%s'
set title 'mutewarden RSS during the soak (%.0f events/s, %d calls)'
set xlabel 'minutes since the daemon started'
set ylabel 'RSS (MiB)'
set yrange [0:*]
set grid
set arrow from %g, graph 0 to %g, graph 1 nohead dashtype 2
plot '%s' using 1:2 with lines title 'VmRSS'
""" % (os.path.join(RESULTS, "soak-rss.png"), report["events_per_second"], report["calls"], warmup / 60,
       warmup / 60, data))
    os.unlink(data)


def compare(options):
    """Two daemon builds at one rate, run alternately (A B A B ...) so that whatever else the
    machine does falls on both; the table gives each round and the median of each build."""
    os.makedirs(RESULTS, exist_ok=True)
    builds = [("baseline", options.baseline, shlex.split(options.baseline_args)),
              ("candidate", options.candidate, shlex.split(options.candidate_args))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mutewarden-compare-") as logs:
        for transport in options.transports.split(","):
            for round_ in range(options.rounds):
                for name, binary, extra in builds:
                    output = os.path.join(logs, "%s-%s-%d.json" % (name, transport, round_))
                    report = run_loadgen(
                        ["--transport", transport, "--rate", str(options.rate), "--calls", str(options.calls),
                         "--warmup", str(options.warmup), "--duration", str(options.duration), "--grace",
                         str(options.grace)] + extra, output, logs, daemon=binary)
                    rows.append((transport, name, round_, report))
    lines = ["# A/B at %d events/s, %d calls" % (options.rate, options.calls), "",
             "baseline: `%s %s`; candidate: `%s %s`; %s" % (options.baseline, options.baseline_args, options.candidate,
                                                          options.candidate_args, describe_machine()["date"]), "",
             "| transport | build | round | p50 | p99 | p99.9 | missed | dup | daemon cores | journal flushes/s | syncs/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for transport, name, round_, report in rows:
        latency, actions = report.get("latency_ms") or {}, report.get("actions") or {}
        lines.append("| %s | %s | %d | %s | %s | %s | %d | %d | %s | %s | %s |" % (
            transport, name, round_ + 1, number(latency.get("p50"), 3), number(latency.get("p99"), 3),
            number(latency.get("p999"), 3), actions.get("missed", 0), actions.get("duplicated", 0),
            number((report.get("daemon") or {}).get("cpu_cores")),
            number((report.get("journal") or {}).get("flushes_per_second"), 1),
            number((report.get("journal") or {}).get("syncs_per_second"), 1)))
    for transport in options.transports.split(","):
        for name, _, _ in builds:
            for quantile in ("p50", "p99"):
                values = sorted((r.get("latency_ms") or {}).get(quantile) or 0 for t, n, _, r in rows
                                if t == transport and n == name)
                if values:
                    lines.append("")
                    lines.append("%s, %s: median %s %.3f ms over %d rounds (%s)" % (
                        transport, name, quantile, values[len(values) // 2], len(values),
                        ", ".join("%.3f" % v for v in values)))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, options.output), "w") as handle:
        handle.write(text)
    print(text)


def replot(_options):
    with open(os.path.join(RESULTS, "sweep.json")) as handle:
        summary = json.load(handle)
    write_table(summary)
    plot_latency(summary["runs"])
    if os.path.exists(os.path.join(RESULTS, "soak.json")):
        summarize_soak(os.path.join(RESULTS, "soak.json"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("sweep")
    one.add_argument("--rates", default="1000,5000,20000,50000")
    one.add_argument("--transports", default="long-polling,websocket")
    one.add_argument("--calls", type=int, default=10000)
    one.add_argument("--warmup", type=float, default=5)
    one.add_argument("--duration", type=float, default=20)
    one.add_argument("--grace", type=float, default=3)
    one.add_argument("--sink-rate", type=int, default=150000)
    one.add_argument("--no-reflex", action="store_true", help="skip the floor runs of the built-in reflex consumer")
    one.add_argument("--platforms", default="genesys,voicenter", help="which platforms the generator plays")
    one.add_argument("--voicenter-rates", default="1000,5000")
    one.add_argument("--voicenter-sink-rate", type=int, default=50000)
    one.add_argument("--eio", default="3", choices=["3", "4", "auto"], help="the daemon's socketio_version on Voicenter")
    one.set_defaults(run=sweep)
    two = commands.add_parser("soak")
    two.add_argument("--rate", type=int, default=2000)
    two.add_argument("--calls", type=int, default=10000)
    two.add_argument("--minutes", type=float, default=30)
    two.add_argument("--warmup", type=float, default=300)
    two.set_defaults(run=soak)
    four = commands.add_parser("compare")
    four.add_argument("--baseline", required=True, help="the daemon binary to compare against")
    four.add_argument("--candidate", default=DAEMON)
    four.add_argument("--baseline-args", default="", help="extra mutewarden-loadgen arguments for the baseline's runs")
    four.add_argument("--candidate-args", default="", help="extra mutewarden-loadgen arguments for the candidate's runs")
    four.add_argument("--rate", type=int, default=5000)
    four.add_argument("--rounds", type=int, default=3)
    four.add_argument("--transports", default="long-polling,websocket")
    four.add_argument("--calls", type=int, default=10000)
    four.add_argument("--warmup", type=float, default=5)
    four.add_argument("--duration", type=float, default=20)
    four.add_argument("--grace", type=float, default=3)
    four.add_argument("--output", default="compare.md")
    four.set_defaults(run=compare)
    three = commands.add_parser("plot")
    three.set_defaults(run=replot)
    options = parser.parse_args()
    options.run(options)


if __name__ == "__main__":
    main()
