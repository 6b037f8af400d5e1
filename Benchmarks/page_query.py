#!/usr/bin/env python3
"""What bounding a page of events by bytes costs a read, on each store.

Method: the query a page used before (count only: `ORDER BY seq LIMIT n`)
and the one it uses now (`PageQuery.swift`: the page's last seq is found
from the events' stored sizes, then only those rows are read), side by
side, alternating, for a read of 1 event (what the cluster's log follower
usually reads, per notification) and of 256 (a subscriber's catch-up page).
The events are 20 streams of 5,000 chat-sized events (300 bytes of JSON).

- PostgreSQL: a PostgreSQL 15 server started here as the tests start it,
  and pgbench, one client, 4 s per measurement, simple protocol (the store
  sends each read as an unnamed statement, so it is parsed and planned
  every time, as here).
- SQLite: the same SQL through Python's sqlite3 (the system's libsqlite3,
  the one the server links), 3,000 reads per measurement; the figures
  include Python's cost per row, the same for both queries.

    python3 Benchmarks/page_query.py [--rounds 3]
"""
import argparse
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from postgres_server import PostgresServer  # noqa: E402

STREAMS, EVENTS, SIZE = 20, 5000, 300
READS = {"1 event": EVENTS - 1, "256 events": EVENTS - 256}


def queries(placeholder, table):
    """The two queries, with `placeholder` for the value of `after`."""
    count_only = f"SELECT seq, id, type, json FROM {table} WHERE stream = 'chat:s7' AND seq > {placeholder} ORDER BY seq LIMIT 500"
    budgeted = f"""SELECT seq, id, type, json FROM {table} WHERE stream = 'chat:s7' AND seq > {placeholder} AND seq <= (
        SELECT max(seq) FROM (
            SELECT seq, sum(size) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) - size AS before
            FROM (SELECT seq, {'octet_length' if '.' in table else 'length'}(json) AS size FROM {table}
                  WHERE stream = 'chat:s7' AND seq > {placeholder} ORDER BY seq LIMIT 500) AS page) AS sized
        WHERE before < 1048576)
    ORDER BY seq"""
    return {"count only": " ".join(count_only.split()), "byte budget": " ".join(budgeted.split())}


def postgres(rounds):
    server = PostgresServer()
    try:
        database = server.create_database().rsplit("/", 1)[1]
        server.psql(database, "CREATE SCHEMA northstar; CREATE TABLE northstar.events (stream text NOT NULL, seq bigint NOT NULL, "
                              "id text NOT NULL, type text NOT NULL, json bytea NOT NULL, PRIMARY KEY (stream, seq))")
        server.psql(database, f"INSERT INTO northstar.events SELECT 'chat:s' || s, q, 'ev_x', 'chat.message', "
                              f"convert_to(repeat('x', {SIZE}), 'UTF8') FROM generate_series(1, {STREAMS}) s, "
                              f"generate_series(1, {EVENTS}) q; ANALYZE")
        pgbench = os.path.join(server.bin, "pgbench")
        results = {}
        for _ in range(rounds):
            for read, after in READS.items():
                for name, sql in queries("CAST(:after AS bigint)", "northstar.events").items():
                    script = Path(server.folder) / "read.sql"
                    script.write_text(f"\\set after {after}\n{sql};\n")
                    os.chmod(script, 0o644)
                    output = server._run(pgbench, "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user, "-n",
                                         "-c", "1", "-T", "4", "-f", str(script), database)
                    latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1)) * 1000
                    results.setdefault((read, name), []).append(latency)
        return results
    finally:
        server.stop()


def sqlite(rounds):
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(Path(folder) / "bench.sqlite")
        db.execute("CREATE TABLE events (stream TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, "
                   "json BLOB NOT NULL, UNIQUE (stream, seq))")
        for stream in range(1, STREAMS + 1):
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                           [(f"chat:s{stream}", seq, "ev_x", "chat.message", b"x" * SIZE) for seq in range(1, EVENTS + 1)])
        db.commit()
        results = {}
        for _ in range(rounds):
            for read, after in READS.items():
                for name, sql in queries("?1", "events").items():
                    start = time.perf_counter()
                    for _ in range(3000):
                        db.execute(sql, (after,)).fetchall()
                    results.setdefault((read, name), []).append((time.perf_counter() - start) / 3000 * 1e6)
        return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    for store, results in (("SQLite", sqlite(rounds)), ("PostgreSQL", postgres(rounds))):
        for read in READS:
            before, now = (statistics.median(results[(read, name)]) for name in ("count only", "byte budget"))
            rounds_text = " / ".join(f"{a:.0f}-{b:.0f}" for a, b in zip(results[(read, "count only")], results[(read, "byte budget")]))
            print(f"{store:10s} read of {read:10s}: count only {before:6.0f} us, byte budget {now:6.0f} us "
                  f"({now / before:.2f}x; rounds, before-now: {rounds_text})")


if __name__ == "__main__":
    main()
