"""The sse transport plugin: one event shape, resume without loss, isolation
at the handshake, heartbeats, gaps, slow and vanishing clients."""
import json
import socket
import subprocess
import threading
import time

import jsonschema
import pytest

from conftest import Server, bearer, dev_claims, dev_config, dev_secret, gauge, load_schema, sign_hs, wait_for
from sse_client import SSEStream, read_until_closed

EVENT_SCHEMA = load_schema("stream-event.v1.json")


def thread_with_messages(server, headers, count):
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for index in range(count):
        server.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers)
    return thread


def test_curl_gets_replay_then_live_in_the_one_event_shape(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 2)
    curl = subprocess.Popen(["curl", "-sN", "--max-time", "4", "-H", f"Authorization: {headers['Authorization']}",
                             f"{server.url}/sse/chat/{thread}"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.8)
    posted = server.post(f"/v1/threads/{thread}/messages", json={"text": "live"}, headers=headers).json()["event"]
    output, _ = curl.communicate(timeout=10)
    frames = [block for block in output.split("\n\n") if block.startswith("id:")]
    assert len(frames) == 3
    assert output.startswith("retry: ")
    events = []
    for frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        event = json.loads(fields["data"])
        jsonschema.validate(event, EVENT_SCHEMA)
        assert fields["id"] == str(event["seq"]) and fields["event"] == event["type"]
        events.append(event)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[2] == posted  # the same StreamEvent as the REST answer
    rest = server.get(f"/v1/threads/{thread}/events?after=0", headers=headers).json()["events"]
    assert rest == events


def test_canvas_commits_stream_too(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    stream = SSEStream(server.port, f"/sse/canvas/{canvas}", headers)
    server.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                json={"command_id": "c1", "base_rev": 0, "ops": [{"op": "add", "path": "/a", "value": 1}]})
    [event] = stream.events(1)
    assert event["event"] == "canvas.committed" and event["json"]["rev"] == 1
    stream.close()


def test_resume_after_a_drop_with_a_burst_in_flight(server):
    """Drop mid-burst, resume from the last seq seen: every event once, in order."""
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 5)
    burst_done = threading.Event()

    def burst():
        for index in range(200):
            server.post(f"/v1/threads/{thread}/messages", json={"text": f"b{index}"}, headers=headers)
        burst_done.set()

    first = SSEStream(server.port, f"/sse/chat/{thread}", headers)
    writer = threading.Thread(target=burst)
    writer.start()
    seen = [e["json"]["seq"] for e in first.events(40)]
    first.close()  # drop while the burst is still being written
    second = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": str(seen[-1])})
    writer.join()
    seen += [e["json"]["seq"] for e in second.events(205 - len(seen))]
    second.close()
    assert burst_done.is_set()
    assert seen == list(range(1, 206))


def test_last_event_id_query_parameter_and_query_token(server):
    token = server.token()
    thread = thread_with_messages(server, bearer(token), 3)
    stream = SSEStream(server.port, f"/sse/chat/{thread}?access_token={token}&last_event_id=2")
    [event] = stream.events(1)
    assert event["json"]["seq"] == 3
    stream.close()


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "", "99999999999999999999999"])
def test_bad_last_event_id_is_400(server, value):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    stream = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": value} if value else headers)
    if value == "":
        assert stream.status == 200  # no header at all is fine
    else:
        assert stream.status == 400 and stream.error_body()["error"]["code"] == "invalid_last_event_id"
    stream.close()


def refusal(server, path, headers):
    """The status and error code of a stream the server refused."""
    stream = SSEStream(server.port, path, headers)
    try:
        return stream.status, stream.error_body()["error"]["code"]
    finally:
        stream.close()


def test_last_event_id_past_the_head_is_400(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    # The host's refusal, with the code every transport gives a resume point past the head.
    assert refusal(server, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": "9"}) == (400, "invalid_after")


def test_after_resumes_as_on_the_rest_api_and_the_header_wins(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 4)
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    for index in range(3):
        server.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                    json={"command_id": f"c{index}", "base_rev": index, "ops": [{"op": "add", "path": f"/k{index}", "value": index}]})
    for path, expected in ((f"/sse/chat/{thread}?after=2", [3, 4]), (f"/sse/canvas/{canvas}?after=1", [2, 3])):
        stream = SSEStream(server.port, path, headers)
        assert [e["json"]["seq"] for e in stream.events(len(expected))] == expected, path
        stream.close()
    # A browser that reconnects sends Last-Event-ID with the newest seq; it wins over the URL's `after`.
    stream = SSEStream(server.port, f"/sse/chat/{thread}?after=1", {**headers, "Last-Event-ID": "3"})
    [event] = stream.events(1)
    assert event["json"]["seq"] == 4
    stream.close()


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "", "99999999999999999999999", "%31%2e"])
def test_bad_after_is_400_invalid_after(server, value):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    assert refusal(server, f"/sse/chat/{thread}?after={value}", headers) == (400, "invalid_after")
    # Checked even where Last-Event-ID would win: a bad value is never passed over.
    assert refusal(server, f"/sse/chat/{thread}?after={value}", {**headers, "Last-Event-ID": "1"}) == (400, "invalid_after")
    assert refusal(server, f"/sse/chat/{thread}?after=9", headers) == (400, "invalid_after")


def test_a_bad_last_event_id_query_is_refused_even_beside_the_header(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 2)
    assert refusal(server, f"/sse/chat/{thread}?last_event_id=x", {**headers, "Last-Event-ID": "1"}) == (400, "invalid_last_event_id")
    # All three given and well formed: the header wins.
    stream = SSEStream(server.port, f"/sse/chat/{thread}?after=0&last_event_id=0", {**headers, "Last-Event-ID": "1"})
    [event] = stream.events(1)
    assert event["json"]["seq"] == 2
    stream.close()


def test_isolation_at_the_handshake(server):
    owner = bearer(server.token(tenant="t_alpha"))
    thread = thread_with_messages(server, owner, 1)
    canvas = server.post("/v1/canvases", json={}, headers=owner).json()["canvas_id"]
    secret = dev_secret(server.data_dir)
    cases = {
        "other_tenant": (bearer(server.token(tenant="t_beta")), 404),
        "other_env": (bearer(server.token(tenant="t_alpha", env="staging")), 401),
        "none": ({}, 401),
        "expired": (bearer(sign_hs(secret, dev_claims(exp=1_600_000_000, iat=1_599_990_000))), 401),
        "forged": (bearer(sign_hs(b"x" * 40, dev_claims())), 401),
        "no_chat_read_scope": (bearer(server.token(tenant="t_alpha", scopes="canvas:read")), 403),
    }
    missing = SSEStream(server.port, "/sse/chat/th_" + "a" * 26, cases["other_tenant"][0])
    missing_body = missing.error_body()
    for name, (headers, status) in cases.items():
        for path in (f"/sse/chat/{thread}", f"/sse/canvas/{canvas}"):
            if name == "no_chat_read_scope" and "canvas" in path:
                continue
            stream = SSEStream(server.port, path, headers)
            assert stream.status == status, (name, path)
            body = stream.error_body()
            if name == "other_tenant" and "chat" in path:
                assert body == missing_body  # not yours == not found
            stream.close()


def test_a_client_that_vanishes_mid_event_leaves_others_unaffected(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    for _ in range(20):
        stream = SSEStream(server.port, f"/sse/chat/{thread}", headers)
        stream.sock.shutdown(socket.SHUT_RDWR)
        stream.close()
    keeper = SSEStream(server.port, f"/sse/chat/{thread}", headers)
    server.post(f"/v1/threads/{thread}/messages", json={"text": "after"}, headers=headers)
    assert [e["json"]["seq"] for e in keeper.events(2)] == [1, 2]
    keeper.close()
    assert server.get("/healthz").status_code == 200


def heartbeat_every_second(data_dir, **sections):
    """Writes a config of the dev JWT provider and the sse transport with a
    heartbeat every second, and these other sections; returns its path."""
    config = data_dir / "config.json"
    config.write_text(json.dumps({
        **sections,
        "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
                        "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
                    {"name": "sse", "path": "libNorthstarSSE.so", "config": {"heartbeat_seconds": 1}}]}))
    return config


def test_heartbeat_and_gap(data_dir):
    server = Server(data_dir, config=heartbeat_every_second(data_dir, store={"retain_events_per_stream": 3})).start()
    try:
        headers = bearer(server.token())
        thread = thread_with_messages(server, headers, 10)
        stream = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": "2"})
        frames = [stream.frame() for _ in range(2)]  # retry, then the gap
        gap = json.loads(frames[1]["data"])
        assert frames[1]["event"] == "stream.gap" and gap == {"v": 1, "type": "stream.gap", "requested_after": 2, "first_seq": 8}
        assert [e["json"]["seq"] for e in stream.events(3)] == [8, 9, 10]
        assert "northstar_gaps_served_total 1\n" in server.get("/metrics").text
        assert stream.frame().get("comment") == "keepalive"  # within a second or so
        stream.close()
        # Query tokens are off unless configured.
        refused = SSEStream(server.port, f"/sse/chat/{thread}?access_token={server.token()}")
        assert refused.status == 401
        refused.close()
    finally:
        server.kill()


def stalled_subscriber(server, headers):
    """An SSE subscriber that reads nothing while ~6.4 MB of events (800)
    are published to its thread; returns the thread and the stream."""
    thread = thread_with_messages(server, headers, 0)
    stalled = SSEStream(server.port, f"/sse/chat/{thread}", headers)
    big = "x" * 8000
    for _ in range(800):
        server.write(f"/v1/threads/{thread}/messages", json={"text": big}, headers=headers)
    return thread, stalled


def test_a_client_that_never_reads_is_cut_off_and_memory_stays_bounded(server):
    headers = bearer(server.token())
    thread, stalled = stalled_subscriber(server, headers)
    # Now read: what was queued arrives, then the response ends (the server cut
    # the stream rather than queue without bound); the client resumes from its last id.
    seqs, ends, ended = read_until_closed(stalled)
    assert ended, "the stalled stream was not ended"
    assert 0 < len(seqs) < 800 and seqs == list(range(1, len(seqs) + 1))
    # Its last word names where to resume, and then the socket itself closes
    # (a cut-off client does not keep a connection, and its memory, open).
    assert [(end["reason"], end["last_seq"]) for end in ends] == [("slow_consumer", seqs[-1])], ends
    assert f"resume after seq {seqs[-1]}" in ends[0]["message"]
    stalled.sock.settimeout(5)
    assert stalled.sock.recv(65536) == b"", "the socket stayed open after the stream was cut off"
    rss = subprocess.run(["ps", "-o", "rss=", "-p", str(server.process.pid)], capture_output=True, text=True)
    assert int(rss.stdout.strip()) < 400_000  # KiB
    assert server.get("/healthz").status_code == 200
    assert 'northstar_slow_consumer_cutoffs_total{transport="sse"} 1\n' in server.get("/metrics").text
    # Resuming from the last id delivered misses nothing.
    resumed = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": str(seqs[-1])})
    assert resumed.events(1)[0]["json"]["seq"] == seqs[-1] + 1
    resumed.close()


def test_a_heartbeat_that_meets_a_full_queue_ends_the_stream_with_where_to_resume(data_dir):
    """A stream is usually cut off at a live event, which ends it with
    `stream.end`. Here the catch-up queues an event larger than the whole
    queue and then waits for a client that reads nothing: the next heartbeat
    finds the queue full, and that cut-off must end the stream the same way
    (it used to end the response with no last word)."""
    COMMANDS = 12
    server = Server(data_dir, config=heartbeat_every_second(data_dir, limits={"slow_consumer_grace_seconds": 30})).start()
    try:
        headers = bearer(server.token())
        canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
        for rev in range(COMMANDS):  # 900 KB each: larger than the 256 KiB queue, 10.8 MB past the kernel's buffers
            ops = [{"op": "add", "path": "/v", "value": chr(ord("a") + rev) * 900_000}]
            answer = server.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                                 json={"command_id": f"c{rev}", "base_rev": rev, "ops": ops})
            assert answer.status_code == 201, answer.text
        stalled = SSEStream(server.port, f"/sse/canvas/{canvas}", headers, timeout=20)
        time.sleep(3)  # two heartbeats or more while the catch-up waits for room
        seqs, ends, ended = read_until_closed(stalled, "canvas.committed")
        assert ended, "the stalled stream was not ended"
        assert seqs and seqs == list(range(1, len(seqs) + 1)) and len(seqs) < COMMANDS, seqs
        assert [(end["reason"], end["last_seq"]) for end in ends] == [("slow_consumer", seqs[-1])], ends
        resumed = SSEStream(server.port, f"/sse/canvas/{canvas}", {**headers, "Last-Event-ID": str(seqs[-1])}, timeout=20)
        assert [event["json"]["seq"] for event in resumed.events(COMMANDS - seqs[-1])] == list(range(seqs[-1] + 1, COMMANDS + 1))
        resumed.close()
    finally:
        server.kill()


def test_a_cut_off_client_gets_its_last_word_for_the_whole_grace_however_short_the_idle_timeout(data_dir):
    """A slow consumer's last word is kept for `slow_consumer_grace_seconds`.
    The stream's response has ended by then, but its bytes are not on the
    wire: the connection is not idle, so `idle_timeout_seconds` (1 s here)
    must not close it under the client first."""
    config = dev_config(data_dir, limits={"idle_timeout_seconds": 1, "slow_consumer_grace_seconds": 30})
    server = Server(data_dir, config=config).start()
    try:
        headers = bearer(server.token())
        _, stalled = stalled_subscriber(server, headers)
        deadline = time.monotonic() + 10
        while 'northstar_slow_consumer_cutoffs_total{transport="sse"} 1\n' not in server.get("/metrics").text:
            assert time.monotonic() < deadline, "the stalled client was not cut off"
            time.sleep(0.1)
        time.sleep(3)  # three idle timeouts, well inside the grace
        seqs, ends, ended = read_until_closed(stalled)
        assert ended, "the stalled stream was not closed"
        assert 0 < len(seqs) < 800 and seqs == list(range(1, len(seqs) + 1))
        assert [(end["reason"], end["last_seq"]) for end in ends] == [("slow_consumer", seqs[-1])], ends
    finally:
        server.kill()


def test_sigterm_ends_open_streams_and_the_server_exits(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 2)
    streams = [SSEStream(server.port, f"/sse/chat/{thread}", headers) for _ in range(3)]
    for stream in streams:
        assert [e["json"]["seq"] for e in stream.events(2)] == [1, 2]
    started = time.monotonic()
    assert server.stop(timeout=20) == 0
    assert time.monotonic() - started < 10
    for stream in streams:
        frame = stream.frame()
        assert frame["event"] == "stream.end"
        end = json.loads(frame["data"])
        assert end["reason"] == "server_closed" and "resume after seq 2" in end["message"]
        stream.close()


def test_a_client_that_leaves_is_forgotten_at_once_without_another_event(server):
    """The transport hears that its client left when the socket closes (its
    on_exchange_closed), not at the next write: an idle stream that is
    dropped stops counting as a subscriber at once."""
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    streams = [SSEStream(server.port, f"/sse/chat/{thread}", headers) for _ in range(3)]
    for stream in streams:
        assert [e["json"]["seq"] for e in stream.events(1)] == [1]

    def live_subscribers():
        return gauge(server, "northstar_live_subscribers")

    assert wait_for(lambda: live_subscribers() == 3, seconds=5)
    for stream in streams:
        stream.close()
    assert wait_for(lambda: live_subscribers() == 0, seconds=3)
