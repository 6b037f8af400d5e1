"""`/metrics` on swift-metrics, exported by swift-prometheus: request
durations by route template, commit and fsync durations and batch sizes,
commit-to-socket delivery latency per transport, plugin and storage call
durations and errors, refusals by reason, and gauges read at scrape time.
Labels stay bounded: no tenant, stream, thread or user id ever becomes one."""
import json
import re
import socket
import time

from conftest import Server, bearer, dev_claims, dev_secret, northstar, sign_hs, wait_for
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
        # The stream counts as live once its catch-up has read the log to the end.
        assert wait_for(lambda: samples(server.get("/metrics").text, "northstar_live_subscribers")[""] == 1)
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
                                                            "northstar_transport_exchanges_open",
                                                            "northstar_store_reads_waiting"]}
        assert gauges["northstar_live_subscribers"] == 1 and gauges["northstar_streams_with_subscribers"] == 1
        assert gauges["northstar_store_reads_waiting"] == 0  # every read answered
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


def test_queued_bytes_show_a_client_that_stopped_reading(data_dir):
    config = data_dir / "config.json"
    config.write_text(json.dumps({"limits": {"send_queue_bytes": 1 << 20},
                                  "plugins": [jwt_plugin(), {"name": "sse", "path": "libNorthstarSSE.so", "config": {}}]}))
    server = Server(data_dir, config=config).start()
    stalled = socket.socket()
    try:
        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        gauges = lambda: {name: samples(server.get("/metrics").text, name)[""]
                          for name in ["northstar_connections_queueing", "northstar_connection_queued_bytes_max",
                                       "northstar_connections_queued_bytes"]}
        assert set(gauges().values()) == {0}
        # A subscriber with a tiny receive buffer that never reads.
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n\r\n".encode())
        reader = SSEStream(server.port, f"/sse/chat/{thread}", headers)  # one that reads, for contrast
        big = "x" * 8000
        now = gauges()
        for index in range(400):  # well before the 768 KiB the queue may hold past the socket's share
            assert server.write(f"/v1/threads/{thread}/messages", json={"text": big}, headers=headers).status_code == 201
            if index % 5 == 4:
                reader.events(5)
                now = gauges()
                if now["northstar_connections_queueing"]:
                    break
        assert now["northstar_connections_queueing"] == 1, now
        assert 0 < now["northstar_connection_queued_bytes_max"] == now["northstar_connections_queued_bytes"] <= 768 * 1024
        stalled.close()
        reader.close()
        deadline = time.monotonic() + 10
        while any(gauges().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(gauges().values()) == {0}
    finally:
        stalled.close()
        server.stop()


def test_per_tenant_counts_are_opt_in_and_capped(data_dir):
    config = data_dir / "config.json"
    config.write_text(json.dumps({"metrics": {"per_tenant": True, "max_tenants": 2}, "plugins": [jwt_plugin()]}))
    server = Server(data_dir, config=config).start()
    try:
        for tenant, requests in [("t_alpha", 3), ("t_beta", 2), ("t_gamma", 1), ("t_delta", 1), ("t_alpha", 1)]:
            headers = bearer(server.token(tenant=tenant))
            for _ in range(requests):
                assert server.post("/v1/threads", json={}, headers=headers).status_code == 201
        refused = server.get("/v1/threads/th_" + "a" * 26, headers=bearer(server.token(tenant="t_beta")))
        assert refused.status_code == 404
        counts = samples(server.get("/metrics").text, "northstar_tenant_requests_total")
        assert counts == {'{tenant="t_alpha",status="201"}': 4, '{tenant="t_beta",status="201"}': 2,
                          '{tenant="other",status="201"}': 2, '{tenant="t_beta",status="404"}': 1}, counts
    finally:
        server.stop()


def test_per_tenant_settings_are_checked(data_dir):
    for metrics, key in [({"per_tenant": "yes"}, "metrics.per_tenant"), ({"max_tenants": 0}, "metrics.max_tenants"),
                         ({"max_tenants": 10_001}, "metrics.max_tenants"), ({"tenants": 5}, "metrics.tenants")]:
        config = data_dir / "bad.json"
        config.write_text(json.dumps({"metrics": metrics}))
        result = northstar("config", "check", "--config", config, "--data-dir", data_dir)
        assert result.returncode != 0 and key in result.stderr, (metrics, result.stderr)
