"""Traces: with `tracing.endpoint` set, every request gets a server span
whose parent is the caller's `traceparent`; auth (and the plugin call), the
isolation check, the commit and storage calls are its children; the events
it causes carry its span id, so each delivery links back to it; a plugin's
outbound `http_fetch` carries the trace. Spans go to an OTLP/HTTP (JSON)
receiver on 127.0.0.1 that checks every export against OpenTelemetry's own
protobuf schema (opentelemetry-proto). A collector that is down or refuses
costs requests nothing and is counted."""
import base64
import json
import signal
import threading
import time

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import QuietHandler, Server, bearer, local_http, northstar
from storage_backends import S3Backend, jwt_plugin
from test_jwks_url import K1, KeyServer, jwk
from test_tokens import sign_rs
from conftest import dev_claims

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


def check_against_the_schema(document):
    """Parses an export as the protobuf `ExportTraceServiceRequest`: unknown
    fields, wrong types and bad enum values fail. OTLP's JSON differs from
    protobuf's in one way: ids are hex, not base64; they are converted first."""
    def hex_ids_to_base64(value):
        if isinstance(value, dict):
            return {key: base64.b64encode(bytes.fromhex(item)).decode() if key in ("traceId", "spanId", "parentSpanId")
                    else hex_ids_to_base64(item) for key, item in value.items()}
        if isinstance(value, list):
            return [hex_ids_to_base64(item) for item in value]
        return value
    request = json_format.ParseDict(hex_ids_to_base64(document), ExportTraceServiceRequest())
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                assert len(span.trace_id) == 16 and len(span.span_id) == 8 and len(span.parent_span_id) in (0, 8)
                assert span.end_time_unix_nano >= span.start_time_unix_nano > 0


class Collector:
    """An OTLP/HTTP receiver: keeps every span POSTed to /v1/traces, once
    the export has passed the schema check (a failure answers 400 and is
    kept in `invalid`, which the tests assert empty)."""

    def __init__(self, answer=200):
        self.spans = []
        self.posts = []
        self.invalid = []
        self.answer = answer
        self.lock = threading.Lock()
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:
                    # The node was stopped (a test's teardown kills it) in the
                    # middle of sending this export: a cut-off upload, not a
                    # malformed one. Nothing to answer: the sender is gone.
                    return
                with outer.lock:
                    outer.posts.append((self.path, self.headers["Content-Type"]))
                    try:
                        check_against_the_schema(json.loads(body))
                    except Exception as error:  # noqa: BLE001 - any failure is the finding
                        outer.invalid.append(f"{error}: {body[:500]!r}")
                        return self.send_json(400, {"message": str(error)})
                    if outer.answer == 200:
                        for resource in json.loads(body)["resourceSpans"]:
                            service = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
                            for scope in resource["scopeSpans"]:
                                for span in scope["spans"]:
                                    outer.spans.append({**span, "service": service["service.name"]["stringValue"],
                                                        "attrs": {a["key"]: list(a["value"].values())[0] for a in span.get("attributes", [])}})
                self.send_json(outer.answer, {})

        self.httpd, self.url = local_http(Handler)

    def trace(self, trace_id, until=lambda spans: True, timeout=10):
        """The spans of one trace, once `until` holds for them."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [span for span in self.spans if span["traceId"] == trace_id]
            if until(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def close(self):
        self.httpd.shutdown()
        assert not self.invalid, self.invalid[0]
        assert all(path == "/v1/traces" and kind == "application/json" for path, kind in self.posts), self.posts


def having(*names):
    """Waits for every one of these spans: a parent ends after its children, so one export can hold a child and the next its parent."""
    return lambda found: set(names) <= {span["name"] for span in found}


def named(spans, name):
    matches = [span for span in spans if span["name"] == name]
    assert matches, f"no span {name!r} among {[s['name'] for s in spans]}"
    return matches[0]


def write_config(data_dir, tracing, plugins=None, storage=None):
    config = {"node": {"env": "dev"}, "tracing": tracing, "plugins": plugins or [jwt_plugin()]}
    if storage:
        config["storage"] = storage
    path = data_dir / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def collector():
    instance = Collector()
    yield instance
    instance.close()


@pytest.fixture
def traced(data_dir, collector):
    server = Server(data_dir, config=write_config(data_dir, {"endpoint": collector.url, "flush_ms": 50,
                                                             "service_name": "northstar-test"})).start()
    yield server
    server.kill()


def test_a_post_is_one_server_span_under_the_callers_with_auth_isolation_and_commit_inside(traced, collector):
    thread = traced.post("/v1/threads", json={}, headers=bearer(traced.token())).json()["thread_id"]
    headers = bearer(traced.token(user="bob"))  # a token the node has not seen: the plugin is asked
    posted = traced.post(f"/v1/threads/{thread}/messages", json={"text": "hi"}, headers={**headers, "traceparent": TRACEPARENT})
    assert posted.status_code == 201

    spans = collector.trace(TRACE_ID, until=having("POST /v1/threads/{thread_id}/messages", "auth", "auth.plugin",
                                                   "isolation.check", "store.commit"))
    server = named(spans, "POST /v1/threads/{thread_id}/messages")
    assert server["parentSpanId"] == CALLER_SPAN and server["kind"] == 2 and server["service"] == "northstar-test"
    assert server["attrs"]["http.route"] == "/v1/threads/{thread_id}/messages"
    assert server["attrs"]["http.response.status_code"] == "201" and server["attrs"]["northstar.tenant"] == "t_alpha"
    assert int(server["endTimeUnixNano"]) >= int(server["startTimeUnixNano"]) > 0
    assert "status" not in server  # a success is not an error

    auth = named(spans, "auth")
    plugin = named(spans, "auth.plugin")
    isolation = named(spans, "isolation.check")
    commit = named(spans, "store.commit")
    assert auth["parentSpanId"] == server["spanId"] and plugin["parentSpanId"] == auth["spanId"]
    assert plugin["attrs"]["northstar.plugin"] == "jwt" and auth["attrs"]["northstar.auth_cache"] == "miss"
    assert isolation["parentSpanId"] == server["spanId"] and isolation["attrs"]["northstar.resource_kind"] == "thread"
    assert commit["parentSpanId"] == server["spanId"] and commit["attrs"]["db.system.name"] == "sqlite"
    assert len({span["spanId"] for span in spans}) == len(spans)

    # The event records the server span: each delivery links back to the request.
    events = traced.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"]
    assert events[-1]["trace"] == f"00-{TRACE_ID}-{server['spanId']}-01"
    # No credential or query string leaves in a span.
    token = headers["Authorization"].split()[1]
    assert token not in json.dumps(collector.spans)


def test_without_a_traceparent_the_request_starts_a_trace(traced, collector):
    headers = bearer(traced.token())
    thread = traced.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    traced.post(f"/v1/threads/{thread}/messages", json={"text": "hi"}, headers=headers)
    events = traced.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"]
    _, trace_id, span_id, flags = events[0]["trace"].split("-")
    name = "POST /v1/threads/{thread_id}/messages"
    root = named(collector.trace(trace_id, until=having(name)), name)
    assert "parentSpanId" not in root and root["spanId"] == span_id and flags == "01"


def test_an_unsampled_caller_is_followed_and_nothing_is_exported(traced, collector):
    headers = bearer(traced.token())
    thread = traced.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    unsampled = f"00-{'1' * 32}-{CALLER_SPAN}-00"
    traced.post(f"/v1/threads/{thread}/messages", json={"text": "quiet"}, headers={**headers, "traceparent": unsampled})
    event = traced.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"][-1]
    assert event["trace"].startswith(f"00-{'1' * 32}-") and event["trace"].endswith("-00")
    assert event["trace"].split("-")[2] != CALLER_SPAN  # still a span of this node, just not recorded
    traced.post(f"/v1/threads/{thread}/messages", json={"text": "loud"}, headers={**headers, "traceparent": TRACEPARENT})
    collector.trace(TRACE_ID, until=lambda found: len(found) >= 4)
    assert collector.trace("1" * 32, timeout=0.3) == []


def test_sample_ratio_zero_records_only_what_callers_sampled(data_dir, collector):
    server = Server(data_dir, config=write_config(data_dir, {"endpoint": collector.url, "flush_ms": 50, "sample_ratio": 0})).start()
    try:
        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        server.post(f"/v1/threads/{thread}/messages", json={"text": "root"}, headers=headers)
        server.post(f"/v1/threads/{thread}/messages", json={"text": "sampled"}, headers={**headers, "traceparent": TRACEPARENT})
        root_trace = server.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"][0]["trace"]
        assert root_trace.endswith("-00")  # started here, not sampled: said so downstream
        name = "POST /v1/threads/{thread_id}/messages"
        assert named(collector.trace(TRACE_ID, until=having(name)), name)
        assert {span["traceId"] for span in collector.spans} == {TRACE_ID}
    finally:
        server.kill()


def test_malformed_traceparents_start_a_new_trace(traced, collector):
    headers = bearer(traced.token())
    thread = traced.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for bad in ["garbage", f"00-{'0' * 32}-{CALLER_SPAN}-01", f"00-{TRACE_ID}-{'0' * 16}-01",
                f"01-{TRACE_ID}-{CALLER_SPAN}-01", TRACEPARENT.upper()]:
        assert traced.post(f"/v1/threads/{thread}/messages", json={"text": bad},
                           headers={**headers, "traceparent": bad}).status_code == 201
    traces = {event["trace"].split("-")[1] for event in traced.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"]}
    assert TRACE_ID not in traces and "0" * 32 not in traces and len(traces) == 5


def test_refusals_are_traced_and_only_5xx_is_an_error(traced, collector):
    missing = traced.get(f"/v1/threads/th_{'a' * 26}", headers={**bearer(traced.token()), "traceparent": TRACEPARENT})
    assert missing.status_code == 404
    spans = collector.trace(TRACE_ID, until=having("GET /v1/threads/{thread_id}", "isolation.check"))
    server = named(spans, "GET /v1/threads/{thread_id}")
    assert server["attrs"]["http.response.status_code"] == "404" and server["attrs"]["northstar.error_code"] == "not_found"
    assert "status" not in server
    isolation = named(spans, "isolation.check")
    assert isolation["status"]["code"] == 2 and isolation["status"]["message"] == "not_found"
    assert isolation["events"][0]["name"] == "exception"

    unauthenticated = traced.get(f"/v1/threads/th_{'a' * 26}", headers={"traceparent": f"00-{'2' * 32}-{CALLER_SPAN}-01"})
    assert unauthenticated.status_code == 401
    spans = collector.trace("2" * 32, until=having("auth"))
    assert named(spans, "auth")["status"]["code"] == 2


def test_a_plugins_outbound_fetch_carries_the_trace(data_dir, collector):
    keys = KeyServer()
    keys.keys = []  # nothing at start: the first token's kid makes the plugin fetch, inside the request
    seen = []
    handler = keys.httpd.RequestHandlerClass
    original = handler.do_GET

    def recording(self):
        seen.append(self.headers.get("traceparent"))
        original(self)
    handler.do_GET = recording
    plugin = {"name": "jwt", "path": "libNorthstarJWT.so", "config": {
        "jwks_url": keys.url, "jwks_algorithms": ["RS256"], "jwks_min_refresh_seconds": 0,
        "issuer": "northstar-dev", "audience": "northstar"}}
    server = Server(data_dir, config=write_config(data_dir, {"endpoint": collector.url, "flush_ms": 50}, plugins=[plugin])).start()
    try:
        keys.keys = [jwk(K1, "k1")]
        token = sign_rs(K1, dev_claims(), kid="k1")
        answer = server.get(f"/v1/threads/th_{'a' * 26}", headers={"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT})
        assert answer.status_code == 404
        assert seen[-1] is not None and seen[-1].startswith(f"00-{TRACE_ID}-")
        spans = collector.trace(TRACE_ID, until=having("http_fetch GET", "auth.plugin"))
        fetch = named(spans, "http_fetch GET")
        assert seen[-1] == f"00-{TRACE_ID}-{fetch['spanId']}-01"
        assert fetch["kind"] == 3 and fetch["parentSpanId"] == named(spans, "auth.plugin")["spanId"]
        assert fetch["attrs"]["server.address"] == "127.0.0.1" and fetch["attrs"]["http.response.status_code"] == "200"
        assert seen[0] is None  # the fetch at start belongs to no request
    finally:
        server.kill()
        keys.close()


def test_storage_calls_are_spans_and_s3_requests_carry_the_trace(data_dir, collector):
    backend = S3Backend(data_dir)
    server = Server(data_dir, config=write_config(data_dir, {"endpoint": collector.url, "flush_ms": 50},
                                                  plugins=[jwt_plugin(), backend.plugin()])).start()
    try:
        uploaded = server.post("/v1/artifacts?filename=a.bin", data=b"x" * 1000,
                               headers={**bearer(server.token()), "traceparent": TRACEPARENT,
                                        "Content-Type": "application/octet-stream"})
        assert uploaded.status_code == 201, uploaded.text
        spans = collector.trace(TRACE_ID, until=lambda found: having("POST /v1/artifacts", "storage.put_open", "storage.put_finish")(found)
                                and any(s["name"].startswith("http_fetch") for s in found))
        server_span = named(spans, "POST /v1/artifacts")
        storage = [span for span in spans if span["name"].startswith("storage.")]
        assert {span["name"] for span in storage} >= {"storage.put_open", "storage.put_finish"}
        assert all(span["parentSpanId"] == server_span["spanId"] and span["attrs"]["northstar.storage_backend"] == "s3"
                   for span in storage)
        # The plugin works in a task of its own; its requests still belong to the storage span that caused them.
        fetches = [span for span in spans if span["name"].startswith("http_fetch")]
        assert fetches and all(span["parentSpanId"] in {s["spanId"] for s in storage} for span in fetches)
    finally:
        server.kill()
        backend.stop()


def test_spans_of_the_last_requests_leave_when_the_node_stops(data_dir, collector):
    server = Server(data_dir, config=write_config(data_dir, {"endpoint": collector.url, "flush_ms": 60000})).start()
    server.post("/v1/threads", json={}, headers={**bearer(server.token()), "traceparent": TRACEPARENT})
    time.sleep(0.3)
    assert collector.trace(TRACE_ID, timeout=0) == []  # a minute to the next flush
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)
    assert named(collector.trace(TRACE_ID, timeout=5), "POST /v1/threads")


@pytest.mark.parametrize("answer", [None, 500])
def test_a_collector_down_or_refusing_costs_requests_nothing_and_is_counted(data_dir, answer):
    collector = Collector(answer=answer or 200)
    endpoint = collector.url
    if answer is None:
        collector.close()  # nothing listens there now
    server = Server(data_dir, config=write_config(data_dir, {"endpoint": endpoint, "flush_ms": 50})).start()
    try:
        headers = bearer(server.token())
        for _ in range(5):
            assert server.post("/v1/threads", json={}, headers=headers).status_code == 201
        expected = "dropped_unreachable" if answer is None else "dropped_refused"
        deadline = time.monotonic() + 10
        while f'northstar_trace_spans_total{{result="{expected}"}}' not in server.get("/metrics").text:
            assert time.monotonic() < deadline, server.get("/metrics").text
            time.sleep(0.1)
        server.stop()
        assert server.log_text().count("spans dropped") == 1  # once a minute, not once a batch
    finally:
        server.kill()
        if answer:
            collector.close()


def test_the_queue_is_bounded(data_dir):
    collector = Collector()
    server = Server(data_dir, config=write_config(data_dir, {"endpoint": collector.url, "flush_ms": 60000, "max_queue": 3})).start()
    try:
        headers = bearer(server.token())
        for _ in range(3):
            server.post("/v1/threads", json={}, headers=headers)
        metrics = server.get("/metrics").text
        assert 'northstar_trace_spans_total{result="dropped_queue_full"}' in metrics
    finally:
        server.kill()
        collector.close()


@pytest.mark.parametrize("tracing, key", [
    ({"endpoint": "ftp://127.0.0.1:4318"}, "tracing.endpoint"),
    ({"endpoint": "http://127.0.0.1:4318?x=1"}, "tracing.endpoint"),
    ({"endpoint": "not a url"}, "tracing.endpoint"),
    ({"endpoint": "http://127.0.0.1:4318", "sample_ratio": 1.5}, "tracing.sample_ratio"),
    ({"endpoint": "http://127.0.0.1:4318", "sample_ratio": "all"}, "tracing.sample_ratio"),
    ({"endpoint": "http://127.0.0.1:4318", "flush_ms": 0}, "tracing.flush_ms"),
    ({"endpoint": "http://127.0.0.1:4318", "max_queue": 0}, "tracing.max_queue"),
    ({"endpoint": "http://127.0.0.1:4318", "service_name": ""}, "tracing.service_name"),
    ({"endpoint": "http://127.0.0.1:4318", "exporter": "zipkin"}, "tracing.exporter"),
    ({"service_name": "northstar"}, "tracing.endpoint"),
    ("on", "tracing"),
])
def test_bad_tracing_config_is_refused_with_the_key(data_dir, tracing, key):
    result = northstar("config", "check", "--config", write_config(data_dir, tracing))
    assert result.returncode != 0 and key in result.stderr, result.stderr
