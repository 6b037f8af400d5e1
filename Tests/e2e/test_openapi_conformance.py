"""The OpenAPI document is exact: schemathesis generates requests from it,
valid and invalid, against a real server, and every answer must be one the
document promises (status, content type, body schema, headers), no request
may cause a 5xx, and every request the document calls invalid must be
refused. Bounded: a fixed number of examples per operation and a fixed
seed, so a run is repeatable and takes about half a minute: the node's request
rates are off, so which request meets a 429 does not depend on timing."""
import os
import shutil
import subprocess

import pytest

from conftest import NO_RATES, ROOT, Server, default_config

CHECKS = ",".join(["not_a_server_error", "status_code_conformance", "content_type_conformance",
                   "response_schema_conformance", "response_headers_conformance", "negative_data_rejection"])


def test_schemathesis_finds_nothing(data_dir):
    binary = shutil.which("schemathesis")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("schemathesis is missing: scripts/bootstrap test installs it")
        pytest.skip("schemathesis is not installed (scripts/bootstrap test installs it)")
    server = Server(data_dir, config=default_config(data_dir, limits=NO_RATES)).start()
    try:
        token = server.token()
        result = subprocess.run(
            [binary, "--config-file", str(ROOT / "Tests" / "e2e" / "schemathesis.toml"),
             "run", str(ROOT / "docs" / "openapi.json"), "--url", server.url,
             "-H", f"Authorization: Bearer {token}", "--max-examples", "25", "--seed", "20261201",
             "--checks", CHECKS],
            # Its example database goes to the test's own folder: a run starts
            # from the seed alone and leaves the checkout as it found it.
            cwd=data_dir, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    finally:
        server.kill()
