"""A backlog larger than a connection's send queue (`limits.send_queue_bytes`)
reaches a subscriber that reads it, whole and in order, over SSE and WS: the
catch-up is paced by what the client reads. Only a client that stops
reading is a slow consumer."""
import json
import time

import pytest
from websockets.sync.client import connect

from conftest import bearer
from sse_client import SSEStream

COUNT = 300
TEXT = "x" * 4000  # 300 events of about 4.3 KB: 1.3 MB, five times the 256 KiB queue


@pytest.fixture
def backlog(server):
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for index in range(COUNT):
        answer = server.post(f"/v1/threads/{thread}/messages", json={"text": f"{index} {TEXT}"}, headers=headers)
        assert answer.status_code == 201
    return server, headers, thread


def test_sse_catch_up_of_a_backlog_larger_than_the_queue_arrives_whole(backlog):
    server, headers, thread = backlog
    stream = SSEStream(server.port, f"/sse/chat/{thread}", headers, timeout=20)
    assert stream.status == 200
    seqs = []
    while len(seqs) < COUNT:
        frame = stream.frame()
        if frame.get("event") == "chat.message":
            seqs.append(json.loads(frame["data"])["seq"])
        assert frame.get("event") != "stream.end", frame
    assert seqs == list(range(1, COUNT + 1))
    # Still open, and live: the next message arrives.
    server.post(f"/v1/threads/{thread}/messages", json={"text": "live"}, headers=headers)
    while (frame := stream.frame()).get("event") != "chat.message":
        pass
    assert json.loads(frame["data"])["seq"] == COUNT + 1
    stream.close()


def test_ws_catch_up_of_a_backlog_larger_than_the_queue_arrives_whole(backlog):
    server, headers, thread = backlog
    with connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=headers, max_size=None) as socket:
        socket.send(json.dumps({"type": "subscribe", "id": 1, "stream": f"chat:{thread}", "after": 0}))
        seqs = []
        while len(seqs) < COUNT:
            message = json.loads(socket.recv(timeout=20))
            assert message["type"] in ("subscribed", "event"), message
            if message["type"] == "event":
                seqs.append(message["event"]["seq"])
        assert seqs == list(range(1, COUNT + 1))


def test_a_client_that_reads_the_backlog_slowly_still_gets_all_of_it(backlog):
    server, headers, thread = backlog
    stream = SSEStream(server.port, f"/sse/chat/{thread}", headers, timeout=20)
    stream.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 8192)
    seqs = []
    started = time.monotonic()
    while len(seqs) < COUNT:
        frame = stream.frame()
        assert frame.get("event") != "stream.end", frame
        if frame.get("event") == "chat.message":
            seqs.append(json.loads(frame["data"])["seq"])
            if len(seqs) % 20 == 0:
                time.sleep(0.2)  # a client busy elsewhere: 3 s in all
    assert seqs == list(range(1, COUNT + 1))
    assert time.monotonic() - started > 2.5
    stream.close()
