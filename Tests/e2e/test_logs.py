"""Structured logs: with `node.log_format: json` (or `--log-format json`)
every line is one JSON object, and a request's line carries its request id,
trace id, tenant, route template, status, duration and error code, never a
credential or a query string. Levels are set per subsystem in config."""
import json

from conftest import ROOT, Server, bearer, northstar

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def config_with(data_dir, **node):
    document = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
    document["node"].update(node)
    path = data_dir / "config.json"
    path.write_text(json.dumps(document))
    return path


def json_lines(server):
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is JSON, or this fails
    assert all({"ts", "level", "logger", "msg"} <= set(entry) for entry in parsed)
    return parsed


def test_json_request_lines_carry_ids_tenant_route_status_and_no_secret(data_dir):
    server = Server(data_dir, config_with(data_dir, log_format="json", log_levels={"northstar.http": "debug"})).start()
    try:
        token = server.token()
        headers = {**bearer(token), "x-request-id": "req-from-client-1", "traceparent": TRACEPARENT}
        thread = server.post("/v1/threads?access_token=secret-in-query", json={}, headers=headers).json()["thread_id"]
        missing = server.get(f"/v1/threads/th_{'a' * 26}", headers={**bearer(token), "x-request-id": "req-2"})
        assert missing.status_code == 404
        server.stop()
        entries = json_lines(server)
        requests_logged = {e.get("request_id"): e for e in entries if e["msg"] == "request"}
        created = requests_logged["req-from-client-1"]
        assert created["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and created["tenant"] == "t_alpha"
        assert created["route"] == "/v1/threads" and created["status"] == "201" and created["path"] == "/v1/threads"
        assert int(created["ms"]) >= 0 and created["logger"] == "northstar.http"
        refused = requests_logged["req-2"]
        assert refused["status"] == "404" and refused["code"] == "not_found" and refused["route"] == "/v1/threads/{thread_id}"
        text = server.log_text()
        assert token not in text and "secret-in-query" not in text and thread
        assert any(e["msg"] == "listening" and e["logger"] == "northstar" for e in entries)
    finally:
        server.stop()


def test_the_command_line_chooses_the_format_over_the_config(data_dir):
    server = Server(data_dir, config_with(data_dir, log_format="text"), extra_args=["--log-format", "json"]).start()
    server.stop()
    assert any(entry["msg"] == "stopped" for entry in json_lines(server))


def test_levels_are_set_per_subsystem(data_dir):
    server = Server(data_dir, config_with(data_dir, log_levels={"northstar.plugins": "warning", "northstar.http": "debug"})).start()
    try:
        server.get("/healthz")
    finally:
        server.stop()
    text = server.log_text()
    assert "plugin started" not in text  # northstar.plugins logs at info: below its warning level
    assert "northstar.http" in text and "request" in text  # debug lines of northstar.http
    assert "listening" in text  # northstar itself: the default level


def test_bad_log_settings_are_refused_with_the_key(data_dir):
    for node, says in [({"log_format": "xml"}, "node.log_format"), ({"log_levels": {"northstar.http": "loud"}}, "node.log_levels.northstar.http"),
                       ({"log_levels": ["debug"]}, "node.log_levels")]:
        result = northstar("config", "check", "--config", config_with(data_dir, **node), "--data-dir", data_dir)
        assert result.returncode != 0 and says in result.stderr, (node, result.stderr)
    for flag, value in [("--log-format", "xml"), ("--log-level", "loud")]:
        result = northstar("config", "check", flag, value, "--data-dir", data_dir)
        assert result.returncode != 0 and flag in result.stderr, result.stderr
