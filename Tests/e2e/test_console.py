"""`/console`, the operators' status page: a static shell that leaks
nothing, and `/console/status`, only for a credential with the admin scope.
A headless Chromium renders the page (a screenshot is taken) and what it
shows agrees with `/metrics`."""
import json
import re
import shutil
import subprocess
import tempfile

from conftest import Server, bearer, dev_claims, dev_secret, sign_hs


def chromium(*args):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is required (scripts/bootstrap installs Debian's chromium)"
    profile = tempfile.mkdtemp(prefix="northstar-console-")
    try:
        return subprocess.run([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args],
                              capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def busy_node(server):
    """A thread with messages and a live subscriber, and a few refusals."""
    user = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=user).json()["thread_id"]
    for index in range(4):
        assert server.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=user).status_code == 201
    assert server.get(f"/v1/threads/th_{'a' * 26}", headers=user).status_code == 404
    return user, thread


def test_the_status_is_for_admins_only(server, data_dir):
    user, thread = busy_node(server)
    secret = dev_secret(data_dir)
    refusals = [
        ({}, 401, "unauthorized"),
        (user, 403, "admin_required"),
        (bearer(sign_hs(secret, dev_claims(scope="read write admin", ttl=-120))), 401, "unauthorized"),
        (bearer(sign_hs(secret, dev_claims(scope="read write admin", env="prod"))), 401, "unauthorized"),
        (bearer(sign_hs(b"not-the-secret" * 4, dev_claims(scope="admin"))), 401, "unauthorized"),
    ]
    for headers, status, code in refusals:
        answer = server.get("/console/status", headers=headers)
        assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text
        assert thread not in answer.text
    # The page itself carries no data at all: no stream, no tenant.
    page = server.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert thread not in page.text and "t_alpha" not in page.text and "<script" in page.text and "http" not in page.text.split("<style>")[0]


def test_the_status_tells_the_node_plugins_connections_health_streams_and_errors(server):
    user, thread = busy_node(server)
    admin = bearer(server.token(user="ops", scopes="read,write,admin"))
    status = server.get("/console/status", headers=admin).json()
    assert status["node"]["state"] == "ready" and status["node"]["env"] == "dev" and status["node"]["abi"].startswith("1.")
    assert {p["name"]: p["kind"] for p in status["plugins"]} == {"jwt": "auth", "sse": "transport", "ws": "transport", "fs": "storage"}
    hottest = status["hot_streams"][0]
    assert hottest["stream"] == f"chat:{thread}" and hottest["tenant"] == "t_alpha" and hottest["this_minute"] + hottest["last_minute"] == 4
    errors = {e["code"]: e for e in status["recent_errors"]}
    assert errors["not_found"]["status"] == 404 and errors["not_found"]["route"] == "/v1/threads/{thread_id}"
    assert status["health"] == {"store": "ok", "storage": "fs: ok", "drain": "serving"}
    assert [(n["this"], n["state"], n["version"]) for n in status["cluster"]] == [(True, "ready", status["node"]["version"])]
    metrics = server.get("/metrics").text
    live = float(re.search(r"^northstar_live_subscribers (\S+)$", metrics, re.M).group(1))
    assert status["connections"]["live_subscribers"] == live


def test_chromium_renders_the_console_with_what_metrics_says(server, tmp_path):
    user, thread = busy_node(server)
    token = server.token(user="ops", scopes="read,write,admin")
    url = f"{server.url}/console#token={token}"
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    assert f"chat:{thread}" in text and "t_alpha" in text and "not_found" in text
    assert "ready" in text and "jwt" in text and "admin_required" not in text
    shot = tmp_path / "console.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1280,900", url)
    assert taken.returncode == 0, taken.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    # A browser without the token sees the empty shell and the login form, nothing else.
    bare = chromium("--dump-dom", f"{server.url}/console")
    assert f"chat:{thread}" not in bare.stdout and "Waiting for the admin token" in bare.stdout
