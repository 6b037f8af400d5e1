"""Hostile HTTP: every malformed request is answered with its status and
closed, slow and silent clients are timed out, and a connection flood is
refused at the door while /healthz keeps answering."""
import json
import os
import re
import resource
import socket
import threading
import time

import pytest
import requests

from conftest import Server, bearer, dev_config, wait_for
from sse_client import SSEStream


def exchange(port, raw, timeout=5.0, source="127.0.0.1"):
    """Sends raw bytes; returns (everything the server wrote, whether it closed, seconds until it did)."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    started = time.monotonic()
    if raw:
        sock.sendall(raw)
    data, closed = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        closed = isinstance(__import__("sys").exc_info()[1], ConnectionResetError)
    sock.close()
    return data, closed, time.monotonic() - started


def status_of(data):
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


def error_code(data):
    return json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"]


def write_config(data_dir, limits):
    config = {"node": {"env": "dev"}, "limits": limits, "auth": {"chain": ["jwt"]},
              "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so",
                           "config": {"dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev",
                                      "audience": "northstar"}},
                          {"name": "ws", "path": "libNorthstarWS.so", "config": {}}]}
    path = data_dir / "config.json"
    path.write_text(json.dumps(config))
    return path


MALFORMED = [
    ("nul_in_header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 400, "bad_request"),
    ("bare_cr_in_header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400, "bad_request"),
    ("content_length_and_chunked", b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request"),
    ("two_content_lengths", b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
     400, "bad_request"),
    ("content_length_not_a_number", b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: 1e12\r\n\r\n", 400, "bad_request"),
    ("declared_body_too_large", b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n",
     413, "body_too_large"),
    ("headers_over_limit", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers_too_large"),
    ("many_headers_over_limit", b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
     + b"\r\n", 431, "headers_too_large"),
    ("url_of_100_kb", b"GET /healthz?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    ("not_http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64, 400, "bad_request"),
    ("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request"),
    ("websocket_version_8", b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
     426, "unsupported_websocket_version"),
    ("websocket_without_key", b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              b"Sec-WebSocket-Version: 13\r\n\r\n", 400, "bad_request"),
    ("websocket_short_key", b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n", 400, "bad_request"),
]


@pytest.mark.parametrize("name,raw,expected,code", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_requests_are_answered_and_closed(server, name, raw, expected, code):
    """Each malformed request gets its status and JSON error at once, then the connection closes."""
    data, closed, seconds = exchange(server.port, raw)
    assert status_of(data) == expected, (name, data[:200])
    assert error_code(data) == code
    assert b"Connection: close" in data
    assert closed and seconds < 3, (name, closed, seconds)
    if expected == 426:
        assert b"Sec-WebSocket-Version: 13" in data
    assert server.get("/healthz").status_code == 200


def test_an_early_answer_does_not_wait_for_the_body(server):
    """A refused request with a large unread body is answered and closed, not drained."""
    token = server.token()
    raw = (f"POST /v1/threads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{{").encode()
    data, closed, seconds = exchange(server.port, raw)
    assert status_of(data) == 413 and error_code(data) == "body_too_large"
    assert closed and seconds < 3
    data, closed, seconds = exchange(server.port, b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n{")
    assert status_of(data) == 401 and closed and seconds < 3  # no token: answered, then closed


def test_silent_slow_and_idle_connections_are_timed_out(data_dir):
    """Header, body and idle timeouts from config: 408 where a request was under way, a close when idle."""
    config = write_config(data_dir, {"header_timeout_seconds": 1, "body_timeout_seconds": 1, "idle_timeout_seconds": 1})
    server = Server(data_dir, config=config).start()
    try:
        data, closed, seconds = exchange(server.port, b"", timeout=6)
        assert status_of(data) == 408 and error_code(data) == "request_timeout" and closed and seconds < 4
        data, closed, seconds = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow:", timeout=6)
        assert status_of(data) == 408 and closed and seconds < 4
        token = server.token()
        data, closed, seconds = exchange(server.port, (f"POST /v1/threads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                                                       f"Content-Length: 100\r\n\r\n{{\"ti").encode(), timeout=6)
        assert status_of(data) == 408 and closed and seconds < 4
        # A kept-alive connection that goes quiet after its answer is closed without a word.
        data, closed, seconds = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=6)
        assert status_of(data) == 200 and data.count(b"HTTP/1.1") == 1 and closed and 0.8 < seconds < 4
        assert server.get("/healthz").status_code == 200
    finally:
        server.kill()


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_idle(count, source, sockets, errors):
    for _ in range(count):
        try:
            sock = socket.socket()
            sock.bind((source, 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", PORT[0]))
            sockets.append(sock)
        except OSError as error:
            errors.append(error)


PORT = [0]


def test_a_connection_flood_is_refused_at_the_door_and_healthz_keeps_answering(data_dir):
    """2,000 idle connections against max_connections 1,000: /healthz answers throughout, memory comes back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    config = write_config(data_dir, {"max_connections": 1000, "max_pending_connections_per_ip": 150,
                                     "header_timeout_seconds": 60})
    server = Server(data_dir, config=config).start()
    PORT[0] = server.port
    sockets, errors = [], []
    try:
        baseline = rss_kb(server.process.pid)
        # One address alone is held to its pending limit: the rest are answered 503.
        data, closed, _ = b"", False, 0
        open_idle(150, "127.0.0.10", sockets, errors)
        data, closed, _ = exchange(server.port, b"", source="127.0.0.10")
        assert status_of(data) == 503 and error_code(data) == "too_many_connections" and closed
        # Fourteen addresses, 1,850 more idle connections: past 1,000 the oldest silent ones are let go.
        threads = [threading.Thread(target=open_idle, args=(132, f"127.0.0.{11 + i}", sockets, errors)) for i in range(14)]
        for thread in threads:
            thread.start()
        answered = 0
        while any(thread.is_alive() for thread in threads):
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
            answered += 1
        for thread in threads:
            thread.join()
        assert not errors, errors[:3]
        for _ in range(20):
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        metrics_open = len(os.listdir(f"/proc/{server.process.pid}/fd"))
        assert metrics_open < 1000 + 200, metrics_open  # held under the cap (plus the node's own files)
        peak = rss_kb(server.process.pid)
    finally:
        for sock in sockets:
            sock.close()
        PORT[0] = 0
    try:
        time.sleep(2)
        after = rss_kb(server.process.pid)
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        assert after < baseline + 60_000, (baseline, peak, after)
    finally:
        server.kill()


def kept_alive(port, request=b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
    """A connection that asked one thing and read its whole answer, left open: (socket, status)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"connection: close" not in head.lower(), head
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return sock, status_of(data)


def closed_by_server(sock, wait=3.0):
    """Whether the server closed the connection (within `wait` seconds)."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def evicted(server, phase):
    """How many connections in `phase` the node has closed to make room (its /metrics counter)."""
    found = re.search(rf'^northstar_connections_evicted_total\{{phase="{phase}"\}} (\d+)', server.get("/metrics").text, re.M)
    return int(found.group(1)) if found else 0


def streaming_user(server, streams):
    """Alice's headers, a thread of hers, and `streams` SSE streams of it held open (each answered 200)."""
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    opened = [SSEStream(server.port, f"/sse/chat/{thread}", headers) for _ in range(streams)]
    assert all(stream.status == 200 for stream in opened)
    return headers, thread, opened


def test_kept_alive_connections_between_requests_make_room_for_new_clients_oldest_first(data_dir):
    """A client holding every slot with kept-alive connections (one cheap request each, no token
    needed) no longer locks others out: past max_connections a newcomer replaces the connection
    quiet longest, while streams, busy, are never touched."""
    server = Server(data_dir, dev_config(data_dir, limits={"max_connections": 40, "max_connections_per_user": 100})).start()
    held = []
    try:
        headers, thread, streams = streaming_user(server, 10)
        # 30 kept alive: half answered 200, half refused 401 for want of a token.
        for index in range(30):
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" if index % 2 else \
                f"GET /v1/threads/{thread} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            sock, status = kept_alive(server.port, request)
            assert status == (200 if index % 2 else 401)
            held.append(sock)
        # The oldest asks again: it is now the one quiet for the shortest time.
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held[0].recv(65536).startswith(b"HTTP/1.1 200")
        # Before, every newcomer was refused 503 too_many_connections here.
        newcomers = []
        for index in range(29):
            sock, status = kept_alive(server.port)
            assert status == 200, index
            newcomers.append(sock)
            assert closed_by_server(held[index + 1]), index
        assert not closed_by_server(held[0], wait=0.5)
        sock, status = kept_alive(server.port)
        assert status == 200 and closed_by_server(held[0])
        newcomers.append(sock)
        held += newcomers
        # Every stream is still live, and gets the next event.
        assert server.post(f"/v1/threads/{thread}/messages", json={"text": "still here"}, headers=headers).status_code == 201
        for stream in streams:
            assert stream.events(1)[0]["json"]["data"]["text"] == "still here"
        assert evicted(server, "idle") >= 30
        for stream in streams:
            stream.close()
    finally:
        for sock in held:
            sock.close()
        server.kill()


def flood(port, request, stop, statuses):
    """One hostile client: sends `request` on its connection again and again, reading each whole answer
    (its status into `statuses`), and opens another connection whenever the node closes one."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                reader = sock.makefile("rb")
                while not stop.is_set():
                    sock.sendall(request)
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head.endswith(b"\r\n\r\n"):
                        break  # closed to make room
                    statuses.append(status_of(head))
                    length = re.search(rb"(?i)content-length: *(\d+)", head)
                    if length:
                        reader.read(int(length.group(1)))
                    else:  # chunked: to the last chunk
                        while reader.readline() not in (b"0\r\n", b""):
                            pass
                        reader.readline()
                    if b"connection: close" in head.lower():
                        break
        except OSError:
            time.sleep(0.05)


def newcomers_get_in_past(server, flooders, request, count=20):
    """`flooders` hostile clients send `request` for 1.5 s, then `count` newcomers each open a connection:
    every one is answered 200 (before, each was refused 503). The floods' statuses."""
    stop, statuses, held = threading.Event(), [], []
    threads = [threading.Thread(target=flood, args=(server.port, request, stop, statuses), daemon=True) for _ in range(flooders)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.5)  # every slot taken, nearly every request held
        for index in range(count):
            sock, status = kept_alive(server.port)
            assert status == 200, index
            held.append(sock)
    finally:
        stop.set()
        for sock in held:
            sock.close()
        for thread in threads:
            thread.join(timeout=10)
    return statuses


def test_connections_kept_waiting_on_held_401s_make_room_for_new_clients(data_dir):
    """A client with no token keeps every slot busy by sending bad credentials on each, every answer
    held a second (past auth_failures_per_second): those waits are quiet, so newcomers still get in."""
    server = Server(data_dir, dev_config(data_dir, limits={"max_connections": 30, "auth_failures_per_second": 1})).start()
    try:
        bad = b"GET /v1/threads/th_aaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer forged\r\n\r\n"
        statuses = newcomers_get_in_past(server, 30, bad)
        assert statuses and set(statuses) <= {401}, set(statuses)
        assert evicted(server, "held") >= 1
    finally:
        server.kill()


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_connections_kept_waiting_on_held_handshake_refusals_make_room_for_new_clients(data_dir, transport):
    """A user at her stream cap who opens handshake after handshake on every other slot, each refusal
    held a second: those waits are quiet too, over SSE and WebSocket alike."""
    server = Server(data_dir, dev_config(data_dir, limits={"max_connections": 30, "max_connections_per_user": 2})).start()
    streams = []
    try:
        headers, thread, streams = streaming_user(server, 2)
        path = f"/sse/chat/{thread}" if transport == "sse" else "/ws"
        upgrade = "" if transport == "sse" else \
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        handshake = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n{upgrade}\r\n".encode()
        statuses = newcomers_get_in_past(server, 28, handshake)
        assert statuses and set(statuses) <= {429}, set(statuses)
        assert evicted(server, "held") >= 1
    finally:
        for stream in streams:
            stream.close()
        server.kill()


def test_when_every_connection_is_busy_a_newcomer_is_refused_and_none_is_cut(data_dir):
    """Streams are never closed to make room: with every slot a stream, the newcomer is 503."""
    server = Server(data_dir, dev_config(data_dir, limits={"max_connections": 12, "max_connections_per_user": 100})).start()
    try:
        headers, thread, streams = streaming_user(server, 12)
        data, closed, _ = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(data) == 503 and error_code(data) == "too_many_connections" and closed
        streams.pop().close()
        assert wait_for(lambda: server.post(f"/v1/threads/{thread}/messages", json={"text": "after"},
                                            headers=headers).status_code == 201)
        for stream in streams:
            assert stream.events(1)[0]["json"]["data"]["text"] == "after"
            stream.close()
    finally:
        server.kill()


def test_small_leaks_are_closed(data_dir):
    """No client learns more than it needs: /metrics behind the admin token, a
    credential for another env refused without naming either env, and an SSE
    page from a foreign origin refused even with no allow-list configured."""
    config = data_dir / "config.json"
    config.write_text(json.dumps({
        "node": {"env": "dev", "admin_token": "${TEST_ADMIN_TOKEN}"},
        "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
                        "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
                    {"name": "sse", "path": "libNorthstarSSE.so", "config": {}}]}))
    admin = "a" * 24
    server = Server(data_dir, config=config, env={"TEST_ADMIN_TOKEN": admin}).start()
    try:
        assert server.get("/metrics").status_code == 401
        assert server.get("/metrics", headers=bearer("b" * 24)).status_code == 401
        assert server.get("/metrics", headers=bearer(server.token())).status_code == 401
        assert server.get("/metrics", headers=bearer(admin)).status_code == 200
        assert server.get("/healthz").status_code == 200 and server.get("/readyz").status_code == 200

        other_env = server.get("/v1/threads/th_" + "a" * 26, headers=bearer(server.token(env="prod")))
        assert other_env.status_code == 401
        assert "prod" not in other_env.text and "dev" not in other_env.json()["error"]["message"]

        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        from sse_client import SSEStream
        foreign = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Origin": "http://evil.example"})
        assert foreign.status == 403 and foreign.error_body()["error"]["code"] == "origin_not_allowed"
        foreign.close()
        own = SSEStream(server.port, f"/sse/chat/{thread}", {**headers, "Origin": f"http://127.0.0.1:{server.port}"})
        assert own.status == 200 and "access-control-allow-origin" not in own.headers
        own.close()
        plain = SSEStream(server.port, f"/sse/chat/{thread}", headers)
        assert plain.status == 200
        plain.close()
    finally:
        server.kill()


def test_the_open_file_limit_is_never_reached_and_accept_does_not_spin(data_dir):
    """With a low open-file limit the connection cap is fitted under it: a flood past it is answered 503
    (or lets the oldest silent connection go), accept never fails with EMFILE, the server does not spin,
    and /healthz answers throughout."""
    config = write_config(data_dir, {"max_pending_connections_per_ip": 10_000, "header_timeout_seconds": 60})
    low_limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    server = Server(data_dir, config=config, preexec=low_limit).start()
    sockets = []
    try:
        assert "max_connections lowered to fit the open-file limit" in server.log_text()
        for _ in range(400):
            sock = socket.socket()
            sock.settimeout(5)
            sock.connect(("127.0.0.1", server.port))
            sockets.append(sock)
        time.sleep(0.5)
        assert len(os.listdir(f"/proc/{server.process.pid}/fd")) < 256
        for _ in range(10):
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        # Idle, with hundreds of clients knocking: the process does not spin in accept.
        def cpu_seconds():
            fields = open(f"/proc/{server.process.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        before = cpu_seconds()
        time.sleep(2)
        assert cpu_seconds() - before < 0.5
        assert "Too many open files" not in server.log_text()
    finally:
        for sock in sockets:
            sock.close()
        server.kill()


@pytest.mark.parametrize("method,path,allow", [
    ("PATCH", "/v1/threads", "POST"),
    ("DELETE", "/healthz", "GET"),
    ("POST", "/v1/threads/th_aaaaaaaaaaaaaaaaaaaaaaaaaa", "GET"),
    ("POST", "/v1/media/a/b/c", "DELETE, GET, HEAD, PUT"),
    ("PUT", "/sse/chat/th_aaaaaaaaaaaaaaaaaaaaaaaaaa", "GET"),
])
def test_a_method_a_path_does_not_take_is_405_with_allow(server, method, path, allow):
    answer = requests.request(method, server.url + path, timeout=10)
    assert answer.status_code == 405 and answer.headers["Allow"] == allow
    assert answer.json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_path_is_still_404(server):
    answer = server.get("/v1/nothing-here")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "route_not_found"



def test_slow_bodies_hold_at_most_the_in_flight_budget_and_the_next_is_told_to_retry(data_dir):
    """Two bodies of 64 KiB sent slowly fill a 128 KiB budget: a third body
    is answered 503 server_busy at once, without being read; once one slow
    body is finished, bodies are read again. A body without a declared
    length reserves max_body_bytes."""
    config = write_config(data_dir, {"max_body_bytes": 65536, "max_body_bytes_in_flight": 131072})
    server = Server(data_dir, config=config).start()
    slow = []
    try:
        token = server.token()
        headers = bearer(token)
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        path = f"/v1/threads/{thread}/messages"
        # Exactly 64 KiB each: two fill the budget to the byte.
        body = json.dumps({"text": "slow", "data": {"pad": ""}}).encode()
        body = json.dumps({"text": "slow", "data": {"pad": "x" * (65536 - len(body))}}).encode()
        assert len(body) == 65536
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(head + body[:100])
            slow.append(sock)
        time.sleep(0.5)  # both are being read
        refused = server.post(path, json={"text": "fast"}, headers=headers)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "server_busy", refused.text
        # Chunked (no declared length): it too needs room for a whole body.
        chunked = requests.post(server.url + path, data=iter([b'{"text": "chunked"}']), headers=headers, timeout=10)
        assert chunked.status_code == 503 and chunked.json()["error"]["code"] == "server_busy", chunked.text
        # One slow body finishes: it is stored, and its room is free again.
        slow[0].sendall(body[100:])
        answer = slow[0].recv(65536)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        assert server.post(path, json={"text": "fast"}, headers=headers).status_code == 201
        # The other slow client leaves mid-body: its room is given back too.
        slow[1].close()
        time.sleep(0.5)
        for index in range(3):
            assert server.post(path, json={"text": f"after {index}"}, headers=headers).status_code == 201
        texts = [e["data"]["text"] for e in server.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"]]
        assert texts == ["slow", "fast", "after 0", "after 1", "after 2"]
    finally:
        for sock in slow:
            sock.close()
        server.kill()
