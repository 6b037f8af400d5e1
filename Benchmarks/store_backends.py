#!/usr/bin/env python3
"""Durable writes per second on each store: SQLite (one node) and
PostgreSQL (a cluster's store), side by side in one run.

Method: `northstar-bench append` and `northstar-bench commit` (release
build), each run once against a new SQLite file and once against a new
database on a PostgreSQL server started here (Debian's, on 127.0.0.1, in a
temporary folder, as the tests start it: fsync on, synchronous_commit on).
The benchmark calls the kernel in process (no HTTP): one writer, then 64
writers over 16 streams (appends) or 16 canvases (commits). Everything,
PostgreSQL included, shares the machine's cores, so compare the ratio, not
the absolute figures. Each line also says how long a write's transaction
took on PostgreSQL and how much of it was its COMMIT.

    swift build -c release --product northstar-bench
    python3 Benchmarks/store_backends.py [--rounds 3]
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from postgres_server import PostgresServer  # noqa: E402

BENCH = ROOT / ".build" / "release" / "northstar-bench"


def run(what, url=None):
    env = {**os.environ, **({"NORTHSTAR_BENCH_PG": url} if url else {})}
    result = subprocess.run([str(BENCH), what], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if "/s" in line]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    rounds = parser.parse_args().rounds
    assert BENCH.exists(), "build it first: swift build -c release --product northstar-bench"
    postgres = PostgresServer()
    try:
        for round_number in range(1, rounds + 1):
            for what in ("append", "commit"):
                for line in run(what):
                    print(f"round {round_number} sqlite   {line}")
                for line in run(what, postgres.create_database() + "?sslmode=disable"):
                    print(f"round {round_number} postgres {line}")
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
