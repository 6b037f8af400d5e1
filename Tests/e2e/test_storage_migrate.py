"""`northstar storage migrate`: an operator moves a tenant's objects from
`fs` to `s3` (moto's server) with every SHA-256 verified, re-runs safely
after an interruption, then swaps the backend in config, without a
rebuild, and serves the same bytes."""
import hashlib
import json
import os
import signal
import subprocess
import time

import requests

from conftest import NORTHSTAR, Server, bearer, northstar
from storage_backends import BUCKET, FSBackend, S3Backend, jwt_plugin


def config(data_dir, fs, s3, backend):
    path = data_dir / "config.json"
    path.write_text(json.dumps({"storage": {"backend": backend}, "plugins": [jwt_plugin(), fs.plugin(), s3.plugin()]}))
    return path


def s3_sha(s3, key):
    return s3.client.head_object(Bucket=BUCKET, Key=key)["Metadata"].get("sha256")


def test_migrate_fs_to_s3_verified_resumable_then_swap(data_dir):
    fs, s3 = FSBackend(data_dir), S3Backend(data_dir)
    try:
        on_fs = config(data_dir, fs, s3, "fs")
        server = Server(data_dir, config=on_fs).start()
        alpha, beta = bearer(server.token()), bearer(server.token(tenant="t_beta"))
        objects = {}
        for index in range(8):
            data = os.urandom(300_000 + index)
            answer = server.post(f"/v1/artifacts?filename=f{index}.bin", data=data, headers=alpha).json()
            objects[answer["key"]] = (answer, data)
        requests.put(f"{server.url}/v1/media/site/logo.svg", data=b"<svg/>", headers={**alpha, "Content-Type": "image/svg+xml"})
        server.post("/v1/artifacts?filename=theirs.bin", data=b"beta's", headers=beta)
        server.stop()
        alpha_keys = [key for key in fs.keys() if key.startswith("tenants/t_alpha/")]
        assert len(alpha_keys) == 9

        # Interrupted: SIGKILL once the first object is copied.
        args = [str(NORTHSTAR), "storage", "migrate", "--config", str(on_fs), "--data-dir", str(data_dir),
                "--from", "fs", "--to", "s3", "--prefix", "tenants/t_alpha/"]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        first = process.stdout.readline()
        assert first.startswith("copied ")
        process.send_signal(signal.SIGKILL)
        process.wait()
        partial = s3.keys()
        assert 1 <= len(partial) <= 9 and set(partial) <= set(alpha_keys)  # whole objects only
        for key in partial:
            assert s3_sha(s3, key) == hashlib.sha256((data_dir / "objects" / BUCKET / key).read_bytes()).hexdigest()

        # Run again: what is there is skipped, the rest copied, every checksum verified.
        rerun = northstar(*args[1:])
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        summary = rerun.stdout.strip().splitlines()[-1]
        assert f"{9 - len(partial)} copied" in summary and f"{len(partial)} already there" in summary and "0 failed" in summary
        assert s3.keys() == alpha_keys  # exactly the scheme, and nothing of t_beta
        for key in alpha_keys:
            local = (data_dir / "objects" / BUCKET / key).read_bytes()
            assert s3_sha(s3, key) == hashlib.sha256(local).hexdigest()
            assert s3.client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == local
        again = northstar(*args[1:])
        assert "0 copied" in again.stdout and "9 already there" in again.stdout

        # Swap the backend in config: the same server binary serves them from S3.
        swapped = Server(data_dir, config=config(data_dir, fs, s3, "s3")).start()
        try:
            for key, (answer, data) in objects.items():
                got = swapped.get(f"/v1/artifacts/{answer['asset_id']}/{key.rsplit('/', 1)[1]}", headers=alpha)
                assert got.content == data and got.headers["x-checksum-sha256"] == answer["sha256"]
            assert swapped.get("/v1/media/site/logo.svg", headers=alpha).headers["content-type"] == "image/svg+xml"
            assert swapped.get("/v1/artifacts", headers=beta).json()["objects"] == []  # not migrated
        finally:
            swapped.kill()
    finally:
        s3.stop()


def test_a_damaged_source_is_not_copied_and_fails_the_run(data_dir):
    fs, s3 = FSBackend(data_dir), S3Backend(data_dir)
    try:
        on_fs = config(data_dir, fs, s3, "fs")
        server = Server(data_dir, config=on_fs).start()
        headers = bearer(server.token())
        good = server.post("/v1/artifacts?filename=good", data=b"g" * 1000, headers=headers).json()
        bad = server.post("/v1/artifacts?filename=bad", data=b"b" * 1000, headers=headers).json()
        server.stop()
        (data_dir / "objects" / BUCKET / bad["key"]).write_bytes(b"X" * 1000)  # bit rot
        result = northstar("storage", "migrate", "--config", on_fs, "--data-dir", data_dir, "--from", "fs", "--to", "s3")
        assert result.returncode == 1
        assert f"FAILED  {bad['key']}" in result.stdout and "SHA-256" in result.stdout
        assert s3.keys() == [good["key"]]
    finally:
        s3.stop()


def test_bad_migrate_arguments(data_dir):
    fs, s3 = FSBackend(data_dir), S3Backend(data_dir)
    try:
        on_fs = config(data_dir, fs, s3, "fs")
        unknown = northstar("storage", "migrate", "--config", on_fs, "--data-dir", data_dir, "--from", "fs", "--to", "azure")
        assert unknown.returncode == 2 and '--to names "azure"' in unknown.stderr
        same = northstar("storage", "migrate", "--config", on_fs, "--data-dir", data_dir, "--from", "fs", "--to", "fs")
        assert same.returncode == 2 and "same plugin" in same.stderr
        missing = northstar("storage", "migrate", "--config", on_fs, "--data-dir", data_dir, "--from", "fs")
        assert missing.returncode != 0 and "--to" in missing.stderr
    finally:
        s3.stop()
