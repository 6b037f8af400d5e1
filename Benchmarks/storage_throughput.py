#!/usr/bin/env python3
"""Upload and download throughput of artifacts on each storage plugin.

Method: one release-build server per backend (fs on the local disk, s3
against moto's server, gcs against the GCS emulator, both on 127.0.0.1),
the same object size and count for each, uploaded and downloaded with curl
(a streamed POST, a plain GET), one transfer at a time. Reports the median
MB/s of the runs. The s3 and gcs figures include the emulators' own cost
(Python servers on the same two cores): they compare Northstar's paths,
not the cloud services.

    swift build -c release
    python3 Benchmarks/storage_throughput.py [--size-mb 64] [--runs 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
os.environ.setdefault("NORTHSTAR_BIN", str(ROOT / ".build" / "release"))

from conftest import Server, bearer  # noqa: E402
from storage_backends import BACKENDS, write_config  # noqa: E402


def curl(*args):
    started = time.monotonic()
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", *args], check=True)
    return time.monotonic() - started


def measure(name, blob, size, runs):
    with tempfile.TemporaryDirectory(prefix="northstar-bench-") as directory:
        data_dir = Path(directory)
        backend = BACKENDS[name](data_dir)
        server = Server(data_dir, config=write_config(data_dir, [backend.plugin()], limits={"max_object_bytes": size * 2}),
                        env=backend.env).start()
        try:
            auth = bearer(server.token())["Authorization"]
            ups, downs = [], []
            for run in range(runs):
                ups.append(curl("-X", "POST", "-H", f"Authorization: {auth}", "-H", "Content-Type: application/octet-stream",
                                "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{blob}",
                                f"{server.url}/v1/artifacts?filename=bench{run}.bin"))
            listed = server.get("/v1/artifacts", headers={"Authorization": auth}).json()["objects"]
            for item in listed[:runs]:
                downs.append(curl("-H", f"Authorization: {auth}", f"{server.url}/v1/artifacts/{item['name']}"))
            mb = size / 1e6
            return mb / statistics.median(ups), mb / statistics.median(downs)
        finally:
            server.kill()
            backend.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="fs,s3,gcs")
    options = parser.parse_args()
    size = options.size_mb * 1024 * 1024
    with tempfile.NamedTemporaryFile(prefix="northstar-blob-") as blob:
        blob.write(os.urandom(size))
        blob.flush()
        print(f"{options.size_mb} MiB object, median of {options.runs} runs, MB/s")
        for name in options.backends.split(","):
            up, down = measure(name, blob.name, size, options.runs)
            print(f"{name:4}  upload {up:8.1f}  download {down:8.1f}")


if __name__ == "__main__":
    main()
