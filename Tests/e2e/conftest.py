"""End-to-end fixtures: a real `northstar serve` on 127.0.0.1, real clients.

Each server gets its own data directory and an OS-picked port (`--listen
127.0.0.1:0`); the port is read from the server's own log line.
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("NORTHSTAR_BIN", ROOT / ".build" / "debug"))
NORTHSTAR = BIN / "northstar"


def northstar(*args, **kwargs):
    """Runs the CLI to completion and returns the CompletedProcess."""
    return subprocess.run([str(NORTHSTAR), *map(str, args)], capture_output=True, text=True, timeout=60, **kwargs)


class Server:
    """A running `northstar serve`, stopped by `stop()` (SIGTERM) or `kill()` (SIGKILL)."""

    def __init__(self, data_dir, config=None, extra_args=(), env=None, preexec=None, cwd=None):
        self.data_dir = Path(data_dir)
        self.config = config
        self.log_path = self.data_dir / "server.log"
        self.extra_args = list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.preexec = preexec  # run in the child before exec (a resource limit, say)
        self.cwd = cwd  # the working directory relative config paths resolve against
        self.process = None
        self.port = None
        self.listen = "127.0.0.1:0"  # set to the first port to restart on the same address

    def start(self, timeout=30):
        args = [str(NORTHSTAR), "serve", "--listen", self.listen, "--data-dir", str(self.data_dir)]
        if self.config:
            args += ["--config", str(self.config)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "a")
        start_offset = self.log_path.stat().st_size  # a restart appends; read only its own lines
        self.process = subprocess.Popen(args + self.extra_args, stdout=self.log, stderr=self.log, env=self.env,
                                        preexec_fn=self.preexec, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The "listening" line, as text or as JSON (node.log_format).
            match = re.search(r'port=(\d+) .*listening|"msg":"listening","port":"(\d+)"', self.log_path.read_text()[start_offset:])
            if match:
                self.port = int(match.group(1) or match.group(2))
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def get(self, path, **kwargs):
        return requests.get(self.url + path, timeout=10, **kwargs)

    def post(self, path, **kwargs):
        return requests.post(self.url + path, timeout=10, **kwargs)

    def write(self, path, **kwargs):
        """POSTs as a well-behaved client does: refused 429 `rate_limited` (the
        node's write rates, 100 a second per user by default), it waits the
        `retry_after_ms` the answer names and sends it again (nothing of a
        refused write was stored). For tests that need many events fast."""
        deadline = time.monotonic() + 60
        while True:
            answer = self.post(path, **kwargs)
            if answer.status_code != 429 or time.monotonic() > deadline:
                return answer
            error = answer.json()["error"]
            assert error["code"] == "rate_limited", error
            time.sleep(error["retry_after_ms"] / 1000)

    def token(self, tenant="t_alpha", user="alice", scopes="read,write", env=None, ttl=3600):
        """A dev token minted by the CLI against this server's config and data dir."""
        args = ["token", "--tenant", tenant, "--user", user, "--scopes", scopes, "--ttl", ttl,
                "--data-dir", self.data_dir]
        if self.config:
            args += ["--config", self.config]
        if env:
            args += ["--env", env]
        result = northstar(*args, env=self.env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def stop(self, timeout=20):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=timeout)
        return self.process.returncode

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self):
        return self.log_path.read_text()


# The node's request rates off: for a test whose requests must not meet a 429
# that depends on how fast the machine is.
NO_RATES = {"writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0,
            "reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0,
            "auth_failures_per_second": 0}


def default_config(data_dir, limits=None):
    """Writes the embedded default (Deploy/northstar.dev.json) with these
    `limits` on top; returns its path."""
    document = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
    document["node"].pop("data_dir", None)
    document["node"].pop("listen", None)
    document["limits"].update(limits or {})
    config = Path(data_dir) / "default-config.json"
    config.write_text(json.dumps(document))
    return config


def dev_config(data_dir, limits=None, ws=None, store=None):
    """Writes a config of the dev JWT provider and the sse and ws transports,
    with these `limits`, `ws` plugin settings and `store`; returns its path."""
    config = Path(data_dir) / "config.json"
    config.write_text(json.dumps({
        "limits": limits or {}, "store": store or {},
        "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
                        "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
                    {"name": "sse", "path": "libNorthstarSSE.so", "config": {}},
                    {"name": "ws", "path": "libNorthstarWS.so", "config": ws or {}}]}))
    return config


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="northstar-e2e-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def shared_postgres():
    """One PostgreSQL server for the session, when the store under test is postgres."""
    from postgres_server import PostgresServer
    instance = PostgresServer()
    yield instance
    instance.stop()


@pytest.fixture
def server(data_dir, request):
    """A server on the embedded dev default; with NORTHSTAR_TEST_STORE=postgres,
    the same on a new PostgreSQL database (scripts/test runs the store-facing
    suites both ways)."""
    config = None
    if os.environ.get("NORTHSTAR_TEST_STORE") == "postgres":
        url = request.getfixturevalue("shared_postgres").create_database()
        document = _json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
        document["store"] = {**document.get("store", {}), "backend": "postgres", "postgres_url": url + "?sslmode=disable"}
        document["node"].pop("data_dir", None)
        document["node"].pop("listen", None)
        config = data_dir / "postgres-config.json"
        config.write_text(_json.dumps(document))
    instance = Server(data_dir, config=config).start()
    if config:
        assert "backend=postgres" in instance.log_text()
    yield instance
    instance.kill()


def gauge(server, name):
    """The value of the unlabelled sample `name` in the server's `/metrics`."""
    sample = re.search(rf"^{re.escape(name)} (\S+)$", server.get("/metrics").text, re.M)
    assert sample, f"/metrics has no unlabelled sample {name}"
    return float(sample.group(1))


def wait_for(condition, seconds=15):
    """True once `condition()` holds, polled every 0.2 s; False after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


# --- tokens made by hand, to test what the server refuses ---------------------

import base64
import hashlib
import hmac
import json as _json


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_hs(secret: bytes, claims: dict, header=None, digest=hashlib.sha256) -> str:
    """A JWT signed with HMAC, with full control over header and claims."""
    header = header or {"alg": "HS256", "typ": "JWT", "kid": "dev"}
    signing_input = b64url(_json.dumps(header).encode()) + "." + b64url(_json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


def dev_claims(tenant="t_alpha", user="alice", scope="read write", env="dev", ttl=3600, **extra):
    """Claims the dev default config accepts (issuer, audience, claim names)."""
    now = int(time.time())
    claims = {"iss": "northstar-dev", "aud": "northstar", "tenant_id": tenant, "sub": user, "scope": scope,
              "env": env, "iat": now, "exp": now + ttl}
    claims.update(extra)
    return claims


def dev_secret(data_dir) -> bytes:
    return (Path(data_dir) / "jwt-dev-secret").read_text().strip().encode()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def load_schema(name):
    return _json.loads((ROOT / "docs" / "schemas" / name).read_text())


# --- small local HTTP endpoints a test serves itself (key servers, pages) -----

import threading as _threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean."""

    def log_message(self, *args):
        pass

    def send_json(self, status, value):
        body = _json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def local_http(handler_class):
    """Serves `handler_class` on 127.0.0.1 from a thread; returns (server, base URL)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    _threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
