"""A drain for rolling deploys: after SIGTERM the node keeps serving with
`/readyz` at 503 for `node.drain_seconds`, so a load balancer stops sending
before any connection is refused; then live streams end with where to
resume, the listener closes, and the node exits within the deadline."""
import json
import signal
import threading
import time

import requests

from conftest import ROOT, Server, bearer, northstar
from sse_client import SSEStream


def drained_server(data_dir, drain_seconds, deadline=5):
    """The dev default config with the drain keys set."""
    document = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
    document["node"].update({"drain_seconds": drain_seconds, "drain_deadline_seconds": deadline})
    config = data_dir / "config.json"
    config.write_text(json.dumps(document))
    return Server(data_dir, config).start()


def test_during_the_drain_readyz_is_503_and_every_request_is_still_served(data_dir):
    server = drained_server(data_dir, drain_seconds=3)
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    stream = SSEStream(server.port, f"/sse/chat/{thread}", headers)
    assert server.get("/readyz").status_code == 200

    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    deadline = signalled + 1
    while server.get("/readyz").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.get("/readyz").status_code == 503

    # New connections, each its own: a load balancer that has not noticed yet.
    answers, errors = [], []
    while time.monotonic() - signalled < 2.2:
        try:
            answers.append(requests.post(f"{server.url}/v1/threads/{thread}/messages", json={"text": "late"},
                                         headers=headers, timeout=5).status_code)
        except requests.RequestException as error:
            errors.append(repr(error))
        time.sleep(0.05)
    assert not errors and answers and set(answers) == {201}, (errors, answers)
    # The open stream still got those messages, live, during the drain.
    assert len(stream.events(len(answers))) == len(answers)

    # Then the stream ends with where to resume, and the node exits.
    frame = stream.frame()
    ended = time.monotonic() - signalled
    assert frame["event"] == "stream.end"
    end = json.loads(frame["data"])
    assert end["reason"] == "server_closed" and end["last_seq"] == len(answers)
    assert ended >= 2.5, f"streams ended {ended:.1f} s after SIGTERM, before the drain was over"
    stream.close()
    assert server.process.wait(timeout=15) == 0
    log = server.log_text()
    assert "draining: /readyz answers 503" in log and "closing: live streams end" in log


def test_without_a_drain_period_the_node_stops_at_once(data_dir):
    server = drained_server(data_dir, drain_seconds=0)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 5
    assert "draining: /readyz answers 503" not in server.log_text()


def test_a_second_signal_during_the_drain_does_not_cut_it_short_or_crash(data_dir):
    server = drained_server(data_dir, drain_seconds=2)
    headers = bearer(server.token())
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert server.post("/v1/threads", json={}, headers=headers).status_code == 201
    assert server.process.wait(timeout=20) == 0


def test_config_refuses_a_bad_drain_period(data_dir):
    for value in (-1, 601, "ten", 1.5):
        path = data_dir / "config.json"
        path.write_text(json.dumps({"node": {"drain_seconds": value}}))
        result = northstar("config", "check", "--config", path, "--data-dir", data_dir)
        assert result.returncode != 0 and "node.drain_seconds" in result.stderr, result.stderr
