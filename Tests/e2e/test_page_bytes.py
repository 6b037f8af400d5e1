"""Pages of events and revisions are bounded by bytes as well as by count.

A canvas command carries up to a request body of operations, and its event
carries them, so a page of 1,000 events could be a thousand bodies. A page
holds events while those before it hold less than 1 MiB, always at least one;
`next_after` continues, and only an empty page means the reader has it all.
Runs on SQLite and on PostgreSQL (scripts/test)."""
import concurrent.futures
import json
import threading
import time

import pytest
import requests
from websockets.sync.client import connect

from conftest import bearer
from sse_client import SSEStream, read_until_closed

MIB = 1 << 20
BIG = 300_000


def commit(server, headers, canvas, rev, value):
    ops = [{"op": "add", "path": "/v", "value": value}, {"op": "add", "path": "/n", "value": rev + 1}]
    answer = server.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                         json={"command_id": f"c{rev}", "base_rev": rev, "ops": ops})
    assert answer.status_code == 201, answer.text


@pytest.fixture
def large_canvas(server):
    """A canvas of 12 commands: 300 KB ones, each followed by a small one."""
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    for rev in range(12):
        commit(server, headers, canvas, rev, chr(ord("a") + rev) * BIG if rev % 2 == 0 else rev)
    return server, headers, canvas


def expected_value(rev):
    """What revision `rev`'s command set /v to."""
    return chr(ord("a") + rev - 1) * BIG if rev % 2 == 1 else rev - 1


def read_all(server, headers, path, key):
    """Every item of a paged listing, following next_after; and each page's size."""
    after, items, pages = 0, [], []
    while True:
        answer = server.get(f"{path}?after={after}&limit=1000", headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if not body[key]:
            assert body["next_after"] is None
            return items, pages
        pages.append(len(answer.content))
        items += body[key]
        assert body["next_after"] == items[-1]["seq" if key == "events" else "rev"]
        after = body["next_after"]


def test_a_page_of_events_stops_near_a_mebibyte_and_next_after_reads_the_rest_once(large_canvas):
    server, headers, canvas = large_canvas
    events, pages = read_all(server, headers, f"/v1/canvases/{canvas}/events", "events")
    assert [event["seq"] for event in events] == list(range(1, 13))
    assert [event["rev"] for event in events] == list(range(1, 13))
    assert [event["data"]["ops"][0]["value"] for event in events] == [expected_value(rev) for rev in range(1, 13)]
    # 1.8 MB of events: more than one page, each at most the budget and one event past it.
    assert len(pages) >= 2 and max(pages) < MIB + BIG + 10_000, pages


def test_a_page_of_revisions_is_bounded_the_same_way(large_canvas):
    server, headers, canvas = large_canvas
    revisions, pages = read_all(server, headers, f"/v1/canvases/{canvas}/revisions", "revisions")
    assert [revision["rev"] for revision in revisions] == list(range(1, 13))
    assert [revision["ops"][0]["value"] for revision in revisions] == [expected_value(rev) for rev in range(1, 13)]
    assert len(pages) >= 2 and max(pages) < MIB + BIG + 10_000, pages
    # A small limit still bounds the count.
    assert [r["rev"] for r in server.get(f"/v1/canvases/{canvas}/revisions?after=1&limit=1", headers=headers).json()["revisions"]] == [2]


def test_past_revisions_rebuild_across_pages_of_operations(large_canvas):
    server, headers, canvas = large_canvas
    for rev in (1, 2, 7, 11, 12):
        answer = server.get(f"/v1/canvases/{canvas}?rev={rev}", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["document"] == {"v": expected_value(rev), "n": rev}


def test_sse_and_ws_catch_up_through_byte_bounded_pages_gets_every_event_once(large_canvas):
    server, headers, canvas = large_canvas
    stream = SSEStream(server.port, f"/sse/canvas/{canvas}", {**headers, "Last-Event-ID": "1"}, timeout=20)
    assert stream.status == 200
    seqs = []
    while len(seqs) < 11:
        frame = stream.frame()
        assert frame.get("event") != "stream.end", frame
        if frame.get("event") == "canvas.committed":
            seqs.append(json.loads(frame["data"])["seq"])
    stream.close()
    assert seqs == list(range(2, 13))
    with connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=headers, max_size=None) as socket:
        socket.send(json.dumps({"type": "subscribe", "id": 1, "stream": f"canvas:{canvas}", "after": 0}))
        seqs = []
        while len(seqs) < 12:
            message = json.loads(socket.recv(timeout=20))
            assert message["type"] in ("subscribed", "event"), message
            if message["type"] == "event":
                seqs.append(message["event"]["seq"])
        assert seqs == list(range(1, 13))


def test_live_events_larger_than_the_send_queue_reach_readers_whole(large_canvas):
    """A 900 KB event is past the 256 KiB send queue; a client that reads
    still gets it whole, live, over SSE and WebSocket, and stays open."""
    server, headers, canvas = large_canvas
    stream = SSEStream(server.port, f"/sse/canvas/{canvas}", {**headers, "Last-Event-ID": "12"}, timeout=20)
    with connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=headers, max_size=None) as socket:
        socket.send(json.dumps({"type": "subscribe", "id": 1, "stream": f"canvas:{canvas}", "after": 12}))
        assert json.loads(socket.recv(timeout=10))["type"] == "subscribed"
        time.sleep(0.2)  # both are live
        for rev in (12, 13):
            commit(server, headers, canvas, rev, chr(ord("p") + rev) * 900_000)
        sse_events = []
        while len(sse_events) < 2:
            frame = stream.frame()
            assert frame.get("event") != "stream.end", frame
            if frame.get("event") == "canvas.committed":
                sse_events.append(json.loads(frame["data"]))
        ws_events = []
        while len(ws_events) < 2:
            message = json.loads(socket.recv(timeout=20))
            assert message["type"] == "event", message
            ws_events.append(message["event"])
        for events in (sse_events, ws_events):
            assert [e["seq"] for e in events] == [13, 14]
            assert [e["data"]["ops"][0]["value"] for e in events] == [chr(ord("p") + rev) * 900_000 for rev in (12, 13)]
    stream.close()


def test_a_client_that_stops_reading_large_events_is_cut_off_bounded_and_resumes_without_loss(large_canvas):
    server, headers, canvas = large_canvas
    stalled = SSEStream(server.port, f"/sse/canvas/{canvas}", {**headers, "Last-Event-ID": "12"}, timeout=20)
    time.sleep(0.2)
    before = rss_mb(server.process.pid)
    for rev in range(12, 32):  # 20 events of 900 KB: 18 MB the client does not read
        commit(server, headers, canvas, rev, chr(ord("a") + rev % 26) * 900_000)
    held = rss_mb(server.process.pid) - before
    # It reads now: what was written arrives, then its last word names where to resume.
    seqs, ends, _ = read_until_closed(stalled, "canvas.committed")
    assert len(ends) == 1 and ends[0]["reason"] == "slow_consumer", ends
    end = ends[0]
    assert seqs == list(range(13, end["last_seq"] + 1)) and end["last_seq"] < 32
    assert held < 60, f"the server held {held} MB more while one client did not read 18 MB"
    resumed = SSEStream(server.port, f"/sse/canvas/{canvas}", {**headers, "Last-Event-ID": str(end["last_seq"])}, timeout=20)
    rest = []
    while len(rest) < 32 - end["last_seq"]:
        frame = resumed.frame()
        if frame.get("event") == "canvas.committed":
            rest.append(int(frame["id"]))
    assert rest == list(range(end["last_seq"] + 1, 33))
    resumed.close()


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def test_concurrent_reads_of_a_large_log_hold_pages_not_the_log(server):
    """40 commands of 900 KB: 36 MB of events. Before pages had a byte
    budget, one read of 1,000 events was a 36 MB answer and eight at once
    took the server's memory up by several hundred MB."""
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    for rev in range(40):
        commit(server, headers, canvas, rev, chr(ord("a") + rev % 26) * 900_000)
    pid = server.process.pid
    # Warm: one read of each listing, so what every request costs anyway is counted in the baseline.
    for path in ("events", "revisions"):
        assert server.get(f"/v1/canvases/{canvas}/{path}?after=0&limit=1000", headers=headers).status_code == 200
    baseline = rss_mb(pid)
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.02)

    def read(index):
        path = "events" if index % 2 == 0 else "revisions"
        answer = requests.get(f"{server.url}/v1/canvases/{canvas}/{path}?after=0&limit=1000", headers=headers, timeout=60)
        assert answer.status_code == 200
        return len(answer.content)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            sizes = list(pool.map(read, range(16)))
    finally:
        done.set()
        sampler.join()
    # Each answer is one page: about 1 MiB and one event past it, not 36 MB.
    assert max(sizes) < MIB + 900_000 + 10_000, sizes
    assert peak[0] - baseline < 80, (baseline, peak[0])
