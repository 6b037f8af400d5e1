"""The three storage backends the artifact tests run against, each a real
server on 127.0.0.1 started and stopped here: the `fs` plugin's folder,
moto's S3-compatible server, and a GCS emulator (both from PyPI, installed
by scripts/bootstrap). A missing server is a failure, never a skip."""
import json
import os
import shutil
import socket
import subprocess
import time

import requests

BUCKET = "northstar"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.args[0]} did not start")


def require(command):
    path = shutil.which(command)
    assert path, f"{command} is required (scripts/bootstrap test installs it from PyPI)"
    return path


class FSBackend:
    name = "fs"
    env = {}

    def __init__(self, data_dir):
        self.root = data_dir / "objects"

    def plugin(self, **extra):
        return {"name": "fs", "path": "libNorthstarFS.so", "config": {"root": str(self.root), "bucket": BUCKET, **extra}}

    def keys(self):
        bucket = self.root / BUCKET
        return sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*") if p.is_file()) if bucket.exists() else []

    def stop(self):
        pass


class S3Backend:
    """moto's server mode: the S3 REST API on a loopback port."""
    name = "s3"
    env = {}

    def __init__(self, data_dir):
        self.port = free_port()
        self.process = subprocess.Popen([require("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self.url, self.process)
        import boto3
        self.client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                                   aws_access_key_id="test", aws_secret_access_key="test")
        self.client.create_bucket(Bucket=BUCKET)

    def plugin(self, **extra):
        return {"name": "s3", "path": "libNorthstarS3.so", "config": {
            "endpoint": self.url, "region": "us-east-1", "bucket": BUCKET, "access_key_id": "test",
            "secret_access_key": "test", "part_size_bytes": 5 * 1024 * 1024, **extra}}

    def keys(self):
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class GCSBackend:
    """gcp-storage-emulator: the GCS JSON API on a loopback port, reached
    through STORAGE_EMULATOR_HOST as Google's own clients do."""
    name = "gcs"

    def __init__(self, data_dir):
        self.port = free_port()
        self.process = subprocess.Popen([require("gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(self.port),
                                         "--in-memory", "--default-bucket", BUCKET, "-q"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self.url, self.process)
        self.env = {"STORAGE_EMULATOR_HOST": self.url}

    def plugin(self, **extra):
        return {"name": "gcs", "path": "libNorthstarGCS.so", "config": {"bucket": BUCKET, "chunk_size_bytes": 262144 * 4, **extra}}

    def keys(self):
        items = requests.get(f"{self.url}/storage/v1/b/{BUCKET}/o").json().get("items", [])
        return sorted(item["name"] for item in items)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


BACKENDS = {"fs": FSBackend, "s3": S3Backend, "gcs": GCSBackend}


def jwt_plugin():
    return {"name": "jwt", "path": "libNorthstarJWT.so", "config": {
        "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}}


def write_config(data_dir, storage_plugins, limits=None, storage=None):
    config = data_dir / "config.json"
    config.write_text(json.dumps({"limits": limits or {}, "storage": storage or {},
                                  "plugins": [jwt_plugin(), *storage_plugins]}))
    return config
