"""Credentials do not outlive their tokens: a stream opened with a token
ends when the token runs out (SSE: `stream.end` with reason token_expired
and the seq to resume after; WS: an `end` message with code token_expired,
and close 4001 on a one-stream route), writes with an expired principal are
refused 401 token_expired, and a WS client that sends a fresh token for the
same identity (`auth`) keeps its subscriptions."""
import json
import socket
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import Server, bearer
from sse_client import SSEStream

TTL = 3  # seconds: the short-lived tokens' lifetime


@pytest.fixture
def strict_server(data_dir):
    """A node with no expiry leeway, so a token's exp is the moment it stops working."""
    config = data_dir / "config.json"
    config.write_text(json.dumps({
        "auth": {"chain": ["jwt"], "expiry_leeway_seconds": 0},
        "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
                        "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar",
                        "leeway_seconds": 0}},
                    {"name": "sse", "path": "libNorthstarSSE.so", "config": {}},
                    {"name": "ws", "path": "libNorthstarWS.so", "config": {}}]}))
    server = Server(data_dir, config=config).start()
    yield server
    server.kill()


def make_thread(server, headers, messages=1):
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for index in range(messages):
        server.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers)
    return thread


def test_an_sse_stream_ends_when_its_token_expires(strict_server):
    server = strict_server
    long_lived = bearer(server.token())
    thread = make_thread(server, long_lived, 2)
    started = time.monotonic()
    stream = SSEStream(server.port, f"/sse/chat/{thread}", headers=bearer(server.token(ttl=TTL)), timeout=TTL + 10)
    assert stream.status == 200
    assert [event["json"]["seq"] for event in stream.events(2)] == [1, 2]
    while True:
        frame = stream.frame()
        if frame.get("event") == "stream.end":
            break
    ended = json.loads(frame["data"])
    assert ended["reason"] == "token_expired" and "resume after seq 2" in ended["message"]
    assert TTL - 1.5 < time.monotonic() - started < TTL + 5
    stream.close()


def test_a_request_pipelined_behind_a_stream_is_answered_once_the_stream_ended(strict_server):
    """The stream's request task is gone while the stream runs (the
    connection holds the response's end back); a second request sent on the
    same connection must still wait for the stream, then be answered on it."""
    server = strict_server
    thread = make_thread(server, bearer(server.token()), 1)
    token = server.token(ttl=TTL)
    requests = (f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").encode()
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=TTL + 10)
    connection.sendall(requests)
    terminator = b"\r\n0\r\n\r\n"  # the chunked stream's last chunk
    received = b""
    # Read until the stream ended and the second answer (a small JSON body) came whole.
    while not (terminator in received and received.split(terminator, 1)[1].endswith(b"}")):
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before the second answer: {received!r}"
        received += chunk
    connection.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    # The stream: its event, its last word, then its terminating chunk; only then the next answer.
    end_of_stream = body.index(terminator)
    assert body.index(b'"seq":1') < body.index(b"stream.end") < end_of_stream
    assert b"token_expired" in body[:end_of_stream]
    second = body[end_of_stream + len(terminator):]
    assert second.startswith(b"HTTP/1.1 200"), second
    assert b"HTTP/1.1" not in body[:end_of_stream], "an answer was written into the stream"


def test_a_stream_asked_with_connection_close_runs_until_it_ends_then_the_connection_closes(strict_server):
    """`Connection: close` closes the connection after the answer, and the
    answer is the whole stream: live events arrive, then its last word."""
    server = strict_server
    long_lived = bearer(server.token())
    thread = make_thread(server, long_lived, 0)
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=TTL + 10)
    connection.sendall((f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                        f"Connection: close\r\nAuthorization: Bearer {server.token(ttl=TTL)}\r\n\r\n").encode())
    received = connection.recv(65536)
    assert received.startswith(b"HTTP/1.1 200"), received
    time.sleep(0.3)
    server.post(f"/v1/threads/{thread}/messages", json={"text": "live"}, headers=long_lived)
    while chunk := connection.recv(65536):  # until the server closes it
        received += chunk
    connection.close()
    body = received.partition(b"\r\n\r\n")[2]
    assert b'"text":"live"' in body, "the stream was cut before its live event"
    assert body.index(b'"text":"live"') < body.index(b"stream.end") < body.index(b"\r\n0\r\n\r\n")
    assert b"token_expired" in body


def read_stream_to_its_end(connection, received=b""):
    """Reads one chunked SSE answer to its terminating chunk; returns it and what came after."""
    terminator = b"\r\n0\r\n\r\n"
    while terminator not in received:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed inside the stream: {received!r}"
        received += chunk
    stream, _, rest = received.partition(terminator)
    return stream, rest


def test_a_connection_whose_streams_ended_serves_the_requests_sent_after_them(strict_server):
    """While a stream runs its connection's HTTP loop is parked, with no task;
    each time the stream ends the loop resumes on the same connection: here
    twice, each stream then a request sent only after it ended."""
    server = strict_server
    thread = make_thread(server, bearer(server.token()), 1)
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=TTL + 10)
    for _ in range(2):
        connection.sendall((f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                            f"Authorization: Bearer {server.token(ttl=TTL)}\r\n\r\n").encode())
        stream, rest = read_stream_to_its_end(connection)
        assert stream.startswith(b"HTTP/1.1 200") and b'"seq":1' in stream and b"token_expired" in stream
        assert rest == b"", f"bytes after the stream's end: {rest!r}"
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    connection.close()


def stream_past_its_first_event(server):
    """A raw connection whose SSE stream (token of TTL seconds, thread of one
    message) has delivered its catch-up event; returns it and what it read."""
    thread = make_thread(server, bearer(server.token()), 1)
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=TTL + 10)
    connection.sendall((f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                        f"Authorization: Bearer {server.token(ttl=TTL)}\r\n\r\n").encode())
    received = b""
    while b'"seq":1' not in received:
        chunk = connection.recv(65536)
        assert chunk, received
        received += chunk
    return connection, received


def test_a_request_sent_in_pieces_while_a_stream_runs_is_answered_after_it(strict_server):
    """While a stream runs, its connection's HTTP parser is out of the
    pipeline (an idle stream keeps less memory); what the client sends
    meanwhile waits, and is parsed and answered once the stream ended: here
    a HEAD request, in two pieces, sent after the stream started, then a GET."""
    connection, received = stream_past_its_first_event(strict_server)
    connection.sendall(b"HEAD /healthz HTTP/1.1\r\nHo")
    time.sleep(0.2)
    connection.sendall(b"st: x\r\n\r\n")
    stream, rest = read_stream_to_its_end(connection, received)
    assert b"token_expired" in stream and b"HTTP/1.1" not in stream.partition(b"\r\n\r\n")[2]
    # The HEAD answer (405: health is GET only): a head only, no body, though it names the body's length.
    while b"\r\n\r\n" not in rest:
        chunk = connection.recv(65536)
        assert chunk, rest
        rest += chunk
    head, _, after = rest.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405") and b"content-length: 0" not in head.lower(), head
    time.sleep(0.2)
    connection.setblocking(False)
    try:
        after += connection.recv(65536)
    except BlockingIOError:
        pass
    connection.setblocking(True)
    assert after == b"", f"a HEAD answer carried a body: {after!r}"
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"}"), answer
    connection.close()


@pytest.mark.parametrize("wait", [0.0, 0.5], ids=["as-the-stream-starts", "once-the-loop-parked"])
def test_bytes_that_are_no_request_sent_while_a_stream_runs_are_refused_after_it(strict_server, wait):
    """The parser leaves once the connection's HTTP loop has parked on the
    stream, just after the stream started. Bytes that are no request get
    the same answer whether the parser saw them before that or after it
    came back: a 400 once the stream has ended, never a cut stream."""
    connection, received = stream_past_its_first_event(strict_server)
    assert received.startswith(b"HTTP/1.1 200"), received
    time.sleep(wait)
    connection.sendall(b"\x01\x02 not http at all\r\n\r\n")
    stream, rest = read_stream_to_its_end(connection, received)
    assert b"token_expired" in stream
    while chunk := connection.recv(65536):  # until the server closes it
        rest += chunk
    assert rest.startswith(b"HTTP/1.1 400"), rest
    assert b'"code"' in rest
    connection.close()


def open_gauge(server, name, session=requests):
    """A gauge from /metrics. Polled through one kept-alive `session`, the
    count of open connections holds that one connection and no other: with a
    new connection per poll, the previous poll's may not have closed yet on
    a loaded machine, and would count as one held by the server."""
    for line in session.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics")


def test_clients_that_leave_while_their_streams_run_release_their_connections(strict_server):
    """A parked connection has no task to notice its client left: the
    connection itself must end the exchange and give its place back."""
    server = strict_server
    token = server.token()
    thread = make_thread(server, bearer(token), 0)
    session = requests.Session()
    baseline = open_gauge(server, "northstar_connections_open", session)
    connections = []
    for _ in range(20):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        connection.sendall((f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                            f"Authorization: Bearer {token}\r\n\r\n").encode())
        assert connection.recv(65536).startswith(b"HTTP/1.1 200")
        connections.append(connection)
    # At least the poll's own connection and the 20 streams: the baseline may
    # have counted a connection of make_thread's that has closed since.
    assert open_gauge(server, "northstar_connections_open", session) >= 1 + 20
    assert open_gauge(server, "northstar_transport_exchanges_open", session) >= 20
    for connection in connections:
        connection.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (open_gauge(server, "northstar_connections_open", session) <= baseline
                and open_gauge(server, "northstar_transport_exchanges_open", session) == 0):
            break
        time.sleep(0.1)
    assert open_gauge(server, "northstar_connections_open", session) <= baseline
    assert open_gauge(server, "northstar_transport_exchanges_open", session) == 0
    # The node still serves streams on new connections.
    stream = SSEStream(server.port, f"/sse/chat/{thread}", headers=bearer(token), timeout=10)
    assert stream.status == 200
    stream.close()


def test_ws_subscriptions_end_at_expiry_unless_renewed_and_writes_are_refused(strict_server):
    server = strict_server
    long_lived = bearer(server.token())
    thread = make_thread(server, long_lived, 1)
    url = f"ws://127.0.0.1:{server.port}/ws"
    with connect(url, additional_headers=bearer(server.token(ttl=TTL))) as stale, \
         connect(url, additional_headers=bearer(server.token(ttl=TTL))) as renewed:
        for socket in (stale, renewed):
            socket.send(json.dumps({"type": "subscribe", "id": "s", "stream": f"chat:{thread}", "after": 1}))
            assert json.loads(socket.recv(timeout=10))["type"] == "subscribed"
        # Another user's token cannot take over the socket; the same user's fresh one renews it.
        renewed.send(json.dumps({"type": "auth", "id": "a0", "token": server.token(user="mallory")}))
        refused = json.loads(renewed.recv(timeout=10))
        assert refused["type"] == "error" and refused["id"] == "a0" and refused["error"]["code"] == "unauthorized"
        renewed.send(json.dumps({"type": "auth", "id": "a1", "token": server.token(ttl=3600)}))
        assert json.loads(renewed.recv(timeout=10)) == {"type": "authenticated", "id": "a1"}

        end = json.loads(stale.recv(timeout=TTL + 10))
        assert end["type"] == "end" and end["code"] == "token_expired" and end["last_seq"] == 1
        # An expired principal cannot write or subscribe any more.
        stale.send(json.dumps({"type": "post", "id": "p", "thread_id": thread, "message": {"text": "late"}}))
        answer = json.loads(stale.recv(timeout=10))
        assert answer["type"] == "error" and answer["status"] == 401 and answer["error"]["code"] == "token_expired"
        stale.send(json.dumps({"type": "subscribe", "id": "s2", "stream": f"chat:{thread}", "after": 1}))
        answer = json.loads(stale.recv(timeout=10))
        assert answer["type"] == "error" and answer["error"]["code"] == "token_expired"

        # The renewed socket still gets live events past the first token's expiry.
        server.post(f"/v1/threads/{thread}/messages", json={"text": "after expiry"}, headers=long_lived)
        event = json.loads(renewed.recv(timeout=10))
        assert event["type"] == "event" and event["event"]["data"]["text"] == "after expiry"


def test_a_one_stream_ws_route_closes_4001_at_expiry(strict_server):
    server = strict_server
    thread = make_thread(server, bearer(server.token()), 0)
    with connect(f"ws://127.0.0.1:{server.port}/ws/chat/{thread}", additional_headers=bearer(server.token(ttl=TTL))) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=TTL + 10)
        assert closed.value.rcvd.code == 4001
