"""Where a publish's time goes at light load, from the POST to the sockets.

Method: for each round, start `northstar serve` (release, the embedded
default: SQLite, every event fsynced before it is delivered) on a fresh data
directory, with `tracing` pointed at a collector this script runs on
loopback. `northstar-load` then holds N SSE subscribers on one thread and
publishes to it at a fixed rate. The script reads:

- from the load tool: publish-to-deliver latency, as in `fanout_vs_nchan.sh`;
- from `/metrics`, before and after: the means of the POST's duration, the
  group commit's transaction, its COMMIT (the WAL write and the fsync), and
  commit-to-socket (until each event loop has handed the event to its last
  subscriber's socket);
- from the spans of each POST: the handler until the commit is asked for,
  the commit as the handler waits for it (the hop to the writer, the
  transaction, the fsync, the hop back), and the rest of the handler;
- the disk alone: the same file system, written the way SQLite's WAL is
  (three 8 KiB pages, each after a 24-byte frame header, over a file that
  is already 8 MB, as the reused WAL is), one `fdatasync` per publish, at
  the same pace, with the server stopped; then the same back to back,
  since this machine's disk syncs faster when kept busy than at a light
  pace (the host's side of the disk, not the server, sets that: keeping
  the guest's cores busy with idle-priority spinners does not change it).

Tracing costs the server some CPU, so the latency here is a little above
that of a run without it; compare phases within one run, not with other
runs.

    swift build -c release
    python3 Benchmarks/publish_phases.py [--bin .build/release] [--subscribers 100]
        [--rate 100] [--seconds 10] [--rounds 3]
"""
import argparse
import http.server
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POST_ROUTE = "/v1/threads/{thread_id}/messages"


class SpanSink(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP JSON collector that keeps every span it is sent."""

    def __init__(self):
        self.spans = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SpanHandler)


class SpanHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        spans = [span for resource in body["resourceSpans"] for scope in resource["scopeSpans"] for span in scope["spans"]]
        with self.server.lock:
            self.server.spans += spans
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url, token=None, body=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def metric_sums(text):
    """{(name with labels, "sum" or "count"): value} of every histogram."""
    found = {}
    for name, kind, labels, value in re.findall(r"^([a-z_]+)_(sum|count)(\{.*\})? (\S+)$", text, flags=re.M):
        found[(name + labels, kind)] = float(value)
    return found


def mean_ms(before, after, name):
    count = after.get((name, "count"), 0) - before.get((name, "count"), 0)
    total = after.get((name, "sum"), 0) - before.get((name, "sum"), 0)
    return total / count * 1000 if count else float("nan")


def phases(spans):
    """Per POST: handler start to commit asked, the commit's wait, commit done to handler end (ms)."""
    by_trace = {}
    for span in spans:
        by_trace.setdefault(span["traceId"], []).append(span)
    before, commit, after = [], [], []
    for trace in by_trace.values():
        posts = [s for s in trace if s["name"] == f"POST {POST_ROUTE}"]
        commits = [s for s in trace if s["name"] == "store.commit"]
        if len(posts) != 1 or len(commits) != 1:
            continue
        (post,), (store,) = posts, commits
        start, end = int(post["startTimeUnixNano"]), int(post["endTimeUnixNano"])
        asked, done = int(store["startTimeUnixNano"]), int(store["endTimeUnixNano"])
        before.append((asked - start) / 1e6)
        commit.append((done - asked) / 1e6)
        after.append((end - done) / 1e6)
    return before, commit, after


def fsync_alone(directory, pace, count=300):
    """fdatasync times (ms) of SQLite's WAL pattern on `directory`'s file system."""
    frame = 24 + 8192
    size = 8 * 1024 * 1024
    path = os.path.join(directory, "wal-pattern")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, os.urandom(size))
        os.fsync(descriptor)
        header, page = os.urandom(24), os.urandom(8192)
        offset, times = 32, []
        for _ in range(count):
            for _ in range(3):
                os.pwrite(descriptor, header, offset)
                os.pwrite(descriptor, page, offset + 24)
                offset += frame
            if offset + 3 * frame > size:
                offset = 32
            began = time.perf_counter()
            os.fdatasync(descriptor)
            times.append((time.perf_counter() - began) * 1000)
            time.sleep(pace)
        return times
    finally:
        os.close(descriptor)
        os.unlink(path)


def quantiles(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2], statistics.mean(ordered), ordered[int(len(ordered) * 0.9)]


def one_round(args):
    sink = SpanSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    northstar = os.path.join(args.bin, "northstar")
    with tempfile.TemporaryDirectory(prefix="ns-phases-") as work:
        settings = json.load(open(os.path.join(ROOT, "Deploy", "northstar.dev.json")))
        settings["node"]["data_dir"] = os.path.join(work, "ns")
        settings["limits"].update({"writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0,
                                   "reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0})  # one user publishes
        settings["tracing"] = {"endpoint": f"http://127.0.0.1:{sink.server_address[1]}", "flush_ms": 200,
                               "max_queue": 1_000_000}
        config = os.path.join(work, "config.json")
        json.dump(settings, open(config, "w"))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(work, "server.log"), "w")
        server = subprocess.Popen([northstar, "serve", "--listen", f"127.0.0.1:{port}", "--config", config,
                                   "--log-level", "warning"], stdout=log, stderr=log)
        try:
            for _ in range(300):
                try:
                    get(f"{base}/healthz")
                    break
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit(f"northstar serve exited {server.returncode}:\n{open(log.name).read()}")
                    time.sleep(0.05)
            else:
                raise SystemExit(f"northstar serve did not answer /healthz in 15 s:\n{open(log.name).read()}")
            token = subprocess.run([northstar, "token", "--tenant", "t_bench", "--user", "bench", "--config", config],
                                   capture_output=True, text=True, check=True).stdout.strip()
            thread = json.loads(get(f"{base}/v1/threads", token, {}))["thread_id"]
            before = metric_sums(get(f"{base}/metrics"))
            load = subprocess.run([os.path.join(args.bin, "northstar-load"), "--subscribe", f"{base}/sse/chat/{thread}",
                                   "--publish", f"{base}/v1/threads/{thread}/messages",
                                   "--header", f"Authorization: Bearer {token}", "--subscribers", str(args.subscribers),
                                   "--seconds", str(args.seconds), "--rate", str(args.rate)],
                                  capture_output=True, text=True, check=True).stdout
            after = metric_sums(get(f"{base}/metrics"))
        finally:
            server.send_signal(signal.SIGTERM)  # the spans still waiting are sent at shutdown
            server.wait(timeout=60)
            sink.shutdown()
        latency = re.search(r"latency ms: p50 (\S+) .* p99 (\S+)  p99.9", load)
        if not latency:
            raise SystemExit(f"northstar-load printed no latency line:\n{load}")
        means = {label: mean_ms(before, after, name) for label, name in [
            ("POST", f'northstar_http_request_duration_seconds{{route="{POST_ROUTE}",method="POST",status="201"}}'),
            ("transaction", "northstar_commit_duration_seconds"),
            ("COMMIT", "northstar_commit_fsync_duration_seconds"),
            ("commit to last socket", 'northstar_delivery_latency_seconds{transport="sse"}')]}
        disk = fsync_alone(work, 1 / args.rate), fsync_alone(work, 0)
    return float(latency.group(1)), float(latency.group(2)), means, phases(sink.spans), disk


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=int, default=100, help="publishes per second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.subscribers} SSE subscribers x {args.rate} publishes/s, {args.seconds} s, {args.rounds} rounds")
    for round_number in range(1, args.rounds + 1):
        p50, p99, means, (before, commit, after), (disk, disk_back_to_back) = one_round(args)
        print(f"round {round_number}: publish to deliver p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        print("  /metrics means: " + ", ".join(f"{label} {value:.3f} ms" for label, value in means.items()))
        for label, values in [("handler until the commit is asked", before),
                              ("the commit, as the handler waits for it", commit),
                              ("handler after the commit", after),
                              ("fdatasync of the WAL pattern, disk alone", disk),
                              ("the same, back to back", disk_back_to_back)]:
            if values:
                median, mean, p90 = quantiles(values)
                print(f"  {label}: p50 {median:.3f} ms, mean {mean:.3f}, p90 {p90:.3f} (n={len(values)})")


if __name__ == "__main__":
    main()
