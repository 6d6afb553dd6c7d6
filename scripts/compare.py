#!/usr/bin/env python3
"""Runs the same load against several SSE servers in turn and writes one table.

Each server runs pinned to core 0 and the load test to core 1 (taskset), on loopback only.
Per server: a steady run (streams held, events/s delivered, lateness, the server's RSS per
stream and CPU per 1,000 events, read from /proc through --server-pid), then a run in which
the server is killed and started again (reconnect time, events lost across the restart), and,
with --capacity, a capacity search (the highest offered events/s at lateness p99 < 20 ms) on
the same URL, with more users at each step.
The table goes to OUT/compare.md and OUT/compare.html, each run's summary JSON beside them.

usage: scripts/compare.py [--smoke] [--users N] [--secs S] [--interval-ms MS] [--capacity]
                          [--setup] [--out DIR] [PEER ...]
peers: sse-digits, lab-sse, axum-sse, node-digits, python-sse (default: all five)

--setup builds or installs each peer first (peers/run --install: cargo, npm ci, a Python
venv); without it a peer whose binary or dependencies are missing is reported as such and
skipped. The load test and sse-digits are the release builds in target/release, or in
$CARGO_TARGET_DIR/release when it is set (cargo build --release -p sse-digits -p loadtest).
"""

import argparse
import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where cargo puts builds: $CARGO_TARGET_DIR (relative to where this runs, as cargo reads it)
# or each workspace's own target/.
CARGO_TARGET_DIR = os.environ.get("CARGO_TARGET_DIR")
if CARGO_TARGET_DIR:
    CARGO_TARGET_DIR = str(Path(CARGO_TARGET_DIR).resolve())
    # The set-up commands run from ROOT: they must read the same folder.
    os.environ["CARGO_TARGET_DIR"] = CARGO_TARGET_DIR
PORT = 18090
# A count no run reaches, so every stream lasts the whole run.
COUNT = 1_000_000_000


def release(workspace, binary):
    """The path of a release build of `binary` from the cargo workspace at `workspace`."""
    return str(Path(CARGO_TARGET_DIR or workspace / "target") / "release" / binary)


def peer_table(interval_ms):
    """How to set up, start and address each peer: (setup commands, argv, env, URL). The
    peers in peers/ are set up by peers/run, which a user runs them with, and started here
    directly, so that the pid started is the server's."""
    query = f"/digits?interval_ms={interval_ms}&count={COUNT}"
    peers = ROOT / "peers"

    def setup(name):
        return [[str(peers / "run"), "--install", name]]

    return {
        "sse-digits": {
            "setup": [["cargo", "build", "--release", "--bin", "sse-digits"]],
            "argv": [release(ROOT, "sse-digits"), "--bind", f"127.0.0.1:{PORT}",
                     "--workers", "1"],
            "url": query,
        },
        "lab-sse": {
            "setup": setup("lab-sse"),
            "argv": [release(peers / "lab-sse", "lab-sse"), f"127.0.0.1:{PORT}", "1"],
            "url": query,
        },
        "axum-sse": {
            "setup": setup("axum-sse"),
            "argv": [release(peers / "axum-sse", "axum-sse"), f"127.0.0.1:{PORT}", "1"],
            "url": query,
        },
        "node-digits": {
            "setup": setup("node-digits"),
            "argv": ["node", str(peers / "node-digits/server.js"), "127.0.0.1", str(PORT)],
            # The classic demo answers only the exact URL; its schedule comes from the env.
            "env": {"INTERVAL_MS": str(interval_ms), "COUNT": str(COUNT)},
            "url": "/digits",
            "needs": peers / "node-digits/node_modules",
        },
        "python-sse": {
            "setup": setup("python-sse"),
            "argv": [str(peers / "python-sse/.venv/bin/python"),
                     str(peers / "python-sse/server.py"), "127.0.0.1", str(PORT)],
            "url": query,
        },
    }


def missing(peer):
    """Why the peer cannot start, or None."""
    program = Path(peer["argv"][0])
    if program.is_absolute() and not program.exists():
        return f"{program} not found (run with --setup)"
    if not program.is_absolute() and shutil.which(str(program)) is None:
        return f"{program} is not installed"
    needs = peer.get("needs")
    if needs and not Path(needs).exists():
        return f"{needs} not found (run with --setup)"
    return None


def wait_for_port(deadline_secs=15):
    until = time.monotonic() + deadline_secs
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def start_server(peer):
    env = dict(os.environ, **peer.get("env", {}))
    process = subprocess.Popen(["taskset", "-c", "0", *peer["argv"]], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_port():
        process.kill()
        raise RuntimeError("the server did not listen within 15 s")
    return process


def stop_server(process, sig=signal.SIGTERM):
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def loadtest(args, url, extra, json_path, server_pid):
    # `--url URL` sends the URL as given; --interval-ms is the peer's schedule.
    argv = ["taskset", "-c", "1", str(args.loadtest), "--url", f"http://127.0.0.1:{PORT}{url}",
            "--interval-ms", str(args.interval_ms), "--progress-secs", "0",
            "--summary-json", str(json_path), "--server-pid", str(server_pid), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process, json_path, log_path):
    output, _ = process.communicate()
    log_path.write_text(output)
    if not json_path.exists():
        raise RuntimeError(f"the load test wrote no summary (exit {process.returncode}); "
                           f"see {log_path}")
    return json.loads(json_path.read_text())


def steady(args, name, peer, out):
    server = start_server(peer)
    try:
        run = loadtest(args, peer["url"], ["-u", str(args.users), "-r", str(args.rate),
                                           "-t", f"{args.secs}s"],
                       out / f"{name}-steady.json", server.pid)
        return finish(run, out / f"{name}-steady.json", out / f"{name}-steady.log")
    finally:
        stop_server(server)


def restart(args, name, peer, out):
    """Kills the server (SIGKILL: no drain, no retry hint) mid-run and starts it again."""
    server = start_server(peer)
    secs = max(args.secs, 12)
    run = loadtest(args, peer["url"], ["-u", str(args.users), "-r", str(args.rate),
                                       "-t", f"{secs}s"],
                   out / f"{name}-restart.json", server.pid)
    try:
        time.sleep(args.users / args.rate + secs / 3)
        stop_server(server, signal.SIGKILL)
        time.sleep(1)
        server = start_server(peer)
        return finish(run, out / f"{name}-restart.json", out / f"{name}-restart.log")
    finally:
        stop_server(server)
        if run.poll() is None:
            run.kill()


def capacity(args, name, peer, out):
    """The capacity search on the peer's URL, as the steady run asks for it: each step more
    users at the one interval (--interval-ms, which every peer was started with)."""
    server = start_server(peer)
    try:
        run = loadtest(args, peer["url"], ["--find-capacity", "--capacity-p99-ms", "20",
                                          "-r", str(args.rate), "-t", f"{args.secs}s"],
                       out / f"{name}-capacity.json", server.pid)
        report = finish(run, out / f"{name}-capacity.json", out / f"{name}-capacity.log")
        found = report.get("capacity_events_per_sec")
        if found is None:
            # Not a missing figure: every step failed, so the capacity is below the lowest.
            lowest = min(step["offered_events_per_sec"] for step in report["steps"])
            return f"< {lowest:,.0f} (no step passed)"
        return found
    finally:
        stop_server(server)


def problems(name, args, steady_run):
    """What a clean steady run must show: every stream open, events delivered, none lost,
    duplicated or malformed, no failed connection."""
    found = []
    counters = get(steady_run, "counters") or {}
    if get(steady_run, "peak_open_streams") != args.users:
        found.append(f"{get(steady_run, 'peak_open_streams')} of {args.users} streams open")
    if not counters.get("events"):
        found.append("no events")
    for key in ("lost", "duplicated", "out_of_order", "malformed", "failed_refused",
                "failed_timeout", "failed_status", "failed_content_type", "failed_other",
                "read_errors"):
        if counters.get(key):
            found.append(f"{key} {counters[key]}")
    return [f"{name}: {p}" for p in found]


def restart_problems(name, restart_run):
    """After a kill and restart every client must have come back, and nothing that can be
    checked lost."""
    if restart_run is None:
        return []
    counters = get(restart_run, "counters") or {}
    found = []
    if not counters.get("reconnects"):
        found.append("no reconnection after the restart")
    if counters.get("lost"):
        found.append(f"lost {counters['lost']} across the restart")
    return [f"{name}: {p}" for p in found]


def get(summary, *path):
    for key in path:
        if not isinstance(summary, dict) or summary.get(key) is None:
            return None
        summary = summary[key]
    return summary


def fmt(value, digits=1):
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def row(name, steady_run, restart_run, capacity_eps, note):
    late = get(steady_run, "latencies", "lateness_steady") or {}
    server = get(steady_run, "processes", "server") or {}
    per_event = server.get("cpu_us_per_event")
    counters = get(restart_run, "counters") or {}
    lost = counters.get("lost")
    # Without ids or numbered data nothing can be lost or kept track of.
    if lost is None and restart_run is not None:
        lost = "not checkable"
    sources = get(steady_run, "counters") or {}
    identity = ", ".join(f"{label} {sources[key]}" for key, label in (
        ("identity_id_sequence", "ids"), ("identity_numeric_data", "numeric data"),
        ("identity_none", "none")) if sources.get(key))
    return {
        "server": name,
        "streams held": fmt(get(steady_run, "peak_open_streams"), 0),
        "events/s": fmt(get(steady_run, "steady_events_per_sec"), 0),
        "lateness p50 ms": fmt(late.get("p50_ms")),
        "p99": fmt(late.get("p99_ms")),
        "p99.9": fmt(late.get("p999_ms")),
        "max": fmt(late.get("max_ms")),
        "RSS KiB/stream": fmt(server.get("rss_per_connection_kib")),
        "CPU s/1,000 events": fmt(per_event / 1000 if per_event is not None else None, 4),
        "reconnect p50 / p99 ms": (f"{fmt(get(restart_run, 'latencies', 'reconnect', 'p50_ms'), 0)}"
                                   f" / {fmt(get(restart_run, 'latencies', 'reconnect', 'p99_ms'), 0)}"
                                   if restart_run else "—"),
        "lost across restart": fmt(lost, 0),
        "resumed / restarted from 1": (f"{fmt(counters.get('resumed_ok'), 0)} / "
                                       f"{fmt(counters.get('restarted'), 0)}"
                                       if restart_run else "—"),
        "capacity events/s (p99 < 20 ms)": fmt(capacity_eps, 0),
        "identity (sources)": identity or "—",
        "note": note,
    }


def write_tables(rows, args, out):
    columns = list(rows[0].keys())
    lines = [f"Load: {args.users} streams × every {args.interval_ms} ms for {args.secs} s, "
             "server on core 0, load test on core 1 (`scripts/compare.py "
             + " ".join(sys.argv[1:]) + "`).", "",
             "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    cells = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    (out / "compare.html").write_text(
        "<!doctype html><meta charset=utf-8><title>SSE servers side by side</title>"
        "<style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style>"
        f"<h1>SSE servers side by side</h1><p>{html.escape(lines[0])}</p>"
        f"<table><tr>{cells}</tr>{body}</table>\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peers", nargs="*", help="servers to compare (default: all)")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=1000, help="users started per second")
    parser.add_argument("--secs", type=int, default=20)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--capacity", action="store_true", help="also search capacity (slow)")
    parser.add_argument("--no-restart", action="store_true", help="skip the kill-and-restart run")
    parser.add_argument("--smoke", action="store_true",
                        help="a small, quick version: 200 streams, 8 s")
    parser.add_argument("--setup", action="store_true", help="build or install each peer")
    parser.add_argument("--out", type=Path, default=ROOT / "target/compare")
    parser.add_argument("--loadtest", type=Path, default=Path(release(ROOT, "loadtest")))
    parser.add_argument("--strict", action="store_true",
                        help="exit non-zero if a peer is missing, a run fails, or a steady run "
                             "is not clean (a stream not open, an event lost or malformed)")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.secs, args.rate = 200, 8, 200
    table = peer_table(args.interval_ms)
    names = args.peers or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"unknown peer(s) {unknown}; known: {list(table)}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    for name in names:
        peer = table[name]
        why = None
        if args.setup:
            for command in peer["setup"]:
                if subprocess.run(command, cwd=ROOT).returncode != 0:
                    why = f"set-up failed: {' '.join(command)}"
                    break
        why = why or missing(peer)
        if why:
            failures.append(f"{name}: {why}")
            rows.append(row(name, None, None, None, why))
            continue
        print(f"== {name}", file=sys.stderr)
        try:
            steady_run = steady(args, name, peer, args.out)
            restart_run = None if args.no_restart else restart(args, name, peer, args.out)
            capacity_eps = capacity(args, name, peer, args.out) if args.capacity else None
            found = problems(name, args, steady_run) + restart_problems(name, restart_run)
            failures += found
            rows.append(row(name, steady_run, restart_run, capacity_eps, "; ".join(found)))
        except (RuntimeError, subprocess.SubprocessError, OSError) as error:
            failures.append(f"{name}: {error}")
            rows.append(row(name, None, None, None, f"failed: {error}"))
    write_tables(rows, args, args.out)
    for failure in failures:
        print(f"compare: {failure}", file=sys.stderr)
    return 1 if failures and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
