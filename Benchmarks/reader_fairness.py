#!/usr/bin/env python3
"""What one tenant's catch-ups cost another tenant's reads.

Method: a node on the embedded default (release build, SQLite) holds a
thread of tenant `t_storm` with 20 MB of events (2,000 chat messages of
10 KB) and a thread of tenant `t_quiet` with 20 small ones. A client of
t_quiet reads its thread's events (`GET /v1/threads/{id}/events`) over one
kept-alive connection, one request after another, first with nothing else
going on (quiet), then while 100 SSE subscribers of t_storm catch up on the
whole 20 MB thread from seq 0 (storm), reconnecting as each one finishes.
The storm's readers are one process reading every socket as fast as the
node sends (`selectors`), so the node, not the client, sets their pace.
Each phase makes `--requests` reads; the figure is t_quiet's p50 and p99
latency, and the storm's bytes read per second meanwhile.

With `--store postgres` the node's store is a PostgreSQL database (a
server started here as the tests start it, a new database per round, the
default pool of 10 connections) instead of SQLite.

With `--baseline DIR` a second build (a copy of `.build/release` made
before a change) runs the same rounds, alternating with the first in one
run, each on a fresh node; the script prints every round and the medians.

    swift build -c release
    python3 Benchmarks/reader_fairness.py [--rounds 3] [--store postgres] [--baseline /tmp/before]
"""
import argparse
import http.client
import json
import multiprocessing
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from postgres_server import PostgresServer  # noqa: E402

STORM_EVENTS, STORM_EVENT_BYTES, QUIET_EVENTS, SUBSCRIBERS = 2000, 10_000, 20, 100


class Node:
    """A `northstar serve` of one build on the dev config, in a data folder of its own."""

    def __init__(self, build, folder, postgres_url=None, limits=None):
        self.build, self.folder = Path(build), Path(folder)
        settings = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
        settings["node"]["data_dir"] = str(self.folder / "ns")
        if postgres_url:
            settings["store"] = {"backend": "postgres", "postgres_url": postgres_url}
        settings["limits"].update({"max_connections_per_user": 100_000, "max_pending_connections_per_ip": 100_000})
        # The storm's log is written, and t_quiet reads, as fast as they go: no request rates (a key that a build
        # from before it does not know is left out).
        binary = (self.build / "northstar").read_bytes()
        for kind in ("writes", "reads"):
            if f"{kind}_per_second_per_user".encode() in binary:
                settings["limits"].update({f"{kind}_per_second_per_user": 0, f"{kind}_per_second_per_tenant": 0})
        # A limit this build does not know (a baseline from before it) is left out, not refused at start.
        settings["limits"].update({key: value for key, value in (limits or {}).items() if key.encode() in binary})
        self.config = self.folder / "config.json"
        self.config.write_text(json.dumps(settings))
        self.log = open(self.folder / "server.log", "w")
        self.process = subprocess.Popen([str(self.build / "northstar"), "serve", "--listen", "127.0.0.1:0", "--config",
                                         str(self.config), "--log-level", "info"], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while not (match := re.search(r'port=(\d+) .*listening', (self.folder / "server.log").read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.folder / "server.log").read_text())
            time.sleep(0.05)
        self.port = int(match.group(1))

    def token(self, tenant):
        return subprocess.run([str(self.build / "northstar"), "token", "--tenant", tenant, "--user", "bench",
                               "--config", str(self.config)], capture_output=True, text=True, check=True).stdout.strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


def request(connection, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    answer = connection.getresponse()
    data = answer.read()
    if answer.status >= 300:
        raise RuntimeError(f"{method} {path}: {answer.status} {data[:200]!r}")
    return json.loads(data) if data else None


def thread_with(port, token, events, text_bytes):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    thread = request(connection, "POST", "/v1/threads", token, {})["thread_id"]
    for n in range(events):
        request(connection, "POST", f"/v1/threads/{thread}/messages", token, {"text": f"{n} " + "x" * text_bytes})
    connection.close()
    return thread


def storm(port, token, thread, stop, counted):
    """100 SSE subscribers catching up from seq 0, each reconnecting once done, until `stop` is set."""
    selector = selectors.DefaultSelector()
    target = (f"GET /sse/chat/{thread}?access_token={token}&last_event_id=0 HTTP/1.1\r\n"
              f"Host: 127.0.0.1\r\n\r\n").encode()
    last_seq = f"id: {STORM_EVENTS}\n".encode()

    def connect():
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(target)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, bytearray())

    for _ in range(SUBSCRIBERS):
        connect()
    while not stop.is_set():
        for key, _ in selector.select(timeout=0.5):
            try:
                chunk = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            with counted.get_lock():
                counted.value += len(chunk)
            # The last event's `id:` line opens its frame, so it is looked for in what
            # arrived, with the end of the previous read (the line may be split across two).
            seen = bytes(key.data) + chunk
            key.data[:] = seen[-len(last_seq):]
            if not chunk or last_seq in seen:
                selector.unregister(key.fileobj)
                key.fileobj.close()
                connect()


def reads(port, token, thread, count):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        request(connection, "GET", f"/v1/threads/{thread}/events?after=0", token)
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]


def round_on(build, requests, postgres):
    folder = tempfile.mkdtemp(prefix="reader-fairness-")
    node = Node(build, folder, postgres.create_database() if postgres else None)
    try:
        storm_token, quiet_token = node.token("t_storm"), node.token("t_quiet")
        storm_thread = thread_with(node.port, storm_token, STORM_EVENTS, STORM_EVENT_BYTES)
        quiet_thread = thread_with(node.port, quiet_token, QUIET_EVENTS, 100)
        quiet = reads(node.port, quiet_token, quiet_thread, requests)
        stop, counted = multiprocessing.Event(), multiprocessing.Value("q", 0)
        readers = multiprocessing.Process(target=storm, args=(node.port, storm_token, storm_thread, stop, counted))
        readers.start()
        time.sleep(1)  # every subscriber connected and catching up
        started, before = time.monotonic(), counted.value
        stormy = reads(node.port, quiet_token, quiet_thread, requests)
        rate = (counted.value - before) / (time.monotonic() - started) / 1e6
        stop.set()
        readers.join(timeout=10)
        return quiet, stormy, rate
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--build", default=str(ROOT / ".build" / "release"))
    parser.add_argument("--baseline", help="a second build folder, run alternately with the first")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    options = parser.parse_args()
    postgres = PostgresServer() if options.store == "postgres" else None
    try:
        run(options, postgres)
    finally:
        if postgres:
            postgres.stop()


def run(options, postgres):
    builds = {"new": options.build, **({"baseline": options.baseline} if options.baseline else {})}
    for name, build in builds.items():
        binary = Path(build) / "northstar"
        print(f"build {name}: {binary}, sha256 {subprocess.run(['sha256sum', binary], capture_output=True, text=True).stdout[:12]}")
    results = {name: [] for name in builds}
    for number in range(1, options.rounds + 1):
        for name, build in builds.items():
            quiet, stormy, rate = round_on(build, options.requests, postgres)
            results[name].append((quiet, stormy, rate))
            print(f"  round {number} {name}: t_quiet reads p50 / p99 {quiet[0]:.2f} / {quiet[1]:.2f} ms quiet, "
                  f"{stormy[0]:.2f} / {stormy[1]:.2f} ms in the storm; storm read {rate:.0f} MB/s", flush=True)
    print(f"medians of {options.rounds} rounds, {options.requests} reads per phase, store {options.store}:")
    for name, rounds in results.items():
        median = lambda pick: statistics.median(pick(r) for r in rounds)  # noqa: E731
        print(f"  {name}: quiet p50 {median(lambda r: r[0][0]):.2f} ms, p99 {median(lambda r: r[0][1]):.2f} ms; "
              f"storm p50 {median(lambda r: r[1][0]):.2f} ms, p99 {median(lambda r: r[1][1]):.2f} ms; "
              f"storm read {median(lambda r: r[2]):.0f} MB/s")


if __name__ == "__main__":
    sys.exit(main())
