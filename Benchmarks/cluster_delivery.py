#!/usr/bin/env python3
"""Live delivery on a cluster: publish→deliver latency when the publisher
and the subscribers are on the same node and on different nodes, beside a
single node on SQLite, in one run.

Method: release builds; a PostgreSQL server started here (as the tests
start it); two nodes on one database (`store.backend: postgres`) and one
node on SQLite, all on 127.0.0.1. `northstar-load` opens N SSE subscribers
on one node and publishes chat messages at a fixed rate (open loop) on
another or the same; each message carries its send time, so latency is
publish to delivery, commit and (on the cluster) notification and log read
included. Scenarios alternate within each round; medians of the rounds.
Everything shares the machine's cores, so compare across the columns of
one run, not with figures from another machine.

    swift build -c release
    python3 Benchmarks/cluster_delivery.py [--rounds 3] [--seconds 10] [--subscribers 100] [--rate 100]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".build" / "release"
os.environ.setdefault("NORTHSTAR_BIN", str(BIN))
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from conftest import Server, bearer  # noqa: E402
from postgres_server import PostgresServer  # noqa: E402


def node_config(folder, store, secret):
    document = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
    document["node"].pop("data_dir")
    document["store"].update(store)
    document["limits"].update({"max_connections": 15000, "max_pending_connections_per_ip": 100000, "max_connections_per_user": 100000,
                               "max_connections_per_tenant": 100000, "writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0,
                               "reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0,
                               "ws_messages_per_second_per_user": 0, "ws_messages_per_second_per_tenant": 0})  # one user publishes every event
    document["plugins"][0]["config"]["dev_secret_file"] = str(secret)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(document))
    return folder / "config.json"


def load(subscribe_node, publish_node, token, thread, args):
    output = subprocess.run([str(BIN / "northstar-load"), "--subscribe", f"http://127.0.0.1:{subscribe_node.port}/sse/chat/{thread}",
                             "--publish", f"http://127.0.0.1:{publish_node.port}/v1/threads/{thread}/messages",
                             "--header", f"Authorization: Bearer {token}", "--subscribers", str(args.subscribers),
                             "--rate", str(args.rate), "--seconds", str(args.seconds)],
                            capture_output=True, text=True, timeout=args.seconds * 10 + 60).stdout
    delivered = re.search(r"delivered: (\d+) of \d+ \(([\d.]+)%\), (\d+) events/s", output)
    latency = re.search(r"latency ms: p50 ([\d.]+|nan)\s+p90 \S+\s+p99 ([\d.]+|nan)", output)
    assert delivered and latency, output
    return float(delivered.group(3)), float(delivered.group(2)), float(latency.group(1)), float(latency.group(2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    assert (BIN / "northstar-load").exists(), "build first: swift build -c release"
    work = Path(tempfile.mkdtemp(prefix="northstar-cluster-bench-"))
    secret = work / "jwt-dev-secret"
    postgres = PostgresServer()
    nodes = []
    try:
        url = postgres.create_database() + "?sslmode=disable"
        single = Server(work / "single", config=node_config(work / "single", {}, secret)).start()
        a = Server(work / "a", config=node_config(work / "a", {"backend": "postgres", "postgres_url": url}, secret)).start()
        b = Server(work / "b", config=node_config(work / "b", {"backend": "postgres", "postgres_url": url}, secret)).start()
        nodes = [single, a, b]
        token = single.token(tenant="t_bench", user="bench")
        scenarios = {"sqlite, one node": (single, single), "postgres, same node": (a, a), "postgres, across nodes": (b, a)}
        results = {name: [] for name in scenarios}
        for round_number in range(1, args.rounds + 1):
            for name, (subscribe_node, publish_node) in scenarios.items():
                thread = publish_node.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
                figures = load(subscribe_node, publish_node, token, thread, args)
                results[name].append(figures)
                print(f"round {round_number} {name}: {figures[0]:.0f} deliveries/s ({figures[1]:.1f}%), "
                      f"p50 {figures[2]:.2f} ms, p99 {figures[3]:.2f} ms", flush=True)
        print(f"medians of {args.rounds} rounds of {args.seconds} s, {args.subscribers} SSE subscribers, {args.rate} publishes/s:")
        for name, rows in results.items():
            rate, percent, p50, p99 = (statistics.median(column) for column in zip(*rows))
            print(f"  {name}: {rate:.0f} deliveries/s ({percent:.1f}%), p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    finally:
        for node in nodes:
            node.kill()
        postgres.stop()


if __name__ == "__main__":
    main()
