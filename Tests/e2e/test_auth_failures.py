"""Failed authentications past `limits.auth_failures_per_second` (a burst of
two seconds' worth) are answered a second late, the same 401: a client that
sends bad credentials as fast as it can asks about once a second per
connection, over REST and the transports' handshakes alike. A good
credential is never held, and nothing else changes."""
import re
import threading
import time

import pytest
import requests

from conftest import Server, bearer, dev_claims, dev_config, dev_secret, sign_hs

PER_SECOND = 5  # a burst of 10 failures, then one every 200 ms
HELD = 0.9      # a held failure waits a second: anything this long was held
NOWHERE = "/v1/threads/th_aaaaaaaaaaaaaaaaaaaaaaaaaa"  # a route that asks for a credential


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("auth-failures")
    server = Server(data_dir, dev_config(data_dir, limits={"auth_failures_per_second": PER_SECOND})).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alice(server):
    return server.token()


FORGED = sign_hs(b"not the node's secret", dev_claims())


def timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def until_held(call, most):
    """Makes a failing request until one is held; returns that answer and how many went at once before it."""
    for at_once in range(most):
        answer, seconds = timed(call)
        assert answer.status_code == 401, answer.text
        if seconds >= HELD:
            return answer, at_once
    raise AssertionError(f"none of {most} failures was held")


def spend_the_burst(server):
    """Fails until a failure is held: the burst is spent, and what refilled while it was held is left."""
    return until_held(lambda: server.get(NOWHERE, headers=bearer(FORGED)), most=100)


# Once a failure was held a second, the rate refilled this many: the next one past them is held.
AFTER_A_HOLD = PER_SECOND + 3


def quiet():
    time.sleep(2.2)  # the bucket is full again


def test_failures_past_the_burst_are_held_a_second_and_answered_the_same_401(server):
    quiet()
    held, at_once = spend_the_burst(server)
    assert at_once >= 2 * PER_SECOND - 2  # the burst (less what refilled meanwhile) went at once
    assert held.json()["error"]["code"] == "unauthorized"
    assert held.headers["WWW-Authenticate"] == "Bearer"
    metrics = server.get("/metrics").text
    assert re.search(r"^northstar_auth_failures_held_total [1-9]", metrics, re.M), metrics


@pytest.mark.parametrize("credential", ["missing", "malformed", "expired", "for another env"])
def test_every_kind_of_failure_is_held(server, credential):
    secret = dev_secret(server.data_dir)
    headers = {"missing": {}, "malformed": {"Authorization": "Bearer"},
               "expired": bearer(sign_hs(secret, dev_claims(ttl=-3600))),
               "for another env": bearer(sign_hs(secret, dev_claims(env="prod")))}[credential]
    quiet()
    spend_the_burst(server)
    until_held(lambda: server.get(NOWHERE, headers=headers), most=AFTER_A_HOLD)


def test_a_good_credential_is_never_held_while_failures_are(server, alice):
    thread = server.write("/v1/threads", json={}, headers=bearer(alice)).json()["thread_id"]
    quiet()
    spend_the_burst(server)
    # Failures go on being held meanwhile, from another client.
    stop = threading.Event()

    def fail_on():
        while not stop.is_set():
            requests.get(f"{server.url}{NOWHERE}", headers=bearer(FORGED), timeout=10)

    flood = [threading.Thread(target=fail_on) for _ in range(4)]
    for client in flood:
        client.start()
    try:
        for _ in range(10):
            answer, seconds = timed(lambda: server.get(f"/v1/threads/{thread}", headers=bearer(alice)))
            assert answer.status_code == 200 and seconds < 0.5
        created, seconds = timed(lambda: server.write("/v1/threads", json={}, headers=bearer(alice)))
        assert created.status_code == 201 and seconds < 0.5
    finally:
        stop.set()
        for client in flood:
            client.join(timeout=10)


def test_a_client_that_ignores_401_asks_about_once_a_second_per_connection(server):
    quiet()
    session = requests.Session()  # one kept-alive connection
    started, asked = time.monotonic(), 0
    while time.monotonic() - started < 4:
        assert session.get(f"{server.url}{NOWHERE}", headers=bearer(FORGED), timeout=10).status_code == 401
        asked += 1
    # The burst (10) and the rate (5 a second) are the node's, the rest held a second each.
    assert asked <= 2 * PER_SECOND + 4 * PER_SECOND + 4, asked


def test_a_transport_handshake_with_a_bad_credential_is_held_too(server, alice):
    thread = server.write("/v1/threads", json={}, headers=bearer(alice)).json()["thread_id"]
    quiet()
    spend_the_burst(server)
    until_held(lambda: server.get(f"/sse/chat/{thread}", headers=bearer(FORGED)), most=AFTER_A_HOLD)
    # Alice's own stream opens at once.
    with requests.get(f"{server.url}/sse/chat/{thread}", headers=bearer(alice), stream=True, timeout=10) as stream:
        assert stream.status_code == 200


def test_zero_turns_the_hold_off(tmp_path):
    server = Server(tmp_path, dev_config(tmp_path, limits={"auth_failures_per_second": 0})).start()
    try:
        started = time.monotonic()
        for _ in range(300):
            assert server.get(NOWHERE, headers=bearer(FORGED)).status_code == 401
        assert time.monotonic() - started < 0.9 * 300 / 10  # none of them held (300 held would take 300 s)
        metrics = server.get("/metrics").text
        assert "northstar_auth_failures_held_total" not in metrics
    finally:
        server.stop()
