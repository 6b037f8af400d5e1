"""The plugin SDK as a third party meets it, outside this repository: the
installed header, pkg-config file and exports map; templates from
`plugins new` that build with `make` and plain `cc`; the two examples
(a long-polling chat transport and an in-memory storage backend) built from
the SDK alone and run in a real node; and the conformance kit, `plugins
test`, run against every shipped plugin and against plugins that break the
contract."""
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, ROOT, Server, bearer, dev_claims, dev_secret, gauge, northstar, sign_hs, wait_for
from storage_backends import BACKENDS

EXAMPLES = ROOT / "Plugins" / "examples"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    """The SDK installed under a prefix of its own, and the environment that finds it."""
    prefix = tmp_path_factory.mktemp("sdk")
    result = northstar("plugins", "sdk", "--prefix", prefix)
    assert result.returncode == 0, result.stderr
    return prefix, {**os.environ, "PKG_CONFIG_PATH": str(prefix / "lib" / "pkgconfig")}


def make(folder, env):
    """`make` in a folder outside the repository: the SDK is all it has."""
    result = subprocess.run(["make", "-C", str(folder)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(ROOT) not in result.stdout, "the build reached into the repository"
    libraries = list(folder.glob("lib*.so"))
    assert len(libraries) == 1
    return libraries[0]


def example(name, sdk, tmp_path):
    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name, folder)
    return make(folder, sdk[1])


def kit(*args, env=None):
    result = subprocess.run([str(BIN / "northstar"), "plugins", "test", *map(str, args)], capture_output=True, text=True,
                            timeout=300, env=env)
    return result


def test_the_embedded_sdk_matches_its_sources():
    result = subprocess.run(["python3", str(ROOT / "scripts" / "embed-sdk"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_sdk_installs_the_header_the_exports_map_and_a_working_pkg_config(sdk):
    prefix, env = sdk
    header = prefix / "include" / "northstar" / "northstar_plugin.h"
    assert header.read_bytes() == (ROOT / "Sources" / "PluginAPI" / "include" / "northstar_plugin.h").read_bytes()
    assert (prefix / "share" / "northstar" / "exports.map").read_bytes() == (ROOT / "Plugins" / "exports.map").read_bytes()
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "northstar-plugin"], env=env, capture_output=True, text=True)
    assert flags.returncode == 0, flags.stderr
    assert f"-I{prefix}/include/northstar" in flags.stdout and "--version-script=" in flags.stdout
    version = subprocess.run(["pkg-config", "--modversion", "northstar-plugin"], env=env, capture_output=True, text=True)
    assert version.stdout.strip().startswith("1.")


@pytest.mark.parametrize("kind", ["transport", "storage", "auth"])
def test_plugins_new_writes_a_template_that_builds_loads_and_exports_only_its_entry(sdk, tmp_path, kind):
    folder = tmp_path / "mine"
    result = northstar("plugins", "new", "--kind", kind, "--lang", "c", "--name", f"my_{kind}", "--directory", folder)
    assert result.returncode == 0, result.stderr
    library = make(folder, sdk[1])
    inspected = json.loads(northstar("plugins", "inspect", "--json", library).stdout)[0]
    assert inspected["status"] == "ok" and inspected["name"] == f"my_{kind}" and inspected["kind"] == kind
    assert inspected["warnings"] == []
    exported = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True).stdout
    assert [line.split()[-1] for line in exported.splitlines() if line.split()[1].isupper()] == ["northstar_plugin_v1"]


def test_the_plugin_guides_start_here_block_runs_as_written(tmp_path):
    """docs/plugins.md's first commands, pasted into a shell with `northstar` on the PATH."""
    from test_readme import code_blocks, section
    block = code_blocks(section((ROOT / "docs" / "plugins.md").read_text(), "Start here"))[0][1]
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "mine" / "libmine.so").exists() and "FAIL" not in result.stdout
    assert "checks passed" in result.stdout.splitlines()[-1]


def test_plugins_new_refuses_bad_names_and_existing_folders(tmp_path):
    assert northstar("plugins", "new", "--kind", "storage", "--name", "Bad Name", "--directory", tmp_path / "x").returncode != 0
    (tmp_path / "taken").mkdir()
    taken = northstar("plugins", "new", "--kind", "storage", "--name", "ok", "--directory", tmp_path / "taken")
    assert taken.returncode != 0 and "exists already" in taken.stderr
    assert northstar("plugins", "new", "--kind", "nope", "--name", "ok", "--directory", tmp_path / "y").returncode != 0


# ---- the conformance kit --------------------------------------------------


def test_the_kit_passes_the_shipped_transports_and_the_long_poll_example(sdk, tmp_path):
    for library in [BIN / "libNorthstarSSE.so", BIN / "libNorthstarWS.so", example("longpoll_chat", sdk, tmp_path)]:
        result = kit(library)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "FAIL" not in result.stdout and "with an expired credential: 401" in result.stdout


def test_the_kit_passes_every_shipped_storage_backend_and_the_memory_example(sdk, tmp_path):
    cases = [(example("memory_storage", sdk, tmp_path), {}, {})]
    for name, library in [("fs", "libNorthstarFS.so"), ("s3", "libNorthstarS3.so"), ("gcs", "libNorthstarGCS.so")]:
        backend = BACKENDS[name](tmp_path / name)
        cases.append((BIN / library, backend.plugin()["config"], backend))
    try:
        for library, config, backend in cases:
            config_file = tmp_path / "section.json"
            config_file.write_text(json.dumps(config))
            result = kit(library, "--config", config_file, "--json", env={**os.environ, **getattr(backend, "env", {})})
            checks = json.loads(result.stdout)
            assert result.returncode == 0 and all(c["passed"] for c in checks), (library, [c for c in checks if not c["passed"]])
            assert len(checks) >= 13
    finally:
        for _, _, backend in cases:
            if backend:
                backend.stop()


def test_the_kit_passes_the_shipped_auth_plugins(tmp_path):
    jwt = tmp_path / "jwt.json"
    jwt.write_text(json.dumps({"dev_secret_file": str(tmp_path / "secret"), "issuer": "i", "audience": "a"}))
    result = kit(BIN / "libNorthstarJWT.so", "--config", jwt)
    assert result.returncode == 0 and "a minted credential verifies" in result.stdout, result.stdout
    apikey = tmp_path / "apikey.json"
    apikey.write_text(json.dumps({"keys": [{"sha256": hashlib.sha256(b"k-conformance").hexdigest(), "tenant_id": "t_acme",
                                            "user_id": "bot", "env": "dev", "scopes": ["read"]}]}))
    result = kit(BIN / "libNorthstarAPIKey.so", "--config", apikey, "--credential", "ApiKey k-conformance")
    assert result.returncode == 0 and "the given credential is accepted" in result.stdout, result.stdout
    wrong = kit(BIN / "libNorthstarAPIKey.so", "--config", apikey, "--credential", "ApiKey not-the-key")
    assert wrong.returncode == 1 and "FAIL  the given credential is accepted" in wrong.stdout


def test_the_kit_fails_a_backend_that_misreports_its_digest_or_reports_none(sdk, tmp_path):
    folder = tmp_path / "memory"
    shutil.copytree(EXAMPLES / "memory_storage", folder)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "northstar-plugin"], env=sdk[1], capture_output=True,
                           text=True).stdout.split()
    for define, says in [("-DLIE_ABOUT_SHA256", "the bytes' is"), ("-DWITHOUT_CHECKED_FINISH", "reports no SHA-256")]:
        library = folder / f"lib{define[2:].lower()}.so"
        subprocess.run(["cc", "-std=c99", "-D_POSIX_C_SOURCE=200809L", define, *flags, "-shared", "-fPIC", "-o", str(library),
                        str(folder / "memory_storage.c"), "-lpthread"], check=True)
        result = kit(library)
        assert result.returncode == 1 and "FAIL  the SHA-256 of what was stored" in result.stdout and says in result.stdout, \
            result.stdout


def test_the_kit_fails_a_transport_that_breaks_the_contract_and_says_why(tmp_path):
    library = tmp_path / "libMisbehaving.so"
    subprocess.run(["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-DFEW_ROUTES", "-shared", "-fPIC", "-I",
                    str(ROOT / "Sources" / "PluginAPI" / "include"), "-o", str(library),
                    str(ROOT / "Tests" / "e2e" / "plugins" / "misbehaving.c")], check=True)
    result = kit(library, "--json")
    assert result.returncode == 1
    failed = {c["name"]: c["reason"] for c in json.loads(result.stdout) if not c["passed"]}
    assert "GET /mis/deaf with no credential: 401" in failed  # it answers 200 to anyone
    assert any("misuse" in name for name in failed), failed
    assert "the host had to end an exchange at the drain deadline" in failed.values(), failed


def test_the_kit_fails_a_transport_that_keeps_its_principals_or_answers_the_user_limit_401(tmp_path):
    library = tmp_path / "libLeaky.so"
    subprocess.run(["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-shared", "-fPIC", "-I",
                    str(ROOT / "Sources" / "PluginAPI" / "include"), "-o", str(library),
                    str(ROOT / "Tests" / "e2e" / "plugins" / "leaky_stream.c")], check=True)
    result = kit(library, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    released = checks["every principal is released when its connection ends (none is counted once every client left)"]
    assert not released["passed"] and "principal_release" in released["reason"], released
    limited = checks["GET /leaky/chat/{thread_id} past limits.max_connections_per_user (3) for one user: 429"]
    assert not limited["passed"] and limited["reason"].startswith("answered 401"), limited


def test_the_kit_says_why_a_file_does_not_load(tmp_path):
    (tmp_path / "notes.so").write_text("not a plugin")
    result = kit(tmp_path / "notes.so")
    assert result.returncode == 2 and "not-a-shared-object" in result.stderr


def test_the_kit_refuses_a_config_section_that_is_not_a_json_object(tmp_path):
    for text in ("{not json", "[1, 2]"):
        (tmp_path / "section.json").write_text(text)
        result = kit(BIN / "libNorthstarFS.so", "--config", tmp_path / "section.json")
        assert result.returncode == 64 and "a JSON object" in result.stderr, result.stderr
    result = kit(BIN / "libNorthstarFS.so", "--config", tmp_path / "missing.json")
    assert result.returncode == 64 and "cannot read" in result.stderr
    # A credential only means something to an auth plugin: not ignored silently.
    result = kit(BIN / "libNorthstarFS.so", "--credential", "Bearer x")
    assert result.returncode == 64 and "--credential is for auth plugins" in result.stderr


# ---- the examples in a node ------------------------------------------------


LONG_POLLS_PER_USER = 4


@pytest.fixture
def lp_server(sdk, tmp_path, data_dir):
    transport = example("longpoll_chat", sdk, tmp_path)
    storage = example("memory_storage", sdk, tmp_path)
    config = data_dir / "config.json"
    config.write_text(json.dumps({
        "limits": {"max_connections_per_user": LONG_POLLS_PER_USER},
        "storage": {"backend": "memory"},
        "plugins": [
            {"name": "jwt", "path": "libNorthstarJWT.so", "config": {
                "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
            {"name": "lp", "path": str(transport), "config": {}},
            {"name": "memory", "path": str(storage), "config": {}},
        ]}))
    server = Server(data_dir, config).start()
    yield server
    server.stop()


def post(server, thread, headers, text):
    answer = server.post(f"/v1/threads/{thread}/messages", json={"text": text}, headers=headers)
    assert answer.status_code == 201, answer.text


def test_long_poll_answers_the_catch_up_then_waits_then_delivers_live(lp_server):
    server = lp_server
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    post(server, thread, headers, "one")
    post(server, thread, headers, "two")
    events = server.get(f"/lp/chat/{thread}?after=0", headers=headers).json()
    assert [e["seq"] for e in events] == [1, 2] and events[0]["type"] == "chat.message"
    started = time.monotonic()
    assert server.get(f"/lp/chat/{thread}?after=2&wait=1", headers=headers).json() == []
    assert 0.8 < time.monotonic() - started < 5
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(server.get(f"/lp/chat/{thread}?after=2&wait=20", headers=headers)))
    waiting.start()
    time.sleep(0.5)
    started = time.monotonic()
    post(server, thread, headers, "three")
    waiting.join(timeout=10)
    assert answers and [e["seq"] for e in answers[0].json()] == [3]
    assert time.monotonic() - started < 3  # live, not the 20 s wait


def test_long_poll_refuses_bad_input_and_other_tenants_with_the_house_errors(lp_server, data_dir):
    server = lp_server
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    secret = dev_secret(data_dir)
    cases = [
        ("", {}, 401, "unauthorized"),
        ("", bearer(sign_hs(secret, dev_claims()) + "x"), 401, "unauthorized"),
        ("", bearer(sign_hs(secret, dev_claims(ttl=-120))), 401, "unauthorized"),
        ("", bearer(sign_hs(secret, dev_claims(env="prod"))), 401, "unauthorized"),
        ("", bearer(server.token(tenant="t_beta")), 404, "not_found"),
        ("?after=x", headers, 400, "invalid_after"),
        ("?after=-1", headers, 400, "invalid_after"),
        ("?after=99", headers, 400, "invalid_after"),  # past the head: the host's refusal, with its code
        ("?wait=61", headers, 400, "invalid_wait"),
        ("?wait=%zz", headers, 400, "invalid_wait"),
    ]
    for query, auth, status, code in cases:
        answer = server.get(f"/lp/chat/{thread}{query}", headers=auth)
        assert answer.status_code == status, (query, answer.text)
        assert answer.json()["error"]["code"] == code, (query, answer.text)
    assert server.get("/lp/chat/th_" + "a" * 26, headers=headers).status_code == 404  # well-formed, no such thread


def test_long_polls_count_as_their_users_connections(lp_server):
    server = lp_server
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    answers = []
    waiting = [threading.Thread(target=lambda: answers.append(server.get(f"/lp/chat/{thread}?after=0&wait=20", headers=headers)))
               for _ in range(LONG_POLLS_PER_USER)]
    for poll in waiting:
        poll.start()
    assert wait_for(lambda: gauge(server, "northstar_live_subscribers") == LONG_POLLS_PER_USER, seconds=5)
    refused = server.get(f"/lp/chat/{thread}?after=0&wait=20", headers=headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_user_connections", refused.text
    assert server.get(f"/lp/chat/{thread}?after=0&wait=1", headers=bearer(server.token(user="bob"))).status_code == 200
    post(server, thread, headers, "one")  # answers every waiting poll, which gives its connection back
    for poll in waiting:
        poll.join(timeout=10)
    assert [answer.status_code for answer in answers] == [200] * LONG_POLLS_PER_USER
    assert server.get(f"/lp/chat/{thread}?after=0", headers=headers).json()[0]["seq"] == 1


def test_a_long_poll_whose_client_leaves_is_ended_at_once(lp_server):
    server = lp_server
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    import socket
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(f"GET /lp/chat/{thread}?wait=60 HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n\r\n".encode())

    def gauges_read(exchanges, subscribers):
        return (gauge(server, "northstar_transport_exchanges_open"), gauge(server, "northstar_live_subscribers")) == (exchanges, subscribers)
    # The poll is waiting on its subscription, then its client leaves.
    assert wait_for(lambda: gauges_read(1, 1), seconds=5)
    client.close()
    assert wait_for(lambda: gauges_read(0, 0), seconds=5)


def test_the_memory_backend_keeps_the_hosts_digest_so_etags_hold(lp_server):
    server = lp_server
    headers = bearer(server.token())
    body = b"northstar " * 1000
    uploaded = server.post("/v1/artifacts?filename=a.bin", data=body, headers={**headers, "Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 201, uploaded.text
    asset = uploaded.json()
    got = server.get(f"/v1/artifacts/{asset['asset_id']}/a.bin", headers=headers)
    assert got.content == body and got.headers["x-checksum-sha256"] == hashlib.sha256(body).hexdigest()
    again = server.get(f"/v1/artifacts/{asset['asset_id']}/a.bin", headers={**headers, "If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304
    ranged = server.get(f"/v1/artifacts/{asset['asset_id']}/a.bin", headers={**headers, "Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == body[10:20]
    assert "reports no SHA-256" not in server.log_text()


def test_a_backend_that_misreports_the_digest_is_refused_and_keeps_nothing(sdk, tmp_path, data_dir):
    folder = tmp_path / "memory"
    shutil.copytree(EXAMPLES / "memory_storage", folder)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "northstar-plugin"], env=sdk[1], capture_output=True,
                           text=True).stdout.split()
    library = folder / "liblie.so"
    subprocess.run(["cc", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-DLIE_ABOUT_SHA256", *flags, "-shared", "-fPIC", "-o",
                    str(library), str(folder / "memory_storage.c"), "-lpthread"], check=True)
    config = data_dir / "config.json"
    config.write_text(json.dumps({"storage": {"backend": "memory"}, "plugins": [
        {"name": "jwt", "path": "libNorthstarJWT.so", "config": {
            "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
        {"name": "memory", "path": str(library), "config": {}}]}))
    server = Server(data_dir, config).start()
    try:
        headers = bearer(server.token())
        answer = server.post("/v1/artifacts?filename=a.bin", data=b"x" * 100, headers={**headers, "Content-Type": "text/plain"})
        assert answer.status_code == 502 and answer.json()["error"]["code"] == "checksum_mismatch"
        assert server.get("/v1/artifacts", headers=headers).json()["objects"] == []
    finally:
        server.stop()
