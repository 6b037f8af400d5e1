"""A backlog larger than a connection's send queue (`limits.send_queue_bytes`)
reaches a subscriber that reads it, whole and in order, over SSE and WS: the
catch-up is paced by what the client reads. Only a client that stops
reading is a slow consumer."""
import json
import socket
import time

import pytest
from websockets.sync.client import connect

from conftest import Server, bearer, dev_config
from sse_client import SSEStream

COUNT = 300
TEXT = "x" * 4000  # 300 events of about 4.3 KB: 1.3 MB, five times the 256 KiB queue


@pytest.fixture
def backlog(server):
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for index in range(COUNT):
        answer = server.write(f"/v1/threads/{thread}/messages", json={"text": f"{index} {TEXT}"}, headers=headers)
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


GRACE = 2  # seconds: limits.slow_consumer_grace_seconds on the impatient node
# A backlog past what loopback's kernel buffers take for a client that does not
# read (a send buffer grows to tcp_wmem's 4 MiB) plus the 256 KiB queue: 6.5 MB.
BIG_COUNT = 400
BIG_TEXT = "y" * 16000


@pytest.fixture
def impatient_backlog(data_dir):
    """A node that waits GRACE s, not 60, for a client that stopped reading; a big backlog on it."""
    server = Server(data_dir, config=dev_config(data_dir, limits={"slow_consumer_grace_seconds": GRACE})).start()
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for index in range(BIG_COUNT):
        assert server.write(f"/v1/threads/{thread}/messages", json={"text": f"{index} {BIG_TEXT}"}, headers=headers).status_code == 201
    yield server, headers, thread
    server.kill()


def test_a_client_that_stops_reading_its_backlog_is_cut_off_after_the_grace_and_resumes_without_loss(impatient_backlog):
    server, headers, thread = impatient_backlog
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    client.connect(("127.0.0.1", server.port))
    client.sendall((f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                    f"Authorization: {headers['Authorization']}\r\n\r\n").encode())
    started = time.monotonic()
    # Read nothing while the server waits, then read what it sent until it closes the socket.
    time.sleep(2 * GRACE + 1)  # the queue fills, then the grace runs out
    client.settimeout(15)
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    closed_after = time.monotonic() - started
    client.close()
    # Cut off after the grace, not after the default 60 s.
    assert closed_after < 20, closed_after
    seqs = [json.loads(line[len(b"data: "):])["seq"] for line in received.split(b"\n")
            if line.startswith(b"data: ") and b'"type":"chat.message"' in line]
    assert 0 < len(seqs) < BIG_COUNT, "the client was not cut off"
    assert seqs == list(range(1, len(seqs) + 1)), "what arrived before the cut-off has a gap"
    # The last word may not have reached a client that read nothing within
    # the grace (its socket is closed then); when it did, it names where to resume.
    if b"stream.end" in received:
        end = json.loads(received.split(b"event: stream.end")[1].split(b"data: ")[1].split(b"\n")[0])
        assert end["reason"] == "slow_consumer" and end["last_seq"] == seqs[-1], end
    # Nothing stays held for it on the server.
    deadline = time.monotonic() + 5
    while "northstar_transport_exchanges_open 0" not in server.get("/metrics").text:
        assert time.monotonic() < deadline, "the cut-off stream's exchange is still open"
        time.sleep(0.1)
    # It resumes after the last event it read and misses nothing.
    stream = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": str(seqs[-1])}, timeout=20)
    rest = []
    while len(rest) < BIG_COUNT - len(seqs):
        frame = stream.frame()
        assert frame.get("event") != "stream.end", frame
        if frame.get("event") == "chat.message":
            rest.append(json.loads(frame["data"])["seq"])
    assert rest == list(range(seqs[-1] + 1, BIG_COUNT + 1))
    stream.close()


def raw_stalled_client(server, request):
    """A socket with a small receive window that sends `request` and reads nothing."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    client.connect(("127.0.0.1", server.port))
    client.sendall(request.encode())
    return client


def ws_text_messages(data):
    """The JSON of each text frame in what a server sent after its 101, and the close code, if any."""
    data = data.split(b"\r\n\r\n", 1)[1]
    messages, close = [], None
    while len(data) >= 2:
        opcode, length, start = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(data[2:10], "big"), 10
        payload, data = data[start:start + length], data[start + length:]
        if opcode == 0x1:
            messages.append(json.loads(payload))
        elif opcode == 0x8:
            close = int.from_bytes(payload[:2], "big")
    return messages, close


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_a_catch_up_cut_off_names_the_last_event_the_client_got_never_one_it_did_not(impatient_backlog, transport):
    """The catch-up takes each event from the log, then waits for room in
    the connection before handing it to the transport. A client that stops
    reading is cut off during that wait: its last word must name the last
    event it was sent, not the one that waited (a client that resumed after
    that one, as the browser client does, would never get it)."""
    server, headers, thread = impatient_backlog
    auth = f"Authorization: {headers['Authorization']}\r\n"
    if transport == "sse":
        request = f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{auth}\r\n"
    else:
        request = (f"GET /ws/chat/{thread} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n")
    client = raw_stalled_client(server, request)
    # Cut off once the queue has been full for the grace; its last word then waits for the client another grace.
    cutoffs = f'northstar_slow_consumer_cutoffs_total{{transport="{transport}"}} 1\n'
    deadline = time.monotonic() + 30
    while cutoffs not in server.get("/metrics").text:
        assert time.monotonic() < deadline, "the stalled client was not cut off"
        time.sleep(0.05)
    client.settimeout(15)
    received = b""
    while chunk := client.recv(1 << 20):
        received += chunk
    client.close()
    if transport == "sse":
        frames = [json.loads(line[len(b"data: "):]) for line in received.split(b"\n") if line.startswith(b"data: ")]
        seqs = [frame["seq"] for frame in frames if frame.get("type") == "chat.message"]
        ends = [(frame["reason"], frame["last_seq"]) for frame in frames if frame.get("type") == "stream.end"]
    else:
        messages, close = ws_text_messages(received)
        assert close == 4008, close
        seqs = [message["event"]["seq"] for message in messages if message["type"] == "event"]
        ends = [(message["code"], message["last_seq"]) for message in messages if message["type"] == "end"]
    assert 0 < len(seqs) < BIG_COUNT and seqs == list(range(1, len(seqs) + 1)), seqs[-3:]
    assert ends == [("slow_consumer", seqs[-1])], (ends, seqs[-1])
