"""CORS for the REST API (`node.allowed_origins`) and the browser client's
files (`node.client_dir`), checked with plain HTTP: what a browser would be
told, for a listed origin and for any other."""
import json

import pytest
import requests

from conftest import ROOT, Server, bearer, northstar

APP = "http://app.example:3000"


@pytest.fixture
def served(data_dir):
    config = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
    config["node"] = {"allowed_origins": [APP], "client_dir": str(ROOT / "clients" / "js")}
    path = data_dir / "config.json"
    path.write_text(json.dumps(config))
    server = Server(data_dir, config=path).start()
    yield server
    server.kill()


def preflight(server, origin, path="/v1/threads", method="POST"):
    return requests.options(server.url + path, timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_a_listed_origins_preflight_is_answered(served):
    answer = preflight(served, APP)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == APP
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "authorization" in answer.headers["access-control-allow-headers"]
    assert answer.headers["vary"] == "Origin"


def test_another_origins_preflight_is_refused(served):
    answer = preflight(served, "http://evil.example")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in answer.headers


def test_answers_and_errors_carry_cors_headers_for_a_listed_origin_only(served):
    token = served.token()
    created = served.post("/v1/threads", json={}, headers={**bearer(token), "Origin": APP})
    assert created.status_code == 201 and created.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in created.headers["access-control-expose-headers"]
    # An error must be readable too: the page needs its code.
    missing = served.get("/v1/threads/th_aaaaaaaaaaaaaaaaaaaaaaaaaa", headers={**bearer(token), "Origin": APP})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == APP
    assert missing.json()["error"]["code"] == "not_found"
    unauthorized = served.get("/v1/threads/th_aaaaaaaaaaaaaaaaaaaaaaaaaa", headers={"Origin": APP})
    assert unauthorized.status_code == 401 and unauthorized.headers["access-control-allow-origin"] == APP
    other = served.post("/v1/threads", json={}, headers={**bearer(token), "Origin": "http://evil.example"})
    assert other.status_code == 201 and "access-control-allow-origin" not in other.headers
    # Routes outside the API are left alone.
    assert "access-control-allow-origin" not in served.get("/healthz", headers={"Origin": APP}).headers


def test_the_client_files_and_the_demo_are_served_and_nothing_else(served):
    module = served.get("/client/northstar.js", headers={"Origin": APP})
    assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
    assert module.headers["access-control-allow-origin"] == APP  # a module script of another origin needs it
    assert module.text == (ROOT / "clients" / "js" / "northstar.js").read_text()
    for name in ("client", "canvas", "chat", "graft", "inbox", "json-patch", "subscription", "errors", "ids"):
        assert served.get(f"/client/lib/{name}.js").status_code == 200, name
    assert served.get("/client/northstar.d.ts").status_code == 200
    assert "Northstar demo" in served.get("/demo").text
    for path in ("/client/../Package.swift", "/client/%2e%2e/Package.swift", "/client/lib/../../README.md",
                 "/client/demo/index.html", "/client/lib/nope.js", "/client/"):
        answer = served.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] in ("route_not_found", "not_found"), path


def test_without_client_dir_there_is_no_demo(data_dir):
    config = {"node": {"client_dir": str(data_dir / "nowhere")}}
    (data_dir / "config.json").write_text(json.dumps(config))
    server = Server(data_dir, config=data_dir / "config.json").start()
    try:
        assert server.get("/demo").status_code == 404
        assert server.get("/client/northstar.js").status_code == 404
        assert "the browser client is not served" in server.log_text()
    finally:
        server.kill()


@pytest.mark.parametrize("origin", ["*", "https://app.example.com/", "app.example.com", "https://a.example/path",
                                    "ftp://files.example", "https://", 5])
def test_an_allowed_origin_that_is_not_an_origin_is_refused_by_key(data_dir, origin):
    (data_dir / "config.json").write_text(json.dumps({"node": {"allowed_origins": [origin]}}))
    result = northstar("config", "check", "--config", data_dir / "config.json")
    assert result.returncode != 0
    assert "node.allowed_origins" in result.stderr + result.stdout
