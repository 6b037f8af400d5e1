#!/usr/bin/env python3
"""Whether new clients still get in while one client holds every connection
the node allows (`limits.max_connections`), two builds side by side.

Method: each round starts a node of each build (release, the embedded
default, `max_connections` set to `--max-connections`), one after the
other, and runs the same flood against each. The flood (one process,
asyncio) keeps `--max-connections` connections open and busy in one of
three ways, and opens another at once whenever the node closes one:
- `idle`: no token. Each connection sends `GET /healthz`, reads the answer,
  waits 5 s and asks again (well inside `idle_timeout_seconds`).
- `held`: no valid token. Each connection sends requests with a forged
  credential one after another; past `auth_failures_per_second` (100, the
  default) each 401 is held a second before it is answered.
- `slow-bodies`: one user's valid token. Each connection sends a POST's head
  and the first bytes of a 100-byte body, then one more byte every 20 s
  (inside `body_timeout_seconds`); if answered (429) or closed, it starts
  another.
- `none`: no flood, for the newcomers' figures on a quiet node.
Once the flood has had 3 s to take the slots, `--newcomers` clients of
another tenant, one after another, each open a new connection and POST one
message; the figures are how many were answered 201, how many were refused
(503 `too_many_connections`, or no answer), and the p50 / p99 of the ones
answered. The builds alternate round by round in one run.

    swift build -c release
    cp -r .build/release /tmp/before   # ...at the commit to compare against
    python3 Benchmarks/connection_hold.py --baseline-build /tmp/before [--flood idle|held|slow-bodies|none] [--rounds 3]
"""
import argparse
import asyncio
import http.client
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reader_fairness import ROOT, Node, request  # noqa: E402
from write_flood import forged  # noqa: E402


async def hold_one(port, kind, token, thread, stop):
    """One flood connection, reopened whenever the node closes it, until `stop` is set."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        try:
            if kind == "slow-bodies":
                writer.write((f"POST /v1/threads/{thread}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                              "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te").encode())
                while not stop.is_set():
                    await writer.drain()
                    try:
                        await asyncio.wait_for(reader.read(65536), timeout=20)
                        break  # answered (refused) or closed: start another
                    except asyncio.TimeoutError:
                        writer.write(b" ")  # one more byte of the body, inside the body timeout
                continue
            request_bytes = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" if kind == "idle" else
                             f"GET /v1/threads/{thread} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            while not stop.is_set():
                writer.write(request_bytes)
                await writer.drain()
                if not await reader.read(65536):
                    break
                if kind == "idle":
                    await asyncio.sleep(5)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def flood_process(port, kind, token, thread, connections, stop):
    """The flood's connections, in one event loop, until `stop` (a process-shared event) is set;
    then they are cancelled, each closing its socket."""
    async def run():
        tasks = [asyncio.create_task(hold_one(port, kind, token, thread, stop)) for _ in range(connections)]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


def newcomers(port, token, thread, count):
    """Each a new connection posting one message: (answered, refused, p50 ms, p99 ms)."""
    answered, refused, latencies = 0, 0, []
    for n in range(count):
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            request(connection, "POST", f"/v1/threads/{thread}/messages", token, {"text": f"newcomer {n}"})
            latencies.append((time.perf_counter() - started) * 1000)
            answered += 1
        except (RuntimeError, OSError, http.client.HTTPException):
            refused += 1
        finally:
            connection.close()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else float("nan")  # noqa: E731
    return answered, refused, pick(0.5), pick(0.99)


def round_on(build, kind, max_connections, count):
    folder = tempfile.mkdtemp(prefix="connection-hold-")
    node = Node(build, folder, limits={"max_connections": max_connections})
    try:
        flood_token, quiet_token = node.token("t_flood"), node.token("t_quiet")
        connection = http.client.HTTPConnection("127.0.0.1", node.port)
        flood_thread = request(connection, "POST", "/v1/threads", flood_token, {})["thread_id"]
        quiet_thread = request(connection, "POST", "/v1/threads", quiet_token, {})["thread_id"]
        connection.close()
        token = forged(flood_token) if kind == "held" else flood_token
        stop = multiprocessing.Event()
        flood = multiprocessing.Process(target=flood_process, args=(node.port, kind, token, flood_thread, max_connections, stop))
        if kind != "none":
            flood.start()
            time.sleep(3)  # the flood takes every slot
        result = newcomers(node.port, quiet_token, quiet_thread, count)
        stop.set()
        if kind != "none":
            flood.join(timeout=30)
        return result
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--newcomers", type=int, default=200)
    parser.add_argument("--max-connections", type=int, default=1000)
    parser.add_argument("--flood", choices=["idle", "held", "slow-bodies", "none"], default="idle")
    parser.add_argument("--build", default=str(ROOT / ".build" / "release"))
    parser.add_argument("--baseline-build", required=True, help="a copy of .build/release made before a change")
    options = parser.parse_args()
    print(f"a flood of {options.flood} connections against max_connections {options.max_connections}, "
          f"{options.newcomers} newcomers per round, {os.cpu_count()} cores")
    print(f"this build: {options.build}\nbaseline: {options.baseline_build}")
    builds = {"this build": options.build, "baseline  ": options.baseline_build}
    results = {name: [] for name in builds}
    for number in range(1, options.rounds + 1):
        for name, build in builds.items():
            answered, refused, p50, p99 = round_on(build, options.flood, options.max_connections, options.newcomers)
            results[name].append((answered, refused, p50, p99))
            print(f"round {number} {name}: newcomers answered {answered}, refused {refused}; "
                  f"p50 {p50:.2f} p99 {p99:.2f} ms", flush=True)
    print("medians:")
    for name, rows in results.items():
        median = lambda index: statistics.median(row[index] for row in rows)  # noqa: E731
        print(f"  {name}: newcomers answered {median(0):.0f}, refused {median(1):.0f}; p50 {median(2):.2f} p99 {median(3):.2f} ms")


if __name__ == "__main__":
    main()
