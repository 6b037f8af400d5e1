#!/usr/bin/env python3
"""What one user's flood of writes (or, with `--flood reads`, of REST
reads) costs another tenant, with the node's rates on (the defaults) and off.

Method: a node on the embedded default (release build, SQLite). A client of
tenant `t_quiet` posts `--requests` small messages to its thread, one after
another on one kept-alive connection, first with nothing else going on
(alone), then while one user of tenant `t_flood` posts 1 KB messages from
`--posters` connections at once (4 processes), each sending its next post as
soon as the last is answered, whatever the answer: a client that ignores
429 and `Retry-After`, as a hostile one would. The figures: t_quiet's p50
and p99 per POST in each phase, the flood's posts accepted and refused per
second, and how much the database grew while it ran. Each round starts a
fresh node with the rates on (`writes_per_second_per_user` 100 and
`writes_per_second_per_tenant` 2,000, the defaults), then one with them
off (0), so the two alternate in one run; the script prints every round and
the medians.

With `--flood reads` the flood's connections read a page of 100 events of
1 KB (`GET /v1/threads/{id}/events?after=0&limit=100`) instead, and the
rates on and off are the reads' (`reads_per_second_per_user` 200 and
`reads_per_second_per_tenant` 5,000).

With `--flood handshakes` the flood's user first opens 4 SSE streams, every
one the node then allows it (`max_connections_per_user` 4, in both modes),
and its connections open one more stream after another (each refused 429
`too_many_user_connections`; one that opens is left at once). The hold of
those refusals has no switch: compare two builds (`--baseline-build`).

With `--flood pings` each flood connection is a WebSocket that sends 100
pings and reads their pongs, again and again; with `--flood subscribes` it
subscribes to a thread of 100 events of 1 KB from the start, reads the whole
catch-up and unsubscribes, again and again; with `--flood streams` it opens
an SSE stream of that thread from the start, reads the catch-up and closes
it, again and again (a new connection each time).

With `--baseline-build DIR`, a second build (a copy of `.build/release` made
before a change) takes the place of "off": both builds run with the limits
on, alternating round by round.

With `--flood forged` the flood's posts carry a token whose signature is
changed (well formed, signed by no one), so each is answered 401 (an early
401 closes its connection, and the client opens a new one); "on" and "off"
are the hold of failed authentications (`auth_failures_per_second` 100, the
default, and 0).

    swift build -c release
    python3 Benchmarks/write_flood.py [--rounds 3] [--requests 500] [--posters 64] [--flood reads|forged|handshakes|pings|subscribes|streams] [--baseline-build DIR]
"""
import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reader_fairness import ROOT, Node, request  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

RATES = {"writes": {"on": {"writes_per_second_per_user": 100, "writes_per_second_per_tenant": 2000},
                    "off": {"writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0}},
         "reads": {"on": {"reads_per_second_per_user": 200, "reads_per_second_per_tenant": 5000},
                   "off": {"reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0}},
         "forged": {"on": {"auth_failures_per_second": 100}, "off": {"auth_failures_per_second": 0}},
         "handshakes": {"on": {"max_connections_per_user": 4}, "off": {"max_connections_per_user": 4}},
         "pings": {"on": {"ws_messages_per_second_per_user": 200, "ws_messages_per_second_per_tenant": 5000},
                   "off": {"ws_messages_per_second_per_user": 0, "ws_messages_per_second_per_tenant": 0}},
         "streams": {"on": {"reads_per_second_per_user": 200, "reads_per_second_per_tenant": 5000},
                     "off": {"reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0}},
         "subscribes": {"on": {"reads_per_second_per_user": 200, "reads_per_second_per_tenant": 5000,
                               "ws_messages_per_second_per_user": 200, "ws_messages_per_second_per_tenant": 5000},
                        "off": {"reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0,
                                "ws_messages_per_second_per_user": 0, "ws_messages_per_second_per_tenant": 0}}}
# What the flood's expected answers are called in the figures (a 429 is counted apart, as refused).
ANSWERED = {"writes": "accepted", "reads": "accepted", "forged": "answered 401", "handshakes": "opened", "subscribes": "caught up", "pings": "pongs", "streams": "caught up"}


def forged(token):
    """The token with its signature's first character changed: well formed, signed by nobody."""
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{'B' if signature[0] != 'B' else 'C'}{signature[1:]}"


PAGE_EVENTS = 100  # what a read flood's thread holds, and each of its reads returns
PROCESSES = 4


def poster_process(port, token, thread, connections, stop, accepted, refused, flood):
    """`connections` posters (or readers) of one user, in one process, until `stop` is set."""
    body = json.dumps({"text": "f" * 1000})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    method, path, body, ok = {"writes": ("POST", f"/v1/threads/{thread}/messages", body, 201),
                              "reads": ("GET", f"/v1/threads/{thread}/events?after=0&limit={PAGE_EVENTS}", None, 200),
                              "forged": ("POST", f"/v1/threads/{thread}/messages", body, 401),
                              "handshakes": ("GET", f"/sse/chat/{thread}", None, 200),
                              "subscribes": (None, None, None, None), "pings": (None, None, None, None),
                              "streams": (None, None, None, None)}[flood]
    if flood == "forged":
        headers["Authorization"] = f"Bearer {forged(token)}"

    def add(counts):
        """Adds one poster's [answered as asked, refused 429] to the process's totals."""
        with accepted.get_lock():
            accepted.value += counts[0]
        with refused.get_lock():
            refused.value += counts[1]

    def subscribe_forever():
        """Subscribes to the thread from its start, reads the whole catch-up, unsubscribes; again and again."""
        counts = [0, 0]
        with connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"}) as socket:
            while not stop.is_set():
                socket.send(json.dumps({"type": "subscribe", "id": 1, "stream": f"chat:{thread}", "after": 0}))
                events = 0
                while events < PAGE_EVENTS:
                    message = json.loads(socket.recv(timeout=30))
                    if message["type"] == "error":
                        counts[1] += 1
                        break
                    events += message["type"] == "event"
                else:
                    counts[0] += 1
                socket.send(json.dumps({"type": "unsubscribe", "id": 2, "stream": f"chat:{thread}"}))
                while json.loads(socket.recv(timeout=30))["type"] not in ("unsubscribed", "error"):
                    pass
        add(counts)

    def stream_forever():
        """Opens an SSE stream of the thread from its start, reads the whole catch-up, closes it; again and again."""
        counts = [0, 0]
        while not stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", f"/sse/chat/{thread}?last_event_id=0", headers={"Authorization": f"Bearer {token}"})
            answer = connection.getresponse()
            if answer.status != 200:
                answer.read()
                counts[1] += 1
            else:
                events = 0
                while events < PAGE_EVENTS:
                    events += answer.fp.readline().startswith(b"data:")
                counts[0] += 1
            connection.close()
        add(counts)

    def ping_forever():
        """Pings in batches of 100, reading the pongs of each batch before the next."""
        counts = [0, 0]
        with connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"}) as socket:
            while not stop.is_set():
                for n in range(100):
                    socket.send(json.dumps({"type": "ping", "id": n}))
                for n in range(100):
                    socket.recv(timeout=30)
                counts[0] += 100
        add(counts)

    def post_forever():
        connection = http.client.HTTPConnection("127.0.0.1", port)
        counts = [0, 0]
        while not stop.is_set():
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            if flood == "handshakes" and answer.status == 200:
                connection.close()  # a stream opened (one of the user's places was free): leave it at once
            else:
                answer.read()
            counts[answer.status == 429] += 1
            if answer.status not in (ok, 429):
                raise RuntimeError(f"flood {method} answered {answer.status}")
        add(counts)

    target = {"subscribes": subscribe_forever, "pings": ping_forever, "streams": stream_forever}.get(flood, post_forever)
    posters = [threading.Thread(target=target) for _ in range(connections)]
    for poster in posters:
        poster.start()
    for poster in posters:
        poster.join()


def posts(port, token, thread, count):
    """t_quiet's sequential posts: p50 and p99 in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    latencies = []
    for n in range(count):
        started = time.perf_counter()
        request(connection, "POST", f"/v1/threads/{thread}/messages", token, {"text": f"quiet {n}"})
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.011)  # under t_quiet's own rate (100 a second), so it is never refused itself
    connection.close()
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]


def open_stream(port, token, thread):
    """An SSE stream held open (its connection, once the answer's head is read)."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", f"/sse/chat/{thread}", headers={"Authorization": f"Bearer {token}"})
    if connection.getresponse().status != 200:
        raise RuntimeError("the flood's user could not open its streams")
    return connection


def database_bytes(folder):
    data = Path(folder) / "ns"
    return sum(path.stat().st_size for path in data.glob("northstar.sqlite*"))


def round_on(build, flood_kind, limits, requests, posters):
    folder = tempfile.mkdtemp(prefix="write-flood-")
    node = Node(build, folder, limits=limits)
    try:
        flood_token, quiet_token = node.token("t_flood"), node.token("t_quiet")
        connection = http.client.HTTPConnection("127.0.0.1", node.port)
        flood_thread = request(connection, "POST", "/v1/threads", flood_token, {})["thread_id"]
        quiet_thread = request(connection, "POST", "/v1/threads", quiet_token, {})["thread_id"]
        if flood_kind in ("reads", "subscribes", "streams"):
            for n in range(PAGE_EVENTS):
                request(connection, "POST", f"/v1/threads/{flood_thread}/messages", flood_token, {"text": f"{n} " + "r" * 1000})
        connection.close()
        # A handshake flood comes from a user who holds every stream the node allows one user.
        held = [open_stream(node.port, flood_token, flood_thread) for _ in range(4 if flood_kind == "handshakes" else 0)]
        alone = posts(node.port, quiet_token, quiet_thread, requests)
        stop = multiprocessing.Event()
        accepted, refused = multiprocessing.Value("q", 0), multiprocessing.Value("q", 0)
        flood = [multiprocessing.Process(target=poster_process, args=(node.port, flood_token, flood_thread, posters // PROCESSES,
                                                                      stop, accepted, refused, flood_kind)) for _ in range(PROCESSES)]
        before = database_bytes(folder)
        started = time.monotonic()
        for process in flood:
            process.start()
        time.sleep(1)  # every poster going
        flooded = posts(node.port, quiet_token, quiet_thread, requests)
        stop.set()
        for process in flood:
            process.join(timeout=30)
        for stream in held:
            stream.close()
        seconds = time.monotonic() - started
        if accepted.value + refused.value == 0:
            raise RuntimeError("the flood made no request (see the posters' errors above)")
        grown = (database_bytes(folder) - before) / 1e6
        return alone, flooded, accepted.value / seconds, refused.value / seconds, grown
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--posters", type=int, default=64)
    parser.add_argument("--build", default=str(ROOT / ".build" / "release"))
    parser.add_argument("--flood", choices=["writes", "reads", "forged", "handshakes", "subscribes", "pings", "streams"], default="writes")
    parser.add_argument("--baseline-build", help="another build (a copy of .build/release made before a change): it "
                        "takes the place of the limits off, both builds running with the limits on")
    options = parser.parse_args()
    if options.posters % PROCESSES:
        parser.error(f"--posters must be a multiple of {PROCESSES}")
    print(f"build: {options.build}, a flood of {options.flood} from {options.posters} connections, "
          f"{options.requests} quiet posts per phase, "
          f"{os.cpu_count()} cores")
    limits = RATES[options.flood]
    runs = ({"this build": (options.build, limits["on"]), "baseline  ": (options.baseline_build, limits["on"])}
            if options.baseline_build else {"rates on ": (options.build, limits["on"]), "rates off": (options.build, limits["off"])})
    if options.baseline_build:
        print(f"baseline build: {options.baseline_build}")
    results = {mode: [] for mode in runs}
    for number in range(1, options.rounds + 1):
        for mode, (build, mode_limits) in runs.items():
            alone, flooded, accepted, refused, grown = round_on(build, options.flood, mode_limits, options.requests,
                                                                options.posters)
            results[mode].append((alone, flooded, accepted, refused, grown))
            print(f"round {number} {mode}: t_quiet alone p50 {alone[0]:.2f} p99 {alone[1]:.2f} ms; "
                  f"in the flood p50 {flooded[0]:.2f} p99 {flooded[1]:.2f} ms; flood {accepted:,.0f} {ANSWERED[options.flood]}/s, "
                  f"{refused:,.0f} refused/s; database +{grown:.1f} MB", flush=True)
    print("medians:")
    for mode, rows in results.items():
        median = lambda pick: statistics.median(pick(row) for row in rows)  # noqa: E731
        print(f"  {mode}: t_quiet alone p50 {median(lambda r: r[0][0]):.2f} p99 {median(lambda r: r[0][1]):.2f} ms; "
              f"in the flood p50 {median(lambda r: r[1][0]):.2f} p99 {median(lambda r: r[1][1]):.2f} ms; "
              f"flood {median(lambda r: r[2]):,.0f} {ANSWERED[options.flood]}/s, {median(lambda r: r[3]):,.0f} refused/s; "
              f"database +{median(lambda r: r[4]):.1f} MB")


if __name__ == "__main__":
    main()
