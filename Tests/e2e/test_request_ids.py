"""Request ids: every answer (REST, an SSE stream, a WebSocket handshake,
accepted or refused) carries `x-request-id`, the client's when it is short
and plain, a new one otherwise; the log lines a request causes, the auth
plugin's refusal included, name the same id; and a 401 from a transport,
like the REST API's, says how to authenticate (`WWW-Authenticate`)."""
import json
import re
import socket

import requests

from conftest import Server, bearer, dev_claims, dev_secret, sign_hs
from test_logs import config_with
from ws_raw import RawWebSocket

MADE_HERE = re.compile(r"req_[0-9a-f]{24}")


def head(port, path, headers):
    """The status and headers (lowercase names) of a raw GET, read up to the
    blank line: a stream's answer never ends, a refused handshake's does."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    status_line, *fields = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
    return int(status_line.split()[1]), {name.strip().lower(): value.strip() for name, value in (f.split(":", 1) for f in fields)}


WS_HANDSHAKE = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13"]


def started(data_dir):
    """A server writing JSON logs, with the auth subsystem's refusals (info)."""
    return Server(data_dir, config_with(data_dir, log_format="json", log_levels={"northstar.auth": "info"})).start()


def test_rest_answers_carry_the_clients_id_or_a_new_one(server):
    token = bearer(server.token())
    created = server.post("/v1/threads", json={}, headers={**token, "x-request-id": "client-42_a"})
    assert created.status_code == 201 and created.headers["x-request-id"] == "client-42_a"
    thread = created.json()["thread_id"]
    # Errors are answered with it too, whichever layer refuses.
    answers = {
        "unauthorized": server.get(f"/v1/threads/{thread}", headers={"x-request-id": "e-401"}),
        "not_found": server.get("/v1/threads/th_" + "a" * 26, headers={**token, "x-request-id": "e-404"}),
        "route_not_found": server.get("/nowhere", headers={"x-request-id": "e-404b"}),
        "method_not_allowed": requests.delete(server.url + "/v1/threads", headers={**token, "x-request-id": "e-405"}, timeout=10),
        "invalid_json": server.post(f"/v1/threads/{thread}/messages", data=b"{", headers={**token, "x-request-id": "e-400"}),
    }
    for code, answer in answers.items():
        assert answer.json()["error"]["code"] == code, code
        assert answer.headers["x-request-id"].startswith("e-"), code
    assert answers["unauthorized"].headers["www-authenticate"] == "Bearer"
    # Without one, or with one that is not short and plain, the id is made here, and differs each time.
    made = [server.get("/healthz", headers=extra).headers["x-request-id"]
            for extra in ({}, {}, {"x-request-id": "has spaces"}, {"x-request-id": "x" * 65}, {"x-request-id": "a;b"},
                          {"x-request-id": ""}, {"x-request-id": "é"})]
    assert all(MADE_HERE.fullmatch(value) for value in made), made
    assert len(set(made)) == len(made)
    assert server.get("/healthz", headers={"x-request-id": "y" * 64}).headers["x-request-id"] == "y" * 64


def test_sse_answers_carry_the_id_and_a_refusal_says_how_to_authenticate(data_dir):
    server = started(data_dir)
    try:
        owner = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=owner).json()["thread_id"]
        status, fields = head(server.port, f"/sse/chat/{thread}", [f"Authorization: {owner['Authorization']}", "x-request-id: sse-ok"])
        assert status == 200 and fields["x-request-id"] == "sse-ok" and fields["content-type"] == "text/event-stream"
        secret = dev_secret(data_dir)
        refusals = {
            "sse-none": [],
            "sse-forged": [f"Authorization: Bearer {sign_hs(b'x' * 40, dev_claims())}"],
            "sse-expired": [f"Authorization: Bearer {sign_hs(secret, dev_claims(exp=1_600_000_000, iat=1_599_990_000))}"],
            "sse-other-env": [f"Authorization: Bearer {server.token(env='staging')}"],
        }
        for request_id, credential in refusals.items():
            status, fields = head(server.port, f"/sse/chat/{thread}", [*credential, f"x-request-id: {request_id}"])
            assert status == 401, request_id
            assert fields["x-request-id"] == request_id and fields["www-authenticate"] == "Bearer", (request_id, fields)
        # Another tenant's stream: not found, with the id, and no authentication challenge.
        status, fields = head(server.port, f"/sse/chat/{thread}", [f"Authorization: Bearer {server.token(tenant='t_beta')}",
                                                                   "x-request-id: sse-other-tenant"])
        assert status == 404 and fields["x-request-id"] == "sse-other-tenant" and "www-authenticate" not in fields
    finally:
        server.stop()
    rejected = [json.loads(line) for line in server.log_text().splitlines() if '"credential rejected"' in line]
    # The auth plugin's refusals are logged under the ids the clients sent, not ids of their own.
    assert {entry["request_id"] for entry in rejected} >= {"sse-forged", "sse-expired"}, rejected


def test_websocket_handshakes_carry_the_id_accepted_or_refused(data_dir):
    server = started(data_dir)
    try:
        owner = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=owner).json()["thread_id"]
        status, fields = head(server.port, f"/ws/chat/{thread}",
                              [*WS_HANDSHAKE, f"Authorization: {owner['Authorization']}", "x-request-id: ws-ok"])
        assert status == 101 and fields["x-request-id"] == "ws-ok" and fields["upgrade"].lower() == "websocket"
        status, fields = head(server.port, f"/ws/chat/{thread}", [*WS_HANDSHAKE, f"Authorization: {owner['Authorization']}"])
        assert status == 101 and MADE_HERE.fullmatch(fields["x-request-id"])
        forged = f"Authorization: Bearer {sign_hs(b'x' * 40, dev_claims())}"
        for path in (f"/ws/chat/{thread}", "/ws"):
            status, fields = head(server.port, path, [*WS_HANDSHAKE, forged, "x-request-id: ws-forged"])
            assert status == 401 and fields["x-request-id"] == "ws-forged" and fields["www-authenticate"] == "Bearer", path
        status, fields = head(server.port, f"/ws/chat/{thread}", [*WS_HANDSHAKE, "x-request-id: ws-none"])
        assert status == 401 and fields["x-request-id"] == "ws-none" and fields["www-authenticate"] == "Bearer"
        status, fields = head(server.port, "/ws/nowhere", [*WS_HANDSHAKE, f"Authorization: {owner['Authorization']}",
                                                           "x-request-id: ws-404"])
        assert status == 404 and fields["x-request-id"] == "ws-404"
        # A plugin's answer cannot name another id: the host's is the one sent.
        status, fields = head(server.port, f"/ws/chat/{thread}", [*WS_HANDSHAKE, forged, "x-request-id: bad id"])
        assert status == 401 and MADE_HERE.fullmatch(fields["x-request-id"])
        # The socket accepted with an id works as any other.
        socket_ = RawWebSocket(server.port, f"/ws/chat/{thread}", [f"Authorization: {owner['Authorization']}", "x-request-id: ws-raw"])
        assert socket_.status == 101
        socket_.sock.close()
    finally:
        server.stop()
    rejected = [json.loads(line) for line in server.log_text().splitlines() if '"credential rejected"' in line]
    assert "ws-forged" in {entry["request_id"] for entry in rejected}, rejected
