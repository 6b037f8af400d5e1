"""Fan-out: every subscriber gets every event exactly once, in order, over
SSE and WebSocket, including subscribers that join or resume while events
are being published (the seam between reading the log and live delivery).
Bounded: a few hundred events, a few dozen clients, seconds."""
import json
import random
import re
import subprocess
import threading

import pytest
from websockets.sync.client import connect

from conftest import BIN, bearer
from sse_client import SSEStream

EVENTS = 240


def publish(server, thread, headers, count, start_event):
    start_event.wait()
    session_post = server.post
    for index in range(count):
        assert session_post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers).status_code == 201


def sse_seqs(server, thread, headers, after, last):
    stream = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": str(after)}, timeout=30)
    seqs = []
    while not seqs or seqs[-1] < last:
        frame = stream.frame()
        if frame.get("event") == "chat.message":
            seqs.append(int(frame["id"]))
    stream.close()
    return seqs


def ws_seqs(server, thread, headers, after, last):
    seqs = []
    with connect(f"ws://127.0.0.1:{server.port}/ws/chat/{thread}?after={after}", additional_headers=headers) as socket:
        while not seqs or seqs[-1] < last:
            message = json.loads(socket.recv(timeout=30))
            if message["type"] == "event":
                seqs.append(message["event"]["seq"])
    return seqs


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_subscribers_joining_and_resuming_mid_stream_get_each_event_once_in_order(server, transport):
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    go = threading.Event()
    publishers = [threading.Thread(target=publish, args=(server, thread, headers, EVENTS // 4, go)) for _ in range(4)]
    for publisher in publishers:
        publisher.start()
    read = sse_seqs if transport == "sse" else ws_seqs
    results, errors = {}, []
    random.seed(13)

    def follow(index, after):
        try:
            results[index] = (after, read(server, thread, headers, after, EVENTS))
        except Exception as error:  # reported below, with the subscriber it hit
            errors.append((index, after, repr(error)))

    followers = []
    go.set()
    for index in range(24):
        # Join at the start, or resume from wherever the stream is now.
        head = server.get(f"/v1/threads/{thread}/events?after=0&limit=1", headers=headers).json()["head_seq"]
        after = 0 if index % 3 == 0 else random.randint(0, head)
        follower = threading.Thread(target=follow, args=(index, after))
        follower.start()
        followers.append(follower)
    for thread_ in publishers + followers:
        thread_.join(timeout=60)
    assert not errors, errors
    assert len(results) == 24
    for index, (after, seqs) in results.items():
        assert seqs == list(range(after + 1, EVENTS + 1)), (index, after, seqs[:5], len(seqs))


@pytest.mark.parametrize("scheme, path", [("http", "sse"), ("ws", "ws")])
def test_every_subscriber_gets_every_event_under_load(server, scheme, path):
    token = server.token()
    thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
    result = subprocess.run([str(BIN / "northstar-load"),
                             "--subscribe", f"{scheme}://127.0.0.1:{server.port}/{path}/chat/{thread}",
                             "--publish", f"{server.url}/v1/threads/{thread}/messages",
                             "--header", f"Authorization: Bearer {token}",
                             "--subscribers", "200", "--rate", "20", "--seconds", "2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "200 connected, 0 failed" in result.stdout, result.stdout
    delivered = re.search(r"delivered: (\d+) of (\d+)", result.stdout)
    assert delivered and delivered.group(1) == delivered.group(2) == str(200 * 40), result.stdout
    assert server.get("/healthz").status_code == 200
