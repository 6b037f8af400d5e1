"""Graft end to end: a gesture drawn over WebSocket is seen live by a
second client on the canvas (WS and SSE), replayed later over SSE and WS at
its original pace scaled by speed (checked on the real clock within a
tolerance), paused and resumed, exported at once; isolation on every route
and transport; bad samples and options refused with nothing stored; a
100,000-sample recording replays in bounded memory."""
import json
import subprocess
import time

import jsonschema
import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import Server, bearer, dev_claims, dev_secret, load_schema, sign_hs
from sse_client import SSEStream

EVENT_SCHEMA = load_schema("stream-event.v1.json")


def ws_url(server, path):
    return f"ws://127.0.0.1:{server.port}{path}"


def request(socket, message):
    socket.send(json.dumps(message))
    while True:
        answer = json.loads(socket.recv(timeout=10))
        if answer.get("id") == message.get("id") and answer.get("type") not in ("event", "gap"):
            return answer


def stroke(count, step_ms, pointer=1):
    """A down, count-2 moves, an up, every step_ms."""
    samples = [{"t_ms": 0, "x": 0, "y": 0, "pointer": pointer, "phase": "down", "pressure": 0.5}]
    samples += [{"t_ms": step_ms * i, "x": i, "y": i * 2, "pointer": pointer, "phase": "move"} for i in range(1, count - 1)]
    samples.append({"t_ms": step_ms * (count - 1), "x": count, "y": count, "pointer": pointer, "phase": "up"})
    return samples


def drawn(server, headers, samples, batch=1000):
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    gesture = server.post(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"]
    for start in range(0, len(samples), batch):
        answer = server.post(f"/v1/canvases/{canvas}/gestures/{gesture}/samples", json={"samples": samples[start:start + batch]},
                             headers=headers)
        assert answer.status_code == 200, answer.text
    assert server.post(f"/v1/canvases/{canvas}/gestures/{gesture}/end", headers=headers).status_code == 200
    return canvas, gesture


def test_a_gesture_drawn_over_ws_is_seen_live_by_a_watcher(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    sse = SSEStream(server.port, f"/sse/canvas/{canvas}", headers)
    with connect(ws_url(server, "/ws"), additional_headers=headers) as watcher, \
         connect(ws_url(server, "/ws"), additional_headers=headers) as artist:
        assert request(watcher, {"type": "subscribe", "id": "w", "stream": f"canvas:{canvas}"})["type"] == "subscribed"
        started = request(artist, {"type": "gesture.start", "id": 1, "canvas_id": canvas})
        assert started["type"] == "ack" and started["status"] == 201 and started["op"] == "gesture.start"
        gesture = started["result"]["gesture_id"]
        for part in (stroke(6, 16)[:3], stroke(6, 16)[3:]):
            ack = request(artist, {"type": "gesture.samples", "id": 2, "gesture_id": gesture, "samples": part})
            assert ack["type"] == "ack" and ack["op"] == "gesture.samples" and ack["result"]["gesture"]["sample_count"] in (3, 6)
        bad = request(artist, {"type": "gesture.samples", "id": "bad", "gesture_id": gesture,
                               "samples": [{"t_ms": 90, "x": 1, "y": 1, "pointer": 7, "phase": "move"}]})
        assert bad["type"] == "error" and bad["status"] == 400 and bad["error"]["code"] == "invalid_sample"
        assert request(artist, {"type": "gesture.samples", "id": "none", "gesture_id": gesture})["error"]["code"] == "missing_field"
        ended = request(artist, {"type": "gesture.end", "id": 3, "gesture_id": gesture})
        assert ended["result"]["state"] == "ended" and ended["result"]["duration_ms"] == 80
        seen = [json.loads(watcher.recv(timeout=10))["event"] for _ in range(4)]
    assert [e["type"] for e in seen] == ["gesture.started", "gesture.samples", "gesture.samples", "gesture.ended"]  # nothing of the refused batch
    for event in seen:
        jsonschema.validate(event, EVENT_SCHEMA)
    assert [s["t_ms"] for e in seen[1:3] for s in e["data"]["samples"]] == [0, 16, 32, 48, 64, 80]
    assert [e["json"]["type"] for e in sse.events(4)] == [e["type"] for e in seen]  # the same events over SSE
    sse.close()
    listed = server.get(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gestures"]
    assert [(g["gesture_id"], g["sample_count"], g["pointer_count"], g["duration_ms"]) for g in listed] == [(gesture, 6, 1, 80)]


def test_sse_replay_keeps_the_original_pace_scaled_by_speed(server):
    headers = bearer(server.token())
    samples = stroke(11, 100)  # one second
    _, gesture = drawn(server, headers, samples)
    for speed in (1, 2):
        stream = SSEStream(server.port, f"/sse/gestures/{gesture}?speed={speed}", headers)
        arrivals = []
        for _ in range(11):
            event = stream.events(1)[0]
            arrivals.append((time.monotonic(), event["json"]))
        end = stream.frame()
        assert end["event"] == "stream.end" and json.loads(end["data"])["reason"] == "complete"
        stream.close()
        first = arrivals[0][0]
        for (arrived, event), sample in zip(arrivals, samples):
            jsonschema.validate(event, EVENT_SCHEMA)
            assert event["type"] == "gesture.sample" and event["data"]["t_ms"] == sample["t_ms"]
            expected = sample["t_ms"] / speed / 1000
            assert abs((arrived - first) - expected) < 0.08, (speed, sample["t_ms"], arrived - first)
    # From an offset: the first sample at or after from_ms starts the clock.
    late = SSEStream(server.port, f"/sse/gestures/{gesture}?speed=4&from_ms=550", headers)
    assert [e["json"]["data"]["t_ms"] for e in late.events(5)] == [600, 700, 800, 900, 1000]
    late.close()
    # pace=none: everything at once, for export; Last-Event-ID resumes after a sample.
    started = time.monotonic()
    export = SSEStream(server.port, f"/sse/gestures/{gesture}?pace=none", {**headers, "Last-Event-ID": "8"})
    assert [e["json"]["seq"] for e in export.events(3)] == [9, 10, 11]
    assert time.monotonic() - started < 0.5
    export.close()
    # A browser's EventSource sends its token in the query: it never reaches the replay's options.
    token = headers["Authorization"].split()[1]
    browser = SSEStream(server.port, f"/sse/gestures/{gesture}?access_token={token}&pace=none&last_event_id=10")
    assert browser.status == 200 and [e["json"]["seq"] for e in browser.events(1)] == [11]
    browser.close()
    # `after`, as the REST API and WebSocket name it, resumes too (it is not a replay option).
    resumed = SSEStream(server.port, f"/sse/gestures/{gesture}?pace=none&after=9", headers)
    assert resumed.status == 200 and [e["json"]["seq"] for e in resumed.events(2)] == [10, 11]
    resumed.close()


def test_ws_replay_pauses_and_resumes_without_loss(server):
    headers = bearer(server.token())
    _, gesture = drawn(server, headers, stroke(11, 100))
    with connect(ws_url(server, "/ws"), additional_headers=headers) as socket:
        assert request(socket, {"type": "replay", "id": "r", "gesture_id": gesture, "speed": 1})["type"] == "subscribed"
        seqs = []
        while len(seqs) < 3:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "event":
                seqs.append(message["event"]["seq"])
        socket.send(json.dumps({"type": "replay.pause", "id": "p", "gesture_id": gesture}))
        paused = None
        while paused is None:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "event":
                seqs.append(message["event"]["seq"])  # sent before the pause took effect
            elif message["type"] == "paused":
                paused = message
        assert paused["last_seq"] == seqs[-1]
        time.sleep(0.4)
        with pytest.raises(TimeoutError):
            socket.recv(timeout=0.3)  # nothing while paused
        resumed_at = time.monotonic()
        assert request(socket, {"type": "replay.resume", "id": "q", "gesture_id": gesture})["type"] == "subscribed"
        while True:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "event":
                seqs.append(message["event"]["seq"])
            elif message["type"] == "end":
                assert message["code"] == "complete" and message["last_seq"] == 11
                break
        assert seqs == list(range(1, 12))
        remaining = (11 - paused["last_seq"] - 1) * 0.1
        assert time.monotonic() - resumed_at >= remaining - 0.05  # the pace is kept after the resume
        assert request(socket, {"type": "replay.resume", "id": "z", "gesture_id": gesture})["error"]["code"] == "not_paused"
        assert request(socket, {"type": "replay.pause", "id": "y", "gesture_id": gesture})["error"]["code"] == "not_replaying"


def test_isolation_on_every_gesture_route_and_transport(server):
    owner = bearer(server.token())
    canvas, gesture = drawn(server, owner, stroke(4, 10))
    other = bearer(server.token(tenant="t_beta"))
    missing = "gs_" + "a" * 26
    routes = [("GET", f"/v1/canvases/{canvas}/gestures/{{g}}"), ("POST", f"/v1/canvases/{canvas}/gestures/{{g}}/samples"),
              ("POST", f"/v1/canvases/{canvas}/gestures/{{g}}/end")]
    body = {"samples": [{"t_ms": 1, "x": 1, "y": 1, "pointer": 5, "phase": "down"}]}
    for method, path in routes:
        theirs = requests.request(method, server.url + path.format(g=gesture), headers=other, json=body)
        nothing = requests.request(method, server.url + path.format(g=missing), headers=other, json=body)
        assert theirs.status_code == 404 and theirs.json() == nothing.json(), (method, path)
    assert server.get(f"/v1/canvases/{canvas}/gestures", headers=other).status_code == 404
    assert server.post(f"/v1/canvases/{canvas}/gestures", headers=other).status_code == 404
    # Another canvas of the same tenant is not the gesture's canvas either.
    elsewhere = server.post("/v1/canvases", json={}, headers=owner).json()["canvas_id"]
    assert server.get(f"/v1/canvases/{elsewhere}/gestures/{gesture}", headers=owner).status_code == 404
    secret = dev_secret(server.data_dir)
    for headers, status in [({}, 401), (bearer(sign_hs(secret, dev_claims(exp=1_600_000_000, iat=1_599_990_000))), 401),
                            (bearer(sign_hs(b"x" * 40, dev_claims())), 401), (bearer(server.token(env="staging")), 401),
                            (other, 404), (bearer(server.token(scopes="chat:read")), 403)]:
        stream = SSEStream(server.port, f"/sse/gestures/{gesture}", headers)
        assert stream.status == status
        stream.close()
        assert server.get(f"/v1/canvases/{canvas}/gestures/{gesture}", headers=headers).status_code == status
    theirs_sse = SSEStream(server.port, f"/sse/gestures/{gesture}", other)
    missing_sse = SSEStream(server.port, f"/sse/gestures/{missing}", other)
    assert theirs_sse.error_body() == missing_sse.error_body()
    with connect(ws_url(server, "/ws"), additional_headers=other) as intruder:
        for message in ({"type": "replay", "id": 1, "gesture_id": gesture},
                        {"type": "subscribe", "id": 2, "stream": f"gesture:{gesture}"}):
            answer = request(intruder, message)
            assert answer["type"] == "error" and answer["error"]["code"] == "not_found"
        appended = request(intruder, {"type": "gesture.samples", "id": 3, "gesture_id": gesture, "samples": body["samples"]})
        assert appended["status"] == 404
    assert server.get(f"/v1/canvases/{canvas}/gestures/{gesture}", headers=owner).json()["sample_count"] == 4


def test_bad_samples_and_options_are_refused_and_nothing_is_stored(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    gesture = server.post(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"]
    path = f"/v1/canvases/{canvas}/gestures/{gesture}/samples"
    ok = server.post(path, json={"samples": stroke(3, 10)[:2]}, headers=headers)
    assert ok.status_code == 200
    raw = [b'{"samples":[{"t_ms":30,"x":NaN,"y":1,"pointer":1,"phase":"move"}]}',
           b'{"samples":[{"t_ms":30,"x":Infinity,"y":1,"pointer":1,"phase":"move"}]}',
           b'{"samples":[{"t_ms":30,"x":1e999,"y":1,"pointer":1,"phase":"move"}]}']
    for body in raw:
        answer = server.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"]["code"] in ("invalid_json", "invalid_sample"), body
    cases = [
        ([{"t_ms": 5, "x": 1, "y": 1, "pointer": 1, "phase": "move"}], 400, "invalid_sample"),      # time goes back
        ([{"t_ms": 30, "x": 1, "y": 1, "pointer": 1, "phase": "hover"}], 400, "invalid_sample"),    # unknown phase
        ([{"t_ms": 30, "x": 1, "y": 1, "pointer": 2, "phase": "move"}], 400, "invalid_sample"),     # move before down
        ([{"t_ms": 30, "x": "1", "y": 1, "pointer": 1, "phase": "move"}], 400, "invalid_sample"),
        ([{"t_ms": 30, "x": 1, "y": 1, "pointer": 1, "phase": "move"}] * 1001, 413, "batch_too_large"),
    ]
    for samples, status, code in cases:
        answer = server.post(path, json={"samples": samples}, headers=headers)
        assert answer.status_code == status and answer.json()["error"]["code"] == code, (samples[:1], answer.text)
    assert server.post(path, json={"wrong": []}, headers=headers).json()["error"]["code"] == "missing_field"
    assert server.get(f"/v1/canvases/{canvas}/gestures/{gesture}", headers=headers).json()["sample_count"] == 2
    assert server.post(f"/v1/canvases/{canvas}/gestures/{gesture}/end", headers=headers).status_code == 200
    late = server.post(path, json={"samples": [{"t_ms": 40, "x": 1, "y": 1, "pointer": 1, "phase": "up"}]}, headers=headers)
    assert late.status_code == 409 and late.json()["error"]["code"] == "gesture_ended"
    assert server.post(f"/v1/canvases/{canvas}/gestures/{gesture}/end", headers=headers).status_code == 409
    ahead = server.post(f"/v1/canvases/{canvas}/gestures", json={"base_rev": 5}, headers=headers)
    assert ahead.status_code == 422 and ahead.json()["error"]["code"] == "base_rev_ahead"
    for query, code in [("speed=0.05", "invalid_speed"), ("speed=17", "invalid_speed"), ("speed=abc", "invalid_speed"),
                        ("speed=nan", "invalid_speed"), ("from_ms=-1", "invalid_from_ms"), ("from_ms=999999", "invalid_from_ms"),
                        ("pace=slow", "invalid_pace"), ("volume=11", "invalid_replay_option"),
                        ("token=abc", "invalid_replay_option"), ("speed=1&speed=2", "invalid_replay_option")]:
        stream = SSEStream(server.port, f"/sse/gestures/{gesture}?{query}", headers)
        assert stream.status == 400 and code in json.dumps(stream.error_body()), query
        stream.close()
    past = SSEStream(server.port, f"/sse/gestures/{gesture}", {**headers, "Last-Event-ID": "3"})
    assert past.status == 400
    past.close()


def test_a_100000_sample_recording_replays_in_bounded_memory(server):
    headers = bearer(server.token())
    samples = [{"t_ms": 0, "x": 0, "y": 0, "pointer": 1, "phase": "down"}]
    samples += [{"t_ms": i, "x": i % 500, "y": i % 300, "pointer": 1, "phase": "move"} for i in range(1, 99_999)]
    samples.append({"t_ms": 99_999, "x": 0, "y": 0, "pointer": 1, "phase": "up"})
    _, gesture = drawn(server, headers, samples)
    rss = lambda: int(subprocess.run(["ps", "-o", "rss=", "-p", str(server.process.pid)], capture_output=True, text=True).stdout)
    before = rss()
    started = time.monotonic()
    curl = subprocess.run(["curl", "-sN", "--max-time", "120", "-H", f"Authorization: {headers['Authorization']}",
                           f"{server.url}/sse/gestures/{gesture}?pace=none"], capture_output=True, text=True)
    ids = [line for line in curl.stdout.splitlines() if line.startswith("id: ")]
    assert len(ids) == 100_000 and ids[0] == "id: 1" and ids[-1] == "id: 100000"
    assert '"reason":"complete"' in curl.stdout
    assert rss() - before < 60_000  # KiB: pages of batches, never the whole recording
    assert time.monotonic() - started < 90


def test_ws_replay_route_plays_then_closes_and_refuses_bad_options(server):
    headers = bearer(server.token())
    _, gesture = drawn(server, headers, stroke(5, 100))
    started = time.monotonic()
    with connect(ws_url(server, f"/ws/gestures/{gesture}?speed=4"), additional_headers=headers) as socket:
        events = [json.loads(socket.recv(timeout=10)) for _ in range(6)]
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=5)  # closed by the server, not a timeout
        assert socket.close_code == 1000
    assert [m["event"]["seq"] for m in events[:5]] == [1, 2, 3, 4, 5]
    assert events[5]["type"] == "end" and events[5]["code"] == "complete"
    assert 0.08 < time.monotonic() - started < 3  # 400 ms of drawing at speed 4
    from websockets.exceptions import InvalidStatus
    for path, status, code in [(f"/ws/gestures/{gesture}?speed=99", 400, "invalid_speed"),
                               (f"/ws/gestures/{gesture}?from_ms=5000", 400, "invalid_from_ms"),
                               (f"/ws/gestures/gs_{'b' * 26}", 404, "not_found")]:
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(server, path), additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == status
        assert json.loads(bytes(refused.value.response.body))["error"]["code"] == code
    with pytest.raises(InvalidStatus) as other:
        connect(ws_url(server, f"/ws/gestures/{gesture}"), additional_headers=bearer(server.token(tenant="t_beta")), open_timeout=10)
    assert other.value.response.status_code == 404


def test_the_gesture_list_pages_oldest_first_and_refuses_a_foreign_after(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    made = [server.post(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"] for _ in range(5)]
    url = f"/v1/canvases/{canvas}/gestures"
    # Pages of two: 2, 2, 1, then an empty one; together every gesture once, oldest first.
    after, pages = None, []
    while True:
        page = server.get(url, params={"limit": 2, **({"after": after} if after else {})}, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        pages.append([g["gesture_id"] for g in body["gestures"]])
        if not body["gestures"]:
            assert body["next_after"] is None
            break
        assert body["next_after"] == body["gestures"][-1]["gesture_id"]
        after = body["next_after"]
    listed = server.get(url, headers=headers).json()["gestures"]  # default limit 100: all five
    # Oldest first: by creation time, then id (gestures made in one millisecond are ordered by id).
    assert [g["gesture_id"] for g in listed] == [g["gesture_id"] for g in sorted(listed, key=lambda g: (g["created_at"], g["gesture_id"]))]
    assert [len(p) for p in pages] == [2, 2, 1, 0] and sum(pages, []) == [g["gesture_id"] for g in listed]
    assert sorted(made) == sorted(sum(pages, []))

    # An `after` that is not one of this canvas's gestures: another canvas's, another tenant's, none at all.
    elsewhere = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    other_canvas_gesture = server.post(f"/v1/canvases/{elsewhere}/gestures", headers=headers).json()["gesture_id"]
    beta = bearer(server.token(tenant="t_beta"))
    beta_canvas = server.post("/v1/canvases", json={}, headers=beta).json()["canvas_id"]
    beta_gesture = server.post(f"/v1/canvases/{beta_canvas}/gestures", headers=beta).json()["gesture_id"]
    for after in (other_canvas_gesture, beta_gesture, "gs_" + "a" * 26, "not-an-id", ""):
        refused = server.get(url, params={"after": after}, headers=headers)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_after", (after, refused.text)
    for limit in ("0", "1001", "-1", "x"):
        refused = server.get(url, params={"limit": limit}, headers=headers)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_limit", (limit, refused.text)
    # The other tenant cannot list this canvas's gestures, even with a cursor of its own.
    assert server.get(url, params={"after": made[0]}, headers=beta).status_code == 404


def test_a_page_of_gestures_is_bounded_by_the_bytes_of_their_state(server):
    """Each gesture's stored state holds a line per pointer (up to 1000): a
    page of 1000 such gestures read every one of them whole. A page now stops
    near a mebibyte of state; the rest follows through next_after, once each."""
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    downs = [{"t_ms": 1, "x": 1, "y": 1, "pointer": p, "phase": "down"} for p in range(1000)]
    made = []
    for _ in range(50):
        gesture = server.post(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"]
        answer = server.post(f"/v1/canvases/{canvas}/gestures/{gesture}/samples", json={"samples": downs}, headers=headers)
        assert answer.status_code == 200, answer.text
        made.append(gesture)
    url, after, pages = f"/v1/canvases/{canvas}/gestures", None, []
    while True:
        body = server.get(url, params={"limit": 1000, **({"after": after} if after else {})}, headers=headers).json()
        if not body["gestures"]:
            break
        assert all(g["pointer_count"] == 1000 for g in body["gestures"])
        pages.append([g["gesture_id"] for g in body["gestures"]])
        after = body["next_after"]
    assert 1 < len(pages) and all(len(page) < 50 for page in pages), [len(page) for page in pages]
    assert sorted(sum(pages, [])) == sorted(made) and len(sum(pages, [])) == 50


def test_a_gesture_takes_at_most_1000_pointers_over_rest_and_ws_and_a_refused_batch_stores_nothing(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    gesture = server.post(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"]
    url = f"/v1/canvases/{canvas}/gestures/{gesture}/samples"
    downs = [{"t_ms": 1, "x": 1, "y": 1, "pointer": p, "phase": "down"} for p in range(1000)]
    assert server.post(url, json={"samples": downs}, headers=headers).json()["gesture"]["pointer_count"] == 1000
    one_more = [{"t_ms": 2, "x": 1, "y": 1, "pointer": 0, "phase": "up"}, {"t_ms": 2, "x": 1, "y": 1, "pointer": 5000, "phase": "down"}]
    refused = server.post(url, json={"samples": one_more}, headers=headers)
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "too_many_pointers" and error["index"] == 1 and "max_gesture_pointers" in error["message"]
    with connect(ws_url(server, "/ws"), additional_headers=headers) as socket:
        answer = request(socket, {"type": "gesture.samples", "id": 1, "gesture_id": gesture, "samples": one_more})
        assert answer["type"] == "error" and answer["status"] == 413 and answer["error"]["code"] == "too_many_pointers", answer
    # Nothing of either refusal is stored; the gesture's own pointers go on.
    listed = server.get(f"/v1/canvases/{canvas}/gestures/{gesture}", headers=headers).json()
    assert (listed["sample_count"], listed["pointer_count"]) == (1000, 1000)
    events = server.get(f"/v1/canvases/{canvas}/events?after=0", headers=headers).json()["events"]
    assert [e["type"] for e in events] == ["gesture.started", "gesture.samples"]
    ups = [{"t_ms": 3, "x": 1, "y": 1, "pointer": p, "phase": "up"} for p in range(1000)]
    assert server.post(url, json={"samples": ups}, headers=headers).json()["gesture"]["sample_count"] == 2000
