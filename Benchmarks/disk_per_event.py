"""Bytes of SQLite database per chat event, against the event's own JSON.

Method: start `northstar serve` on a fresh data directory, create a thread,
post N messages of a given text size (each with a client_message_id, so the
idempotency record is counted too), stop the server with SIGTERM, fold the
WAL into the database file (`PRAGMA wal_checkpoint(TRUNCATE)`, before and
after), and divide the growth of the database file by N. The event's JSON size is the average length of
the events as the REST API returns them (the stored bytes).

    python3 Benchmarks/disk_per_event.py [--bin .build/release] [--count 5000]

Prints one line per message size: bytes on disk per event, event JSON bytes,
and their ratio (the goal is at most 2x).
"""
import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def request(url, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read())


def measure(binary, text_bytes, count):
    with tempfile.TemporaryDirectory(prefix="ns-disk-") as data_dir:
        log = open(os.path.join(data_dir, "server.log"), "w")
        # The embedded default, but for the write rate: one user posts every event as fast as it goes.
        settings = json.load(open(os.path.join(ROOT, "Deploy", "northstar.dev.json")))
        settings["node"]["data_dir"] = data_dir
        settings["limits"].update({"writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0,
                                   "reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0})
        config = os.path.join(data_dir, "config.json")
        json.dump(settings, open(config, "w"))
        server = subprocess.Popen([os.path.join(binary, "northstar"), "serve", "--listen", "127.0.0.1:0",
                                   "--config", config, "--log-level", "notice"], stdout=log, stderr=log)
        try:
            port = None
            for _ in range(300):
                match = re.search(r"port=(\d+)", open(log.name).read())
                if match:
                    port = int(match.group(1))
                    break
                time.sleep(0.05)
            assert port, open(log.name).read()
            base = f"http://127.0.0.1:{port}"
            token = subprocess.run([os.path.join(binary, "northstar"), "token", "--tenant", "t_bench", "--user", "u",
                                    "--config", config], capture_output=True, text=True, check=True).stdout.strip()
            thread = request(f"{base}/v1/threads", token, {})["thread_id"]
            database = os.path.join(data_dir, "northstar.sqlite")
            before = checkpointed_size(database)
            text = "x" * text_bytes
            for index in range(count):
                request(f"{base}/v1/threads/{thread}/messages", token, {"text": text, "client_message_id": f"m{index}"})
            page = request(f"{base}/v1/threads/{thread}/events?after=0", token)
            event_bytes = sum(len(json.dumps(e, separators=(",", ":"))) for e in page["events"]) / len(page["events"])
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        return (checkpointed_size(database) - before) / count, event_bytes


def checkpointed_size(database):
    """The database file's size once its WAL is folded in (the WAL itself is a
    bounded, reused journal, not data that grows with the log)."""
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return os.path.getsize(database)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    for size in (100, 1024):
        disk, event = measure(args.bin, size, args.count)
        print(f"text {size:>5} B: {disk:8.0f} B on disk per event, event JSON {event:6.0f} B, ratio {disk / event:4.2f}")


if __name__ == "__main__":
    sys.exit(main())
