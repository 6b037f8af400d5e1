"""A REST request in progress holds its connection busy, and a client can keep
one in progress as long as it likes by sending its body slowly: each user's
and each tenant's requests in progress are capped
(`limits.max_requests_in_progress_per_user`, `..._per_tenant`), so one token
cannot take every connection of the node that way. Past a cap, 429 a second
after the head, naming the cap; others go on at once."""
import socket
import time

import pytest
import requests

from conftest import Server, bearer, dev_config, gauge, wait_for
from sse_client import SSEStream

PER_USER = 4
PER_TENANT = 6


@pytest.fixture
def server(data_dir):
    server = Server(data_dir, dev_config(data_dir, limits={"max_requests_in_progress_per_user": PER_USER,
                                                           "max_requests_in_progress_per_tenant": PER_TENANT})).start()
    yield server
    server.kill()


def slow_post(server, token, path="/v1/threads"):
    """A POST whose body never ends: its head and the body's first bytes, then nothing."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"ti").encode())
    return sock


def finish_slow_post(sock):
    """Sends the rest of the body (not JSON) and reads the 400 that answers it."""
    sock.sendall(b"x" * 96)
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400"), answer


def timed_get(server, token, path="/v1/threads/th_aaaaaaaaaaaaaaaaaaaaaaaaaa"):
    started = time.monotonic()
    answer = requests.get(server.url + path, headers=bearer(token), timeout=10)
    return answer, time.monotonic() - started


def test_a_users_slow_requests_are_capped_and_the_next_is_refused_a_second_later(server):
    alice, bob = server.token(user="alice"), server.token(user="bob")
    held = [slow_post(server, alice) for _ in range(PER_USER)]
    try:
        assert wait_for(lambda: gauge(server, "northstar_user_requests_in_progress") == PER_USER)
        answer, seconds = timed_get(server, alice)
        assert answer.status_code == 429 and seconds >= 0.9, (answer.status_code, seconds)
        error = answer.json()["error"]
        assert error["code"] == "too_many_user_requests" and error["limit"] == "user", error
        assert "max_requests_in_progress_per_user" in error["message"]
        # A write is refused the same.
        refused = requests.post(server.url + "/v1/threads", json={}, headers=bearer(alice), timeout=10)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_user_requests"
        # Another user of the tenant is answered at once meanwhile.
        answer, seconds = timed_get(server, bob)
        assert answer.status_code == 404 and seconds < 0.5, (answer.status_code, seconds)
        # One answered: a place comes back.
        finish_slow_post(held.pop())
        assert wait_for(lambda: timed_get(server, alice)[0].status_code == 404)
        # Closed without an answer: the place comes back too.
        for sock in held:
            sock.close()
        held.clear()
        assert wait_for(lambda: gauge(server, "northstar_user_requests_in_progress") == 0)
        made = [requests.post(server.url + "/v1/threads", json={}, headers=bearer(alice), timeout=10) for _ in range(PER_USER)]
        assert all(answer.status_code == 201 for answer in made)
    finally:
        for sock in held:
            sock.close()


def test_a_tenants_users_together_are_capped_and_another_tenant_goes_on(server):
    alice, bob, carol = (server.token(user=user) for user in ("alice", "bob", "carol"))
    held = [slow_post(server, alice) for _ in range(PER_USER)] + [slow_post(server, bob) for _ in range(PER_TENANT - PER_USER)]
    try:
        assert wait_for(lambda: gauge(server, "northstar_user_requests_in_progress") == PER_TENANT)
        answer, seconds = timed_get(server, carol)
        assert answer.status_code == 429 and seconds >= 0.9
        error = answer.json()["error"]
        assert error["code"] == "too_many_tenant_requests" and error["limit"] == "tenant", error
        answer, seconds = timed_get(server, server.token(tenant="t_beta", user="alice"))
        assert answer.status_code == 404 and seconds < 0.5, (answer.status_code, seconds)
    finally:
        for sock in held:
            sock.close()


def test_requests_without_a_credential_or_past_a_cap_hold_no_place(server):
    """A 401 is counted for nobody; a refused request takes no place; a stream is not a REST request."""
    alice = server.token()
    thread = requests.post(server.url + "/v1/threads", json={}, headers=bearer(alice), timeout=10).json()["thread_id"]
    for _ in range(10):
        assert timed_get(server, "not-a-token")[0].status_code == 401
    held = [slow_post(server, alice) for _ in range(PER_USER)]
    try:
        assert wait_for(lambda: gauge(server, "northstar_user_requests_in_progress") == PER_USER)
        for _ in range(3):
            assert timed_get(server, alice)[0].status_code == 429
        assert gauge(server, "northstar_user_requests_in_progress") == PER_USER
        # Alice's SSE stream opens at once: streams count against her connections, not her requests.
        started = time.monotonic()
        stream = SSEStream(server.port, f"/sse/chat/{thread}", bearer(alice))
        assert stream.status == 200 and time.monotonic() - started < 0.5
        stream.close()
    finally:
        for sock in held:
            sock.close()
    assert wait_for(lambda: gauge(server, "northstar_user_requests_in_progress") == 0)


@pytest.mark.parametrize("key", ["max_requests_in_progress_per_user", "max_requests_in_progress_per_tenant"])
@pytest.mark.parametrize("bad", [0, -1, 10_000_001, 2.5, "many"])
def test_bad_values_are_refused_at_start_with_the_key(data_dir, key, bad):
    server = Server(data_dir, dev_config(data_dir, limits={key: bad}))
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert f"limits.{key}" in str(refused.value)
