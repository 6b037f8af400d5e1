"""Writes and REST reads are rate-limited per user and per tenant
(`limits.writes_per_second_per_user`, `limits.reads_per_second_per_user`, and
their `..._per_tenant`): past a bucket of two seconds' worth, a request is
answered 429 `rate_limited` with when to retry (`Retry-After`,
`retry_after_ms`), over REST and WebSocket alike, and nothing of a refused
write is stored. The other kind, other users and other tenants go on."""
import json
import math
import re
import time

import pytest
from websockets.sync.client import connect

from conftest import Server, bearer, dev_config
from sse_client import SSEStream

PER_USER = 5      # a burst of 10, then one every 200 ms
PER_TENANT = 8    # a burst of 16 for every user of the tenant together
READS_PER_USER = 10  # a burst of 20 reads


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("write-rates")
    server = Server(data_dir, dev_config(data_dir, limits={"writes_per_second_per_user": PER_USER,
                                                           "writes_per_second_per_tenant": PER_TENANT,
                                                           "reads_per_second_per_user": READS_PER_USER})).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(server):
    """Tokens minted once (the CLI takes a while): t_alpha's alice, bob and
    carol, and t_beta's alice."""
    return {name: server.token(tenant=tenant, user=user)
            for name, tenant, user in [("alice", "t_alpha", "alice"), ("bob", "t_alpha", "bob"),
                                       ("carol", "t_alpha", "carol"), ("beta", "t_beta", "alice")]}


def post(server, token, thread, text):
    return server.post(f"/v1/threads/{thread}/messages", json={"text": text}, headers=bearer(token))


def head_seq(server, token, thread):
    answer = server.get(f"/v1/threads/{thread}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()["head_seq"]


def quiet(seconds=2.2):
    """Waits until every bucket is full again (two seconds' worth refill in two seconds)."""
    time.sleep(seconds)


def post_until_refused(server, token, thread, most=60):
    """Posts as fast as it can until one is refused; returns (accepted, the refusal, seconds taken)."""
    started = time.monotonic()
    for accepted in range(most):
        asked = time.monotonic()
        answer = post(server, token, thread, f"m{accepted}")
        if answer.status_code == 429:
            # Over REST a refusal is held for the wait, and at least 100 ms.
            assert time.monotonic() - asked >= 0.1, time.monotonic() - asked
            return accepted, answer, asked - started
        assert answer.status_code == 201, answer.text
    pytest.fail(f"{most} posts in {time.monotonic() - started:.2f} s and none refused")


def assert_rate_limited(answer, limit, kind="writes"):
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    assert error["code"] == "rate_limited" and error["limit"] == limit, error
    assert f"{kind}_per_second_per_{limit}" in error["message"]
    assert 0 <= error["retry_after_ms"] <= 1000
    # Whole seconds in the header, never sooner than the body says.
    assert int(answer.headers["Retry-After"]) == math.ceil(error["retry_after_ms"] / 1000)
    return error


def test_a_user_past_the_burst_is_told_when_to_retry_and_nothing_of_the_refused_write_is_stored(server, tokens):
    alice = tokens["alice"]
    thread = server.write("/v1/threads", json={}, headers=bearer(alice)).json()["thread_id"]
    quiet()
    accepted, refused, seconds = post_until_refused(server, alice, thread)
    # The burst (two seconds' worth), plus what the bucket refilled while posting.
    assert 2 * PER_USER <= accepted <= 2 * PER_USER + math.ceil(seconds * PER_USER) + 1, (accepted, seconds)
    error = assert_rate_limited(refused, "user")
    assert head_seq(server, alice, thread) == accepted
    # The refusal was held until a write could go in (200 ms at 5 a second), so it says to
    # send it now, and it goes in; the refused write itself took nothing.
    assert error["retry_after_ms"] == 0 and refused.headers["Retry-After"] == "0", error
    assert post(server, alice, thread, "after the wait").status_code == 201
    # A client that ignores the refusals asks about ten times a second, not as fast as it can.
    asked, started = 0, time.monotonic()
    while time.monotonic() - started < 1:
        post(server, alice, thread, "ignoring the wait")
        asked += 1
    assert asked <= 15, asked
    # Reads are not writes.
    assert server.get(f"/v1/threads/{thread}/events?after=0", headers=bearer(alice)).status_code == 200
    assert head_seq(server, alice, thread) >= accepted + 1


def test_another_user_and_another_tenant_write_on(server, tokens):
    alice, bob, beta = tokens["alice"], tokens["bob"], tokens["beta"]
    thread = server.write("/v1/threads", json={}, headers=bearer(alice)).json()["thread_id"]
    beta_thread = server.write("/v1/threads", json={}, headers=bearer(beta)).json()["thread_id"]
    quiet()
    post_until_refused(server, alice, thread)
    assert post(server, bob, thread, "bob is not alice").status_code == 201
    # The same user id in another tenant is another user.
    assert post(server, beta, beta_thread, "t_beta's alice").status_code == 201
    # A missing or forged credential is 401, not 429, and another tenant's thread is 404, as ever.
    assert server.post(f"/v1/threads/{thread}/messages", json={"text": "no token"}).status_code == 401
    assert post(server, alice + "x", thread, "forged").status_code == 401
    assert post(server, beta, thread, "not yours").status_code == 404


def test_a_tenants_users_together_stop_at_the_tenants_rate(server, tokens):
    alice, bob, carol, beta = tokens["alice"], tokens["bob"], tokens["carol"], tokens["beta"]
    thread = server.write("/v1/threads", json={}, headers=bearer(alice)).json()["thread_id"]
    beta_thread = server.write("/v1/threads", json={}, headers=bearer(beta)).json()["thread_id"]
    quiet()
    # alice and bob each stop at their own limit first (10 each)... but the tenant's 16 come first.
    refusals = []
    for index in range(20):
        for token in (alice, bob):
            answer = post(server, token, thread, f"{index}")
            if answer.status_code == 429:
                refusals.append(answer)
        if refusals:
            break
    error = assert_rate_limited(refusals[0], "tenant")
    assert "writes_per_second_per_tenant" in error["message"]
    # carol has written nothing, and is refused too: the tenant has nothing left.
    assert_rate_limited(post(server, carol, thread, "carol"), "tenant")
    # Another tenant is not touched.
    assert post(server, beta, beta_thread, "t_beta writes on").status_code == 201
    quiet()
    assert post(server, carol, thread, "carol, later").status_code == 201


def test_a_websocket_post_past_the_limit_is_an_error_with_when_to_retry_and_is_not_stored(server, tokens):
    alice = tokens["alice"]
    thread = server.write("/v1/threads", json={}, headers=bearer(alice)).json()["thread_id"]
    quiet()
    with connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=bearer(alice), open_timeout=10) as socket:
        answers = []
        for index in range(2 * PER_USER + 3):
            socket.send(json.dumps({"type": "post", "id": index, "thread_id": thread, "message": {"text": str(index)}}))
        while len(answers) < 2 * PER_USER + 3:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] in ("ack", "error"):
                answers.append(message)
    acks = [answer for answer in answers if answer["type"] == "ack"]
    errors = [answer for answer in answers if answer["type"] == "error"]
    assert len(acks) >= 2 * PER_USER and errors, answers
    for error in errors:
        assert error["status"] == 429 and error["op"] == "post", error
        assert error["error"]["code"] == "rate_limited" and error["error"]["limit"] == "user", error
        assert 1 <= error["error"]["retry_after_ms"] <= 1000
    assert head_seq(server, alice, thread) == len(acks)


def test_uploads_are_writes_and_refusals_are_counted_in_metrics(server, tokens):
    carol = tokens["carol"]
    quiet()
    before = server.get("/metrics").text
    statuses = []
    for index in range(2 * PER_USER + 5):
        answer = server.post(f"/v1/artifacts?filename=f{index}.txt", data=b"x" * 10,
                             headers={**bearer(carol), "Content-Type": "text/plain"})
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert_rate_limited(answer, "user")
            break
    # An artifact route without storage answers 503; either way, it was counted as a write until refused.
    assert statuses[-1] == 429, statuses
    assert all(status in (201, 503) for status in statuses[:-1]), statuses
    after = server.get("/metrics").text

    def refused(text):
        line = [line for line in text.splitlines() if line.startswith('northstar_writes_rate_limited_total{limit="user"}')]
        return float(line[0].split()[-1]) if line else 0.0
    assert refused(after) >= refused(before) + 1


def test_reads_past_the_users_rate_are_held_and_refused_and_writes_and_other_users_go_on(server, tokens):
    carol, bob = tokens["carol"], tokens["bob"]
    thread = server.write("/v1/threads", json={}, headers=bearer(carol)).json()["thread_id"]
    quiet()
    started, refused = time.monotonic(), None
    for reads in range(100):
        asked = time.monotonic()
        answer = server.get(f"/v1/threads/{thread}/events?after=0", headers=bearer(carol))
        if answer.status_code == 429:
            refused = answer
            assert time.monotonic() - asked >= 0.1  # held, as a refused write is
            break
        assert answer.status_code == 200, answer.text
    assert refused is not None, "100 reads and none refused"
    assert 2 * READS_PER_USER <= reads <= 2 * READS_PER_USER + math.ceil((asked - started) * READS_PER_USER) + 1, reads
    assert_rate_limited(refused, "user", kind="reads")
    # carol's writes are counted apart from her reads, and bob reads on.
    assert post(server, carol, thread, "a write, not a read").status_code == 201
    assert server.get(f"/v1/threads/{thread}", headers=bearer(bob)).status_code == 200
    # Unauthenticated and forged requests are 401, as ever; /healthz and /metrics are no one's reads.
    assert server.get(f"/v1/threads/{thread}").status_code == 401
    assert server.get("/healthz").status_code == 200
    assert re.search(r'^northstar_reads_rate_limited_total\{limit="user"\} [1-9]', server.get("/metrics").text, re.M)


def test_streams_opened_past_the_users_read_rate_wait_their_turn_and_none_is_refused(server, tokens):
    # A stream's open reads its log from `after`: it takes a place in the user's reads, and past the rate it
    # starts when its place comes (a client reopening streams as fast as it can is slowed, not refused).
    beta = tokens["beta"]
    thread = server.write("/v1/threads", json={}, headers=bearer(beta)).json()["thread_id"]
    assert post(server, beta, thread, "the one event").status_code == 201
    quiet()
    started, opened = time.monotonic(), []
    for _ in range(3 * READS_PER_USER):
        stream = SSEStream(server.port, f"/sse/chat/{thread}?last_event_id=0", bearer(beta))
        try:
            assert stream.status == 200, stream.error_body()
            assert stream.events(1)[0]["json"]["seq"] == 1  # its catch-up, whole
        finally:
            stream.close()
        opened.append(time.monotonic() - started)
    # A burst of 20 at once, then the last 10 at 10 a second: about a second.
    assert opened[2 * READS_PER_USER - 5] < 1.0
    assert opened[-1] >= (3 * READS_PER_USER - 2 * READS_PER_USER) / READS_PER_USER * 0.8
    assert re.search(r"^northstar_reads_paced_total [1-9]", server.get("/metrics").text, re.M)
    # Another user's stream opens at once meanwhile.
    bob = tokens["bob"]
    own = server.write("/v1/threads", json={}, headers=bearer(bob)).json()["thread_id"]
    asked = time.monotonic()
    stream = SSEStream(server.port, f"/sse/chat/{own}", bearer(bob))
    assert stream.status == 200 and time.monotonic() - asked < 0.5
    stream.close()


def test_zero_turns_the_limits_off(tmp_path):
    server = Server(tmp_path, dev_config(tmp_path, limits={"writes_per_second_per_user": 0,
                                                           "writes_per_second_per_tenant": 0})).start()
    try:
        alice = server.token()
        thread = server.write("/v1/threads", json={}, headers=bearer(alice)).json()["thread_id"]
        for index in range(60):
            assert post(server, alice, thread, str(index)).status_code == 201
    finally:
        server.stop()


RATE_KEYS = ["writes_per_second_per_user", "writes_per_second_per_tenant", "reads_per_second_per_user",
             "reads_per_second_per_tenant", "ws_messages_per_second_per_user", "ws_messages_per_second_per_tenant",
             "auth_failures_per_second"]


@pytest.mark.parametrize("key", RATE_KEYS)
@pytest.mark.parametrize("value", [-1, 1_000_001, 2.5, "fast"])
def test_a_bad_rate_is_refused_at_start_with_its_key(tmp_path, key, value):
    server = Server(tmp_path, dev_config(tmp_path, limits={key: value}))
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert f"limits.{key}" in str(refused.value)
