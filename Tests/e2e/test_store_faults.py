"""The store under faults: a full disk and a read-only database are told
apart (503 store_full / store_read_only), reads keep working, /readyz says
so, nothing acknowledged is lost, and the node recovers on its own once the
cause is fixed. A data directory that cannot be written stops `serve` at
start with the path and the reason.

The faults are real: a size-limited tmpfs for the database, grown while the
server runs, and read-only mounts (the tests run as root, as CI does). A
database that turns read-only under a running node (a mount cannot be made
read-only while files on it are open for writing) is tested in
`Tests/HostTests/StoreHealthTests.swift` with SQLite's own read-only mode."""
import json
import os
import subprocess
from contextlib import contextmanager

import pytest

from conftest import NORTHSTAR, Server, bearer, wait_for


def can_mount():
    return os.geteuid() == 0


@contextmanager
def small_filesystem(path, size):
    """A tmpfs of `size` at `path`, unmounted afterwards."""
    if not can_mount():
        if os.environ.get("CI") == "true":
            pytest.fail("these tests mount a tmpfs and need root; CI runs as root")
        pytest.skip("needs root to mount a tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path, options):
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def server_on(data_dir, database_dir):
    config = data_dir / "config.json"
    config.write_text(json.dumps({
        "store": {"sqlite_path": str(database_dir / "northstar.sqlite")},
        "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
            "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}}]}))
    return Server(data_dir, config=config).start()


def test_a_full_disk_is_503_store_full_reads_go_on_and_the_node_recovers(data_dir):
    with small_filesystem(data_dir / "db", "3m") as database_dir:
        server = server_on(data_dir, database_dir)
        try:
            headers = bearer(server.token())
            thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
            acknowledged, refused = [], None
            for index in range(20_000):
                response = server.post(f"/v1/threads/{thread}/messages", headers=headers,
                                       json={"text": f"m{index} " + "x" * 2000, "client_message_id": f"c{index}"})
                if response.status_code == 201:
                    acknowledged.append(response.json()["event"]["seq"])
                    continue
                refused = response
                break
            assert refused is not None, "the disk never filled"
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_full", refused.text
            assert server.get("/readyz").json() == {"status": "store_full"}
            assert server.get("/readyz").status_code == 503
            # Reads keep working, and hold everything that was acknowledged.
            seqs, after = [], 0
            while True:
                page = server.get(f"/v1/threads/{thread}/events?after={after}", headers=headers)
                assert page.status_code == 200, page.text
                seqs += [event["seq"] for event in page.json()["events"]]
                if not page.json()["events"]:
                    break
                after = page.json()["next_after"]
            assert seqs[:len(acknowledged)] == acknowledged == list(range(1, len(acknowledged) + 1))
            assert server.get("/healthz").status_code == 200
            # Room again: the node becomes ready by itself, and writes succeed.
            remount(database_dir, "size=64m")
            assert wait_for(lambda: server.get("/readyz").status_code == 200)
            again = server.post(f"/v1/threads/{thread}/messages", headers=headers, json={"text": "after"})
            assert again.status_code == 201 and again.json()["event"]["seq"] == len(acknowledged) + 1
        finally:
            server.kill()


def test_serve_refuses_a_data_directory_it_cannot_write(data_dir):
    with small_filesystem(data_dir / "ro", "1m") as directory:
        remount(directory, "ro")
        result = subprocess.run([str(NORTHSTAR), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(directory)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert str(directory) in result.stderr and "not writable" in result.stderr, result.stderr


def test_serve_refuses_a_database_it_cannot_write(data_dir):
    with small_filesystem(data_dir / "db", "8m") as database_dir:
        server = server_on(data_dir, database_dir)
        server.stop()
        remount(database_dir, "ro")
        with pytest.raises(RuntimeError) as refused:
            server_on(data_dir, database_dir)
        assert "northstar.sqlite" in str(refused.value) and "cannot be written" in str(refused.value)
