#!/usr/bin/env python3
"""What a request costs while many kept-alive connections sit idle.

Every connection keeps a clock for the phase it is in (the first request
head, a body, the idle time between requests); a kept-alive connection
waiting for its next request holds one. This measures whether those clocks
make each other request dearer: NIO keeps a loop's scheduled tasks in one
heap and finds a cancelled one by a linear search, and every request moves
its connection's clock twice (to the body's, then, once answered, to the
idle one).

Method: each round starts a node (release, the embedded default,
`max_connections` 12,000) and warms it up for 2 s. Then 4 client threads
each send `GET /healthz` on one kept-alive connection, one after another,
for `--seconds`: once with `--idle` other connections open and idle (each
has sent `GET /healthz`, read the answer and waits, inside
`idle_timeout_seconds`), and once with none. Odd rounds measure the idle
case first, even rounds the other. The figures: requests per second, the
node's CPU per request (user + system from `/proc/<pid>/stat`, around the
requests only), and the p50 / p99 of a request as the client sees it. The
client is Python, so requests per second is the client's figure as much as
the node's; the CPU per request is the node's alone.

    swift build -c release
    python3 Benchmarks/idle_timers.py [--idle 8000] [--seconds 8] [--rounds 3]
"""
import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reader_fairness import ROOT, Node  # noqa: E402

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


def ask(connection):
    """Sends one `GET /healthz` and reads its whole answer (the body's length is in the head)."""
    connection.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            raise RuntimeError("the node closed a connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET /healthz: {head[:80]!r}")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = connection.recv(4096)
        if not chunk:
            raise RuntimeError("the node closed a connection mid-answer")
        body += chunk


def open_idle(port, count):
    """`count` connections, each after one answered request: idle, each with its idle clock."""
    connections = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        ask(connection)
        connections.append(connection)
    return connections


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def load(node, seconds, threads=4):
    """(requests/s, CPU µs per request, p50 ms, p99 ms) of `threads` clients asking one after another."""
    latencies = [[] for _ in range(threads)]
    stop = time.monotonic() + seconds

    def client(index):
        connection = socket.create_connection(("127.0.0.1", node.port))
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while time.monotonic() < stop:
            began = time.perf_counter()
            ask(connection)
            latencies[index].append((time.perf_counter() - began) * 1000)
        connection.close()

    workers = [threading.Thread(target=client, args=(index,)) for index in range(threads)]
    ticks, began = cpu_ticks(node.process.pid), time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, ticks = time.monotonic() - began, cpu_ticks(node.process.pid) - ticks
    every = sorted(latency for own in latencies for latency in own)
    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / len(every)
    return len(every) / elapsed, cpu_us, every[len(every) // 2], every[int(len(every) * 0.99)]


def round_on(build, idle, seconds, idle_first):
    """(figures with `idle` connections open, figures with none) on a fresh node; `idle_first` says which runs
    first, since a node's first seconds cost more, and the rounds alternate it."""
    with tempfile.TemporaryDirectory(prefix="ns-idle-timers-") as folder:
        node = Node(build, folder, limits={"max_connections": 12_000})
        try:
            load(node, 2)  # warm up
            without = None if idle_first else load(node, seconds)
            held = open_idle(node.port, idle)
            with_idle = load(node, seconds)
            for connection in held:
                connection.close()
            if without is None:
                time.sleep(1)  # the node takes the closes in
                without = load(node, seconds)
        finally:
            node.stop()
    return with_idle, without


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=str(ROOT / ".build" / "release"))
    parser.add_argument("--idle", type=int, default=8000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20_000), hard))

    results = {"idle": [], "none": []}
    print(f"GET /healthz from 4 kept-alive connections, {args.seconds:g} s, with {args.idle} idle connections and "
          f"with none; {args.rounds} rounds")
    for round_number in range(1, args.rounds + 1):
        with_idle, without = round_on(args.build, args.idle, args.seconds, idle_first=round_number % 2 == 1)
        for state, figures in (("idle", with_idle), ("none", without)):
            results[state].append(figures)
            print(f"  round {round_number} {state:4}: {figures[0]:7.0f} requests/s, "
                  f"{figures[1]:6.1f} µs CPU per request, p50 {figures[2]:.2f} ms, p99 {figures[3]:.2f} ms")
    print("medians:")
    medians = {state: [statistics.median(figures[i] for figures in runs) for i in range(4)] for state, runs in results.items()}
    for state, (rate, cpu, p50, p99) in medians.items():
        print(f"  {state:4}: {rate:7.0f} requests/s, {cpu:6.1f} µs CPU per request, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    idle, none = medians["idle"], medians["none"]
    print(f"  {args.idle} idle / none: requests/s {idle[0] / none[0]:.2f}x, CPU per request {idle[1] / none[1]:.2f}x, "
          f"p50 {idle[2] / none[2]:.2f}x, p99 {idle[3] / none[3]:.2f}x")


if __name__ == "__main__":
    main()
