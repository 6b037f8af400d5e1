"""`/metrics` on swift-metrics, exported by swift-prometheus: request
durations by route template, commit and fsync durations and batch sizes,
commit-to-socket delivery latency per transport, plugin and storage call
durations and errors, refusals by reason, and gauges read at scrape time.
Labels stay bounded: no tenant, stream, thread or user id ever becomes one."""
import json
import re

from conftest import Server, bearer, dev_claims, dev_secret, sign_hs
from sse_client import SSEStream
from storage_backends import FSBackend, jwt_plugin


def write_config(data_dir, backend):
    """The dev jwt auth, the sse transport and `backend` for artifacts."""
    config = data_dir / "config.json"
    config.write_text(json.dumps({"plugins": [jwt_plugin(), {"name": "sse", "path": "libNorthstarSSE.so", "config": {}},
                                              backend.plugin()]}))
    return config


def samples(text, name):
    """{labels: value} of every sample of `name` (a histogram's _count, say)."""
    found = {}
    for labels, value in re.findall(rf"^{re.escape(name)}(\{{.*\}})? (\S+)$", text, flags=re.M):
        found[labels] = float(value)
    return found


def test_histograms_counters_and_gauges_cover_the_hot_paths(data_dir):
    backend = FSBackend(data_dir)
    server = Server(data_dir, config=write_config(data_dir, backend)).start()
    try:
        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        stream = SSEStream(server.port, f"/sse/chat/{thread}", headers)
        for index in range(5):
            assert server.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers).status_code == 201
        assert len(stream.events(5)) == 5
        upload = server.post("/v1/artifacts?filename=a.bin", data=b"x" * 5000,
                             headers={**headers, "Content-Type": "application/octet-stream"})
        assert upload.status_code == 201
        secret = dev_secret(data_dir)
        assert server.get(f"/v1/threads/{thread}", headers={"Authorization": "Bearer nonsense"}).status_code == 401
        assert server.get(f"/v1/threads/{thread}", headers=bearer(sign_hs(secret, dev_claims(env="prod")))).status_code == 401
        assert server.get(f"/v1/threads/{thread}").status_code == 401
        for index in range(20):  # paths no route matches: one label, not twenty
            assert server.get(f"/no/such/path/{index}").status_code == 404
        text = server.get("/metrics").text
        stream.close()

        durations = samples(text, "northstar_http_request_duration_seconds_count")
        assert durations['{route="/v1/threads/{thread_id}/messages",method="POST",status="201"}'] == 5
        assert durations['{route="unmatched",method="GET",status="404"}'] == 20
        assert any('route="/sse/chat/{thread_id}"' in labels for labels in durations)
        assert 'northstar_http_request_duration_seconds_bucket{route="/v1/threads/{thread_id}/messages",method="POST",status="201",le="0.001"}' in text
        assert samples(text, "northstar_commit_duration_seconds_count")[""] >= 6
        assert samples(text, "northstar_commit_fsync_duration_seconds_count")[""] >= 6
        assert samples(text, "northstar_commit_batch_size_count")[""] >= 6
        assert samples(text, "northstar_delivery_latency_seconds_count")['{transport="sse"}'] == 5
        # One verification of the good token (then remembered), one of each refused one.
        assert samples(text, "northstar_plugin_call_duration_seconds_count")['{plugin="jwt",entry="verify"}'] == 3
        assert samples(text, "northstar_auth_cache_total")['{result="hit"}'] >= 7
        storage = samples(text, "northstar_storage_call_duration_seconds_count")
        assert storage['{backend="fs",operation="put_open"}'] == 1 and storage['{backend="fs",operation="put_finish"}'] == 1
        refusals = samples(text, "northstar_auth_rejections_total")
        assert refusals['{reason="rejected"}'] == 1 and refusals['{reason="wrong_env"}'] == 1 and refusals['{reason="missing"}'] == 1
        # The names dashboards already use are kept.
        assert samples(text, "northstar_events_appended_total")['{type="chat.message"}'] == 5
        assert samples(text, "northstar_http_requests_total")['{status="404"}'] == 20
        gauges = {name: samples(text, name)[""] for name in ["northstar_live_subscribers", "northstar_streams_with_subscribers",
                                                            "northstar_connections_open", "northstar_websockets_open",
                                                            "northstar_transport_exchanges_open"]}
        assert gauges["northstar_live_subscribers"] == 1 and gauges["northstar_streams_with_subscribers"] == 1
        assert gauges["northstar_connections_open"] >= 1 and gauges["northstar_websockets_open"] == 0
        # Bounded labels: no id of a tenant, thread or user anywhere.
        assert thread not in text and "t_alpha" not in text and "alice" not in text
    finally:
        server.stop()


def test_storage_failures_are_counted_by_backend_operation_and_code(data_dir):
    backend = FSBackend(data_dir)
    server = Server(data_dir, config=write_config(data_dir, backend)).start()
    try:
        headers = bearer(server.token())
        assert server.get("/v1/artifacts/as_" + "a" * 26 + "/missing.bin", headers=headers).status_code == 404
        text = server.get("/metrics").text
        errors = samples(text, "northstar_storage_errors_total")
        assert any('code="not_found"' in labels and 'backend="fs"' in labels for labels in errors), errors
    finally:
        server.stop()
