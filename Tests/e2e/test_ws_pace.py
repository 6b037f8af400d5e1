"""WebSocket messages are paced per user and per tenant
(`limits.ws_messages_per_second_per_user` and `..._per_tenant`, a burst of
two seconds' worth): past the pace, the node reads a socket's next message
only when its place comes, so a client sending as fast as it can is slowed
(by TCP) and refused nothing; every message is answered. Other users and
other tenants go on at once."""
import json
import re
import threading
import time

import pytest
from websockets.sync.client import connect

from conftest import Server, bearer, dev_config
from test_ws import ws_url

PER_USER = 20     # a burst of 40, then one every 50 ms
PER_TENANT = 30   # a burst of 60 for all of a tenant's users


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ws-pace")
    server = Server(data_dir, dev_config(data_dir, limits={"ws_messages_per_second_per_user": PER_USER,
                                                           "ws_messages_per_second_per_tenant": PER_TENANT,
                                                           "writes_per_second_per_user": 0,
                                                           "writes_per_second_per_tenant": 0})).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(server):
    return {name: server.token(tenant=tenant, user=user)
            for name, tenant, user in [("alice", "t_alpha", "alice"), ("bob", "t_alpha", "bob"), ("beta", "t_beta", "alice")]}


def quiet():
    time.sleep(2.2)  # every bucket is full again


def pings(token, server, count, start=0):
    """Sends `count` pings at once on a new socket; returns the seconds until each pong, in order."""
    with connect(ws_url(server, "/ws"), additional_headers=bearer(token), open_timeout=10) as socket:
        started = time.monotonic()
        for n in range(start, start + count):
            socket.send(json.dumps({"type": "ping", "id": n}))
        arrivals = []
        for n in range(start, start + count):
            assert json.loads(socket.recv(timeout=30)) == {"type": "pong", "id": n}  # each answered, in order
            arrivals.append(time.monotonic() - started)
        return arrivals


def test_past_the_burst_a_socket_is_read_at_the_users_pace_and_every_message_is_answered_in_order(server, tokens):
    quiet()
    arrivals = pings(tokens["alice"], server, 100)
    assert arrivals[2 * PER_USER - 5] < 1.0  # the burst at once
    assert arrivals[-1] >= (100 - 2 * PER_USER) / PER_USER * 0.8  # the rest at the pace: about 3 s
    metrics = server.get("/metrics").text
    assert re.search(r"^northstar_ws_messages_paced_total [1-9]", metrics, re.M), metrics


def test_a_users_sockets_share_one_pace_and_another_tenant_goes_on_at_once(server, tokens):
    quiet()
    results = {}

    def alice(index):
        results[index] = pings(tokens["alice"], server, 50, start=index * 1000)

    sockets = [threading.Thread(target=alice, args=(index,)) for index in range(2)]
    for socket in sockets:
        socket.start()
    time.sleep(0.5)  # alice's burst is spent by now
    other = pings(tokens["beta"], server, 10)
    for socket in sockets:
        socket.join(timeout=60)
    # 100 of alice's messages on two sockets: her burst, then her pace, not twice it.
    assert max(results[0][-1], results[1][-1]) >= (100 - 2 * PER_USER) / PER_USER * 0.8
    assert other[-1] < 1.0


def test_a_tenants_users_together_are_read_at_the_tenants_pace(server, tokens):
    quiet()
    results = {}

    def user(name):
        results[name] = pings(tokens[name], server, 40)  # each within its own burst

    users = [threading.Thread(target=user, args=(name,)) for name in ("alice", "bob")]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(timeout=60)
    # 80 together against the tenant's burst of 60: the last 20 at its pace of 30 a second.
    assert max(results["alice"][-1], results["bob"][-1]) >= (80 - 2 * PER_TENANT) / PER_TENANT * 0.8


def test_paced_posts_are_each_answered_and_stored_once(server, tokens):
    quiet()
    headers = bearer(tokens["alice"])
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    with connect(ws_url(server, "/ws"), additional_headers=headers, open_timeout=10) as socket:
        for n in range(60):
            socket.send(json.dumps({"type": "post", "id": n, "thread_id": thread, "message": {"text": str(n)}}))
        acks = []
        while len(acks) < 60:
            message = json.loads(socket.recv(timeout=30))
            if message["type"] != "event":
                acks.append(message)
    # Posts run concurrently, as ever: their answers may come in any order, each once.
    assert sorted((ack["type"], ack["id"], ack["status"]) for ack in acks) == [("ack", n, 201) for n in range(60)]
    events = server.get(f"/v1/threads/{thread}/events?after=0", headers=headers).json()["events"]
    assert sorted(int(event["data"]["text"]) for event in events) == list(range(60))


def test_zero_turns_the_pace_off(tmp_path):
    server = Server(tmp_path, dev_config(tmp_path, limits={"ws_messages_per_second_per_user": 0,
                                                           "ws_messages_per_second_per_tenant": 0})).start()
    try:
        arrivals = pings(server.token(), server, 4000)
        assert arrivals[-1] < 10  # at the default pace (200 a second after a burst of 400) they would take 18 s or more
        assert "northstar_ws_messages_paced_total" not in server.get("/metrics").text
    finally:
        server.stop()
