"""The server starts on the embedded default, reports ready, and stops cleanly."""
import json
import re
import socket

from conftest import BIN, ROOT, Server, gauge, northstar, wait_for


def test_health_and_ready(server):
    assert server.get("/healthz").json() == {"status": "ok"}
    ready = server.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_sigterm_stops_plugins_and_exits_zero(server):
    assert server.stop() == 0
    log = server.log_text()
    assert "plugin started" in log and "plugin stopped" in log
    assert log.index("plugin stopped") > log.index("listening")


def test_unknown_route_is_404_json(server):
    response = server.get("/nope")
    assert response.status_code == 404


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _refused_before_bind(data_dir, config_text, expected):
    """Serving this config exits non-zero, names the problem, and never binds its port."""
    port = _free_port()
    config = data_dir / "bad.json"
    config.write_text(config_text.replace("PORT", str(port)))
    result = northstar("serve", "--config", config, "--data-dir", data_dir)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert "listening" not in result.stderr
    with socket.socket() as probe:  # the port is still free: nothing was bound
        probe.bind(("127.0.0.1", port))


def test_missing_plugin_refused_before_bind(data_dir):
    _refused_before_bind(data_dir, '{"node": {"listen": "127.0.0.1:PORT"}, "plugins": [{"path": "/nope/libX.so"}]}',
                         "file-missing")


def test_text_file_plugin_refused_before_bind(data_dir):
    (data_dir / "fake.so").write_text("not a library")
    _refused_before_bind(data_dir, '{"node": {"listen": "127.0.0.1:PORT"}, "plugins": [{"path": "%s"}]}'
                         % (data_dir / "fake.so"), "not-a-shared-object")


def test_rejected_plugin_config_refused_before_bind(data_dir):
    _refused_before_bind(data_dir, '{"node": {"listen": "127.0.0.1:PORT"}, "plugins": '
                         '[{"path": "libNorthstarAPIKey.so", "config": {"keys": []}}]}', "config-rejected")


def test_bad_config_names_the_key(data_dir):
    _refused_before_bind(data_dir, '{"node": {"listen": "127.0.0.1:PORT", "colour": "blue"}}', "node.colour")


def test_plugins_inspect_describes_apikey_in_json():
    result = northstar("plugins", "inspect", "--json", BIN / "libNorthstarAPIKey.so")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)[0]
    # Built against today's header, so it declares the header's minor.
    header = (ROOT / "Sources" / "PluginAPI" / "include" / "northstar_plugin.h").read_text()
    minor = re.search(r"^#define NS_ABI_MINOR (\d+)$", header, re.M).group(1)
    assert report["name"] == "apikey" and report["kind"] == "auth" and report["abi_version"] == f"1.{minor}"
    assert report["version"] == "1.0.0" and report["status"] == "ok"


def test_plugins_inspect_gives_a_verdict_on_bad_files(data_dir):
    (data_dir / "notes.txt").write_text("hello")
    truncated = data_dir / "cut.so"
    truncated.write_bytes((BIN / "libNorthstarAPIKey.so").read_bytes()[:900])
    result = northstar("plugins", "inspect", "--json", data_dir / "notes.txt", data_dir, truncated,
                       BIN / "libNorthstarAPIKey.so")
    assert result.returncode == 1  # some refused, no crash
    reports = json.loads(result.stdout)
    assert [r["status"] for r in reports] == ["refused", "refused", "refused", "ok"]
    assert all(r.get("remedy") for r in reports[:3])


def test_config_check_accepts_default_and_starts_nothing(data_dir):
    result = northstar("config", "check", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    assert "jwt (auth)" in result.stdout


def test_token_refuses_a_bad_tenant(data_dir):
    result = northstar("token", "--tenant", "acme", "--user", "u", "--data-dir", data_dir)
    assert result.returncode != 0 and "tenant" in result.stderr


def test_second_server_keeps_the_dev_secret(data_dir):
    first = Server(data_dir).start()
    first.stop()
    secret = (data_dir / "jwt-dev-secret").read_text()
    assert len(secret) == 64
    assert (data_dir / "jwt-dev-secret").stat().st_mode & 0o077 == 0  # owner-only
    second = Server(data_dir).start()
    try:
        assert (data_dir / "jwt-dev-secret").read_text() == secret
    finally:
        second.kill()


def test_metrics_count_requests_events_and_live_subscribers(server):
    from conftest import bearer
    from sse_client import SSEStream
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    server.post(f"/v1/threads/{thread}/messages", json={"text": "one"}, headers=headers)
    server.get("/v1/threads/th_" + "a" * 26)  # a 401
    stream = SSEStream(server.port, f"/sse/chat/{thread}", headers)
    stream.events(1)
    response = server.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'northstar_events_appended_total{type="chat.message"} 1' in text
    assert 'northstar_http_requests_total{status="401"} 1' in text
    # The event above came from the log; the stream counts as live once its
    # catch-up has read the log to the end, a moment later.
    assert "# TYPE northstar_live_subscribers gauge\n" in text
    assert wait_for(lambda: gauge(server, "northstar_live_subscribers") == 1, seconds=10)
    stream.close()
    assert wait_for(lambda: gauge(server, "northstar_live_subscribers") == 0, seconds=10)
