"""The ws transport plugin, with Python's `websockets` as the client: one
event shape with SSE and REST, posts and commands over the socket, resume
without loss, isolation at the handshake and per subscription, bad messages,
slow and silent peers."""
import json
import subprocess
import threading
import time

import jsonschema
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import Server, bearer, dev_claims, dev_config, dev_secret, gauge, load_schema, sign_hs, wait_for
from sse_client import SSEStream
from ws_raw import RawWebSocket

EVENT_SCHEMA = load_schema("stream-event.v1.json")


def ws_url(server, path):
    return f"ws://127.0.0.1:{server.port}{path}"


def thread_with_messages(server, headers, count):
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for index in range(count):
        server.write(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers)
    return thread


def request(socket, message, skipped=None):
    """Sends a request and returns the answer with its id; events that come
    first are appended to `skipped`."""
    socket.send(json.dumps(message))
    while True:
        answer = json.loads(socket.recv(timeout=10))
        if answer.get("type") not in ("event", "gap") and answer.get("id") == message.get("id"):
            return answer
        if skipped is not None:
            skipped.append(answer)


def refused(server, path, **kwargs):
    """The HTTP status and JSON body of a refused handshake."""
    with pytest.raises(InvalidStatus) as caught:
        connect(ws_url(server, path), open_timeout=10, **kwargs)
    response = caught.value.response
    return response.status_code, json.loads(bytes(response.body))


def test_a_post_over_ws_reaches_ws_and_sse_subscribers_as_one_event(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    sse = SSEStream(server.port, f"/sse/chat/{thread}", headers)
    with connect(ws_url(server, "/ws"), additional_headers=headers) as watcher, \
         connect(ws_url(server, f"/ws/chat/{thread}"), additional_headers=headers) as poster:
        assert request(watcher, {"type": "subscribe", "id": "s1", "stream": f"chat:{thread}", "after": 0}) == \
            {"type": "subscribed", "id": "s1", "stream": f"chat:{thread}"}
        first = json.loads(poster.recv(timeout=10))
        assert first["type"] == "event" and first["event"]["seq"] == 1
        early = []
        ack = request(poster, {"type": "post", "id": 7, "thread_id": thread, "message": {"text": "over ws"}}, early)
        assert ack["type"] == "ack" and ack["id"] == 7 and ack["status"] == 201
        posted = ack["result"]["event"]
        jsonschema.validate(posted, EVENT_SCHEMA)
        watched = [json.loads(watcher.recv(timeout=10)) for _ in range(2)]
        assert [m["event"]["seq"] for m in watched] == [1, 2]
        assert watched[1] == {"type": "event", "stream": f"chat:{thread}", "event": posted}
        own = early[0] if early else json.loads(poster.recv(timeout=10))
        assert own["event"] == posted
    assert [e["json"] for e in sse.events(2)][1] == posted
    sse.close()
    rest = server.get(f"/v1/threads/{thread}/events?after=1", headers=headers).json()["events"]
    assert rest == [posted]


def test_commands_over_ws_get_the_kernels_answers(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    add = {"command_id": "c1", "base_rev": 0, "ops": [{"op": "add", "path": "/a", "value": 1}]}
    with connect(ws_url(server, f"/ws/canvas/{canvas}"), additional_headers=headers) as socket:
        early = []
        ack = request(socket, {"type": "command", "id": "k1", "canvas_id": canvas, "command": add}, early)
        assert ack["status"] == 201 and ack["op"] == "command" and ack["result"]["rev"] == 1
        committed = (early[0] if early else json.loads(socket.recv(timeout=10)))["event"]
        assert committed["type"] == "canvas.committed" and committed["seq"] == ack["result"]["seq"]
        again = request(socket, {"type": "command", "id": "k2", "canvas_id": canvas, "command": add})
        assert again["status"] == 200 and again["result"]["rev"] == 1  # the first outcome, replayed
        stale = {"command_id": "c2", "base_rev": 0, "ops": [{"op": "add", "path": "/b", "value": 2}]}
        conflict = request(socket, {"type": "command", "id": "k3", "canvas_id": canvas, "command": stale})
        assert conflict["type"] == "error" and conflict["status"] == 409
        assert conflict["error"]["code"] == "rev_conflict" and conflict["error"]["head_rev"] == 1
        bad = request(socket, {"type": "command", "id": "k4", "canvas_id": canvas,
                               "command": {"command_id": "c3", "base_rev": 1, "ops": [{"op": "jump", "path": "/a"}]}})
        assert bad["status"] == 400 and bad["error"]["code"]
        other = request(socket, {"type": "command", "id": "k5", "canvas_id": "cv_" + "a" * 26, "command": stale})
        assert other["status"] == 404
    document = server.get(f"/v1/canvases/{canvas}", headers=headers).json()
    assert document["head_rev"] == 1 and document["document"] == {"a": 1}


def test_open_sockets_are_counted_in_metrics(server):
    headers = bearer(server.token())

    def open_sockets():
        return gauge(server, "northstar_websockets_open")

    assert open_sockets() == 0
    with connect(ws_url(server, "/ws"), additional_headers=headers) as one, connect(ws_url(server, "/ws"), additional_headers=headers):
        assert request(one, {"type": "ping", "id": 1})["type"] == "pong"
        assert open_sockets() == 2
    assert wait_for(lambda: open_sockets() == 0, seconds=5)


def test_many_requests_in_flight_are_matched_by_id(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 0)
    with connect(ws_url(server, "/ws"), additional_headers=headers) as socket:
        for index in range(30):
            socket.send(json.dumps({"type": "post", "id": f"p{index}", "thread_id": thread, "message": {"text": str(index)}}))
        answers = {}
        while len(answers) < 30:
            answer = json.loads(socket.recv(timeout=10))
            answers[answer["id"]] = answer
    for index in range(30):
        assert answers[f"p{index}"]["result"]["event"]["data"]["text"] == str(index)
    assert server.get(f"/v1/threads/{thread}", headers=headers).json()["head_seq"] == 30


def test_resume_after_a_drop_with_a_burst_in_flight(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 5)

    def burst():
        for index in range(200):
            server.post(f"/v1/threads/{thread}/messages", json={"text": f"b{index}"}, headers=headers)

    writer = threading.Thread(target=burst)
    seen = []
    with connect(ws_url(server, f"/ws/chat/{thread}"), additional_headers=headers) as first:
        writer.start()
        while len(seen) < 40:
            seen.append(json.loads(first.recv(timeout=10))["event"]["seq"])
    # Dropped mid-burst; the multiplexed socket resumes from the last seq seen.
    with connect(ws_url(server, "/ws"), additional_headers=headers) as second:
        second.send(json.dumps({"type": "subscribe", "id": "r", "stream": f"chat:{thread}", "after": seen[-1]}))
        writer.join()
        while len(seen) < 205:
            message = json.loads(second.recv(timeout=10))
            if message["type"] == "event":
                seen.append(message["event"]["seq"])
    assert seen == list(range(1, 206))


def test_one_stream_route_resumes_from_after(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 4)
    with connect(ws_url(server, f"/ws/chat/{thread}?after=2"), additional_headers=headers) as socket:
        assert [json.loads(socket.recv(timeout=10))["event"]["seq"] for _ in range(2)] == [3, 4]
    for value in ("x", "-1", "+1", "1.5", "", "99999999999999999999999"):
        status, body = refused(server, f"/ws/chat/{thread}?after={value}", additional_headers=headers)
        assert status == 400 and body["error"]["code"] == "invalid_after"
    status, body = refused(server, f"/ws/chat/{thread}?after=9", additional_headers=headers)
    assert status == 400  # past the head


def test_isolation_at_the_handshake(server):
    owner = bearer(server.token(tenant="t_alpha"))
    thread = thread_with_messages(server, owner, 1)
    canvas = server.post("/v1/canvases", json={}, headers=owner).json()["canvas_id"]
    secret = dev_secret(server.data_dir)
    other = bearer(server.token(tenant="t_beta"))
    cases = {
        "other_tenant": (other, 404),
        "other_env": (bearer(server.token(tenant="t_alpha", env="staging")), 401),
        "none": ({}, 401),
        "expired": (bearer(sign_hs(secret, dev_claims(exp=1_600_000_000, iat=1_599_990_000))), 401),
        "forged": (bearer(sign_hs(b"x" * 40, dev_claims())), 401),
        "read_scope_missing": (bearer(server.token(tenant="t_alpha", scopes="canvas:read")), 403),
    }
    for kind, own_id, missing_id in (("chat", thread, "th_" + "a" * 26), ("canvas", canvas, "cv_" + "a" * 26)):
        _, missing_body = refused(server, f"/ws/{kind}/{missing_id}", additional_headers=other)
        for name, (headers, status) in cases.items():
            if name == "read_scope_missing" and kind == "canvas":
                continue
            got, body = refused(server, f"/ws/{kind}/{own_id}", additional_headers=headers)
            assert got == status, (name, kind)
            if name == "other_tenant":
                assert body == missing_body  # not yours == not found
    for name in ("none", "expired", "forged", "other_env"):
        got, _ = refused(server, "/ws", additional_headers=cases[name][0])
        assert got == 401, name


def test_isolation_per_subscription_on_the_multiplexed_socket(server):
    owner = bearer(server.token(tenant="t_alpha"))
    thread = thread_with_messages(server, owner, 1)
    with connect(ws_url(server, "/ws"), additional_headers=bearer(server.token(tenant="t_beta"))) as intruder:
        theirs = request(intruder, {"type": "subscribe", "id": "a", "stream": f"chat:{thread}"})
        missing = request(intruder, {"type": "subscribe", "id": "b", "stream": "chat:th_" + "b" * 26})
        assert theirs["type"] == "error" and theirs["error"] == missing["error"]
        assert theirs["error"]["code"] == "not_found"
        posted = request(intruder, {"type": "post", "id": "c", "thread_id": thread, "message": {"text": "sneak"}})
        assert posted["status"] == 404
        assert request(intruder, {"type": "ping", "id": "d"}) == {"type": "pong", "id": "d"}  # still open
    assert server.get(f"/v1/threads/{thread}", headers=owner).json()["head_seq"] == 1


def test_credentials_from_subprotocol_and_query(server):
    token = server.token()
    thread = thread_with_messages(server, bearer(token), 1)
    with connect(ws_url(server, f"/ws/chat/{thread}"), subprotocols=["northstar.v1", "northstar.bearer." + token]) as socket:
        assert socket.subprotocol == "northstar.v1"
        assert json.loads(socket.recv(timeout=10))["event"]["seq"] == 1
    with connect(ws_url(server, f"/ws/chat/{thread}?token={token}")) as socket:
        assert json.loads(socket.recv(timeout=10))["event"]["seq"] == 1
    status, _ = refused(server, f"/ws/chat/{thread}", subprotocols=["northstar.v1", "northstar.bearer.not-a-token"])
    assert status == 401


def test_origin_allow_list_and_query_tokens_off_by_default(data_dir):
    server = Server(data_dir, config=dev_config(data_dir, ws={"allowed_origins": ["https://app.example.com"]})).start()
    try:
        headers = bearer(server.token())
        thread = thread_with_messages(server, headers, 1)
        path = f"/ws/chat/{thread}"
        status, body = refused(server, path, additional_headers=headers, origin="https://evil.example.net")
        assert status == 403 and body["error"]["code"] == "origin_not_allowed"
        with connect(ws_url(server, path), additional_headers=headers, origin="https://app.example.com") as socket:
            assert json.loads(socket.recv(timeout=10))["event"]["seq"] == 1
        with connect(ws_url(server, path), additional_headers=headers, origin=f"http://127.0.0.1:{server.port}") as socket:
            assert json.loads(socket.recv(timeout=10))["event"]["seq"] == 1  # the server's own origin
        status, _ = refused(server, f"{path}?token={server.token()}")
        assert status == 401
    finally:
        server.kill()


def test_bad_messages_get_errors_and_the_socket_stays_open(data_dir):
    server = Server(data_dir, config=dev_config(data_dir, ws={"max_subscriptions": 2},
                                               limits={"ws_max_message_bytes": 4096})).start()
    try:
        headers = bearer(server.token())
        threads = [thread_with_messages(server, headers, 0) for _ in range(3)]
        with connect(ws_url(server, "/ws"), additional_headers=headers) as socket:
            def error_code(raw):
                socket.send(raw)
                answer = json.loads(socket.recv(timeout=10))
                assert answer["type"] == "error", answer
                return answer["error"]["code"]

            assert error_code("not json") == "invalid_json"
            assert error_code("[1, 2]") == "invalid_json"
            assert error_code(b"\x00\x01") == "binary_not_supported"
            assert error_code(json.dumps({"type": "teleport", "id": 1})) == "unknown_type"
            assert error_code(json.dumps({"id": 1})) == "missing_field"
            assert error_code(json.dumps({"type": "ping", "id": {"x": 1}})) == "invalid_id"
            assert error_code(json.dumps({"type": "ping", "id": "x" * 129})) == "invalid_id"
            for after in (-1, "3", True, 1.5):
                assert error_code(json.dumps({"type": "subscribe", "id": 2, "stream": f"chat:{threads[0]}", "after": after})) == "invalid_after"
            assert error_code(json.dumps({"type": "subscribe", "id": 3})) == "invalid_stream"
            assert error_code(json.dumps({"type": "subscribe", "id": 4, "stream": "pigeon:1"})) == "invalid_stream"
            assert error_code(json.dumps({"type": "subscribe", "id": 4, "stream": f"chat:{threads[0]}", "after": 5})) == "invalid_after"
            assert error_code(json.dumps({"type": "unsubscribe", "id": 5, "stream": f"chat:{threads[0]}"})) == "not_subscribed"
            assert error_code(json.dumps({"type": "post", "id": 6, "message": {"text": "x"}})) == "missing_field"
            assert error_code(json.dumps({"type": "post", "id": 6, "thread_id": threads[0]})) == "missing_field"
            post = request(socket, {"type": "post", "id": 7, "thread_id": threads[0], "message": {"text": ""}})
            assert post["status"] == 400 and post["error"]["code"] == "missing_field"
            for index in range(2):
                assert request(socket, {"type": "subscribe", "id": f"s{index}", "stream": f"chat:{threads[index]}"})["type"] == "subscribed"
            assert error_code(json.dumps({"type": "subscribe", "id": 8, "stream": f"chat:{threads[0]}"})) == "already_subscribed"
            assert error_code(json.dumps({"type": "subscribe", "id": 9, "stream": f"chat:{threads[2]}"})) == "too_many_subscriptions"
            assert request(socket, {"type": "unsubscribe", "id": 10, "stream": f"chat:{threads[0]}"})["type"] == "unsubscribed"
            assert request(socket, {"type": "subscribe", "id": 11, "stream": f"chat:{threads[2]}"})["type"] == "subscribed"
            # Too large: the socket is closed with 1009, the server stays up.
            socket.send(json.dumps({"type": "ping", "id": "x", "pad": "y" * 5000}))
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=10)
            assert closed.value.rcvd.code == 1009
        assert server.get("/healthz").status_code == 200
        assert requests_get_is_426(server, threads[0], headers)
    finally:
        server.kill()


def requests_get_is_426(server, thread, headers):
    response = server.get(f"/ws/chat/{thread}", headers=headers)
    return response.status_code == 426 and response.json()["error"]["code"] == "upgrade_required"


def test_a_client_that_never_reads_is_closed_and_memory_stays_bounded(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 0)
    stalled = RawWebSocket(server.port, f"/ws/chat/{thread}", [f"Authorization: {headers['Authorization']}"])
    assert stalled.status == 101
    big = "x" * 8000
    for index in range(800):  # ~6.4 MB of events while the client reads nothing
        server.write(f"/v1/threads/{thread}/messages", json={"text": big}, headers=headers)
    seqs, ends, close = [], [], None
    while close is None:
        opcode, payload = stalled.frame()
        if opcode == 1 and json.loads(payload)["type"] == "event":
            seqs.append(json.loads(payload)["event"]["seq"])
        elif opcode == 1:
            ends.append(json.loads(payload))
        elif opcode == 8:
            close = (int.from_bytes(payload[:2], "big"), payload[2:].decode())
    stalled.close()
    assert close[0] == 4008 and "slow consumer" in close[1]
    assert 0 < len(seqs) < 800 and seqs == list(range(1, len(seqs) + 1))
    # The last word before the close names exactly where to resume.
    assert [(end["type"], end["code"], end["last_seq"]) for end in ends] == [("end", "slow_consumer", seqs[-1])]
    rss = subprocess.run(["ps", "-o", "rss=", "-p", str(server.process.pid)], capture_output=True, text=True)
    assert int(rss.stdout.strip()) < 400_000  # KiB
    with connect(ws_url(server, f"/ws/chat/{thread}?after={seqs[-1]}"), additional_headers=headers) as resumed:
        assert json.loads(resumed.recv(timeout=10))["event"]["seq"] == seqs[-1] + 1


def test_a_peer_that_stops_answering_pings_is_closed(data_dir):
    server = Server(data_dir, config=dev_config(data_dir, limits={"ws_ping_interval_seconds": 1})).start()
    try:
        headers = bearer(server.token())
        thread = thread_with_messages(server, headers, 0)
        silent = RawWebSocket(server.port, f"/ws/chat/{thread}", [f"Authorization: {headers['Authorization']}"])
        with connect(ws_url(server, f"/ws/chat/{thread}"), additional_headers=headers) as polite:
            started = time.monotonic()
            opcodes = []
            try:
                while True:
                    opcode, _ = silent.frame()
                    opcodes.append(opcode)
                    if opcode == 8:
                        break
            except EOFError:
                pass
            assert 9 in opcodes  # pinged
            assert time.monotonic() - started < 8
            time.sleep(1.5)
            assert request(polite, {"type": "ping", "id": 1})["type"] == "pong"  # answers pings: still open
        silent.close()
    finally:
        server.kill()


def test_a_client_that_vanishes_mid_frame_leaves_others_unaffected(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    for _ in range(20):
        raw = RawWebSocket(server.port, "/ws", [f"Authorization: {headers['Authorization']}"])
        raw.sock.sendall(b"\x81\xfe\x10\x00abcd" + b"x" * 100)  # half a 4 KiB frame, then gone
        raw.close()
    with connect(ws_url(server, f"/ws/chat/{thread}"), additional_headers=headers) as keeper:
        server.post(f"/v1/threads/{thread}/messages", json={"text": "after"}, headers=headers)
        assert [json.loads(keeper.recv(timeout=10))["event"]["seq"] for _ in range(2)] == [1, 2]
    assert server.get("/healthz").status_code == 200


def test_gap_when_the_log_no_longer_holds_the_events(data_dir):
    server = Server(data_dir, config=dev_config(data_dir, store={"retain_events_per_stream": 3})).start()
    try:
        headers = bearer(server.token())
        thread = thread_with_messages(server, headers, 10)
        with connect(ws_url(server, "/ws"), additional_headers=headers) as socket:
            socket.send(json.dumps({"type": "subscribe", "id": 1, "stream": f"chat:{thread}", "after": 2}))
            messages = [json.loads(socket.recv(timeout=10)) for _ in range(5)]
        assert messages[0]["type"] == "subscribed"
        assert messages[1] == {"type": "gap", "stream": f"chat:{thread}", "requested_after": 2, "first_seq": 8}
        assert [m["event"]["seq"] for m in messages[2:]] == [8, 9, 10]
    finally:
        server.kill()


def test_sigterm_closes_sockets_with_going_away_and_the_server_exits(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    one = connect(ws_url(server, f"/ws/chat/{thread}"), additional_headers=headers)
    many = connect(ws_url(server, "/ws"), additional_headers=headers)
    assert json.loads(one.recv(timeout=10))["event"]["seq"] == 1
    started = time.monotonic()
    assert server.stop(timeout=20) == 0
    assert time.monotonic() - started < 10
    for socket in (one, many):
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


@pytest.mark.parametrize("bad, words", [({"colour": "blue"}, 'unknown key "colour"'),
                                        ({"max_subscriptions": 0}, "max_subscriptions"),
                                        ({"allow_query_token": 1}, "allow_query_token"),
                                        ({"allowed_origins": "https://a.example"}, "allowed_origins")])
def test_bad_ws_config_is_refused_before_the_port_is_bound(data_dir, bad, words):
    server = Server(data_dir, config=dev_config(data_dir, ws=bad))
    with pytest.raises(RuntimeError) as refused:
        server.start(timeout=15)
    assert "config-rejected" in str(refused.value) and words in str(refused.value)


def test_a_handshake_that_is_not_its_connections_first_request_is_told_why(server):
    """A connection is HTTP for good once its first request was: a WebSocket handshake sent after
    another request on it (as a proxy reusing a kept-alive upstream connection would) is answered
    400 websocket_not_first_request, not a bare 504, and the plugin's socket is let go. A new
    connection then upgrades."""
    import socket as sockets
    token = server.token()
    sock = sockets.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "websocket_not_first_request" and "first request" in error["message"], error
    assert wait_for(lambda: gauge(server, "northstar_websockets_open") == 0
                    and gauge(server, "northstar_transport_exchanges_open") == 0)
    with connect(ws_url(server, "/ws"), additional_headers=bearer(token), open_timeout=10) as socket:
        socket.send(json.dumps({"type": "ping", "id": 1}))
        assert json.loads(socket.recv(timeout=10))["type"] == "pong"
