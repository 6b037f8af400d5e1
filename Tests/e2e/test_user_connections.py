"""One user's transport connections are capped (`limits.max_connections_per_user`):
SSE streams and WebSockets together, counted per tenant, env and user, given
back when a connection closes however it closes, never touching REST."""
import contextlib
import json
import re
import socket
import subprocess
import threading
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import BIN, Server, bearer, dev_config, gauge, wait_for
from sse_client import SSEStream

LIMIT = 3


@pytest.fixture
def server(data_dir):
    server = Server(data_dir, dev_config(data_dir, limits={"max_connections_per_user": LIMIT})).start()
    yield server
    server.stop()


def new_thread(server, token):
    return server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]


def open_sse(server, token, thread):
    stream = SSEStream(server.port, f"/sse/chat/{thread}", bearer(token))
    assert stream.status == 200, stream.error_body()
    return stream


def refused_sse(server, token, thread):
    stream = SSEStream(server.port, f"/sse/chat/{thread}", bearer(token))
    try:
        return stream.status, stream.error_body()
    finally:
        stream.close()


def ws_url(server, path):
    return f"ws://127.0.0.1:{server.port}{path}"


def refused_ws(server, token, path):
    with pytest.raises(InvalidStatus) as caught:
        connect(ws_url(server, path), additional_headers=bearer(token), open_timeout=10)
    response = caught.value.response
    return response.status_code, json.loads(bytes(response.body))


def assert_too_many(answer, limit="user"):
    """A 429 naming the user's (or the tenant's) limit of connections."""
    status, body = answer
    assert status == 429, body
    assert body["error"]["code"] == f"too_many_{limit}_connections", body
    assert f"max_connections_per_{limit}" in body["error"]["message"]


def test_sse_and_websockets_together_stop_at_the_limit_and_the_next_is_429(server):
    alice = server.token()
    thread = new_thread(server, alice)
    streams = [open_sse(server, alice, thread), open_sse(server, alice, thread)]
    socket_ = connect(ws_url(server, "/ws"), additional_headers=bearer(alice), open_timeout=10)
    try:
        assert_too_many(refused_sse(server, alice, thread))
        assert_too_many(refused_ws(server, alice, "/ws"))
        assert_too_many(refused_ws(server, alice, f"/ws/chat/{thread}"))
        # REST is no connection of this kind: alice still posts, and her open streams get it.
        answer = server.post(f"/v1/threads/{thread}/messages", json={"text": "hi"}, headers=bearer(alice))
        assert answer.status_code == 201, answer.text
        for stream in streams:
            assert stream.events(1)[0]["json"]["data"] == {"text": "hi"}
        assert gauge(server, "northstar_user_connections") == LIMIT
        assert gauge(server, "northstar_users_connected") == 1
    finally:
        socket_.close()
        for stream in streams:
            stream.close()
    assert wait_for(lambda: gauge(server, "northstar_user_connections") == 0, seconds=10)
    assert gauge(server, "northstar_users_connected") == 0


@contextlib.contextmanager
def alice_at_the_limit(server):
    """Alice's token and thread, with LIMIT streams of hers open meanwhile."""
    alice = server.token()
    thread = new_thread(server, alice)
    held = [open_sse(server, alice, thread) for _ in range(LIMIT)]
    try:
        yield alice, thread
    finally:
        for stream in held:
            stream.close()


def test_a_refusal_at_the_limit_is_answered_a_second_late_so_a_client_that_ignores_it_asks_once_a_second(server):
    with alice_at_the_limit(server) as (alice, thread):
        for refuse in (lambda: refused_sse(server, alice, thread), lambda: refused_ws(server, alice, "/ws")):
            started = time.monotonic()
            assert_too_many(refuse())
            assert time.monotonic() - started >= 0.9
        # Four connections opening stream after stream for 3 s: about one refusal a second each.
        refusals = []

        def open_again_and_again():
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                refusals.append(refused_sse(server, alice, thread)[0])

        clients = [threading.Thread(target=open_again_and_again) for _ in range(4)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=20)
        assert set(refusals) == {429} and len(refusals) <= 4 * 4, refusals
        # Another user opens a stream at once meanwhile.
        bob = server.token(user="bob")
        started = time.monotonic()
        open_sse(server, bob, new_thread(server, bob)).close()
        assert time.monotonic() - started < 0.9


def test_the_count_is_per_user_and_tenant_never_shared(server):
    with alice_at_the_limit(server) as (alice, thread):
        assert_too_many(refused_sse(server, alice, thread))
        bob = server.token(user="bob")
        others = [open_sse(server, bob, thread) for _ in range(LIMIT)]
        # The same user id in another tenant is another user: its own count (and its own threads).
        beta = server.token(tenant="t_beta")
        others += [open_sse(server, beta, new_thread(server, beta)) for _ in range(LIMIT)]
        for stream in others:
            stream.close()


def test_a_refusal_for_a_bad_credential_is_still_401_when_the_user_is_at_the_limit(server):
    with alice_at_the_limit(server) as (alice, thread):
        assert_too_many(refused_sse(server, alice, thread))
        stream = SSEStream(server.port, f"/sse/chat/{thread}", bearer(alice + "x"))
        assert stream.status == 401 and stream.error_body()["error"]["code"] == "unauthorized"
        stream.close()
        stream = SSEStream(server.port, f"/sse/chat/{thread}", {})
        assert stream.status == 401
        stream.close()
        # Another tenant's thread is still 404 for a user below the limit.
        beta = server.token(tenant="t_beta")
        stream = SSEStream(server.port, f"/sse/chat/{thread}", bearer(beta))
        assert stream.status == 404
        stream.close()


def test_connections_are_given_back_when_they_close_politely_abruptly_or_are_refused(server):
    alice = server.token()
    thread = new_thread(server, alice)
    # Many more connections than the limit, one after another, each closed
    # in its own way: the count comes back to zero every time.
    for round_ in range(4):
        held = [open_sse(server, alice, thread) for _ in range(LIMIT - 1)]
        socket_ = connect(ws_url(server, f"/ws/chat/{thread}"), additional_headers=bearer(alice), open_timeout=10)
        assert_too_many(refused_sse(server, alice, thread))
        for stream in held:
            if round_ % 2:
                stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            stream.close()
        socket_.close()
        # Given back once the server sees each close: then the whole limit opens again.
        def reopened():
            try:
                again = [open_sse(server, alice, thread) for _ in range(LIMIT)]
            except AssertionError:
                return False
            for stream in again:
                stream.close()
            return True
        assert wait_for(reopened, seconds=10), f"round {round_}: the closed connections were not given back"


def test_renewing_a_websockets_token_keeps_it_one_connection(server):
    alice = server.token()
    thread = new_thread(server, alice)
    socket_ = connect(ws_url(server, "/ws"), additional_headers=bearer(alice), open_timeout=10)
    held = [open_sse(server, alice, thread) for _ in range(LIMIT - 1)]
    try:
        for index in range(3):
            socket_.send(json.dumps({"type": "auth", "id": index, "token": server.token()}))
            assert json.loads(socket_.recv(timeout=10)) == {"type": "authenticated", "id": index}
        assert_too_many(refused_sse(server, alice, thread))
        held.pop().close()
        assert wait_for(lambda: _opens(server, alice, thread), seconds=10)
    finally:
        socket_.close()
        for stream in held:
            stream.close()


def _opens(server, token, thread):
    stream = SSEStream(server.port, f"/sse/chat/{thread}", bearer(token))
    stream.close()
    return stream.status == 200


def test_the_limit_must_be_a_positive_number(data_dir):
    for bad in (0, -1, "3", 10_000_001):
        config = dev_config(data_dir, limits={"max_connections_per_user": bad})
        server = Server(data_dir, config)
        with pytest.raises(RuntimeError) as failed:
            server.start()
        assert "max_connections_per_user" in str(failed.value), str(failed.value)[-500:]


@pytest.mark.parametrize("scheme, path", [("http", "sse"), ("ws", "ws")])
def test_the_load_tool_sees_the_subscribers_past_the_limit_refused_and_the_rest_served(server, scheme, path):
    token = server.token()
    thread = new_thread(server, token)
    result = subprocess.run([str(BIN / "northstar-load"),
                             "--subscribe", f"{scheme}://127.0.0.1:{server.port}/{path}/chat/{thread}",
                             "--publish", f"{server.url}/v1/threads/{thread}/messages",
                             "--header", f"Authorization: Bearer {token}",
                             "--subscribers", str(LIMIT + 2), "--rate", "20", "--seconds", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"subscribers: {LIMIT} connected, 2 failed (HTTP 429: 2)" in result.stdout, result.stdout
    delivered = re.search(r"delivered: (\d+) of (\d+)", result.stdout)
    assert delivered and delivered.group(1) == delivered.group(2) == str(LIMIT * 20), result.stdout



def test_a_tenants_users_together_stop_at_the_tenants_limit_and_another_tenant_connects(data_dir):
    server = Server(data_dir, dev_config(data_dir, limits={"max_connections_per_user": LIMIT,
                                                           "max_connections_per_tenant": LIMIT})).start()
    try:
        alice, bob, carol = (server.token(user=user) for user in ("alice", "bob", "carol"))
        thread = new_thread(server, alice)
        held = [open_sse(server, alice, thread), open_sse(server, bob, thread)]
        socket_ = connect(ws_url(server, "/ws"), additional_headers=bearer(bob), open_timeout=10)
        try:
            # carol holds nothing, but her tenant holds its three.
            assert_too_many(refused_sse(server, carol, thread), "tenant")
            assert_too_many(refused_ws(server, carol, "/ws"), "tenant")
            assert_too_many(refused_ws(server, carol, f"/ws/chat/{thread}"), "tenant")
            # Another tenant is counted apart.
            beta = server.token(tenant="t_beta")
            other = open_sse(server, beta, new_thread(server, beta))
            assert gauge(server, "northstar_tenants_connected") == 2
            assert gauge(server, "northstar_users_connected") == 3
            other.close()
            # REST is no connection of this kind: carol posts, and the open streams get it.
            answer = server.post(f"/v1/threads/{thread}/messages", json={"text": "from carol"}, headers=bearer(carol))
            assert answer.status_code == 201, answer.text
            for stream in held:
                assert stream.events(1)[0]["json"]["data"] == {"text": "from carol"}
            # A bad credential is still 401, not 429.
            stream = SSEStream(server.port, f"/sse/chat/{thread}", bearer(carol + "x"))
            assert stream.status == 401
            stream.close()
        finally:
            socket_.close()
        # bob's socket closed: one place for carol.
        assert wait_for(lambda: gauge(server, "northstar_user_connections") == 2, seconds=10)
        carols = open_sse(server, carol, thread)
        assert_too_many(refused_sse(server, bob, thread), "tenant")
        carols.close()
        for stream in held:
            stream.close()
        assert wait_for(lambda: gauge(server, "northstar_tenants_connected") == 0, seconds=10)
    finally:
        server.stop()
