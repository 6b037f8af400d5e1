"""Fuzzing against a real server, bounded: Hypothesis generates hostile
inputs for every surface a client reaches (request heads, tokens and their
claims, JSON bodies and JSON Patch, gesture samples, WebSocket messages and
frames) and for config files, starting from the corpus in `fuzz_corpus/`
(every input that once broke the server). The properties are the issue's:
nothing crashes, nothing hangs, no input gets a 5xx, every answer is JSON
with a stable code, and the server still answers /healthz after each input.

Each target runs a fixed number of examples with a fixed seed, so a CI run
is repeatable; raise NORTHSTAR_FUZZ_EXAMPLES locally to search longer.
A crash found here becomes a corpus file and a named test.
"""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import NORTHSTAR, Server, bearer, dev_claims, dev_secret, sign_hs

CORPUS = Path(__file__).parent / "fuzz_corpus"
EXAMPLES = int(os.environ.get("NORTHSTAR_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz")
    config = data_dir / "config.json"
    config.write_text(json.dumps({
        "limits": {"header_timeout_seconds": 2, "body_timeout_seconds": 2},
        "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
                        "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
                    {"name": "ws", "path": "libNorthstarWS.so", "config": {}}]}))
    server = Server(data_dir, config=config).start()
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    gesture = server.post(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"]
    yield {"server": server, "headers": headers, "thread": thread, "canvas": canvas, "gesture": gesture}
    server.kill()


def still_up(server):
    assert server.process.poll() is None, "the server exited:\n" + server.log_text()[-3000:]
    assert server.get("/healthz").status_code == 200


def answered_well(response):
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert isinstance(response.json()["error"]["code"], str)


def corpus(pattern):
    return [path.read_bytes() for path in sorted(CORPUS.glob(pattern))]


def raw_exchange(port, data):
    """Sends bytes; returns what came back before the server closed or went quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return received


heads = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda method, target, headers: (f"{method} {target} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers) + "\r\n").encode("utf-8", "surrogatepass"),
        st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "BREW", ""]),
        st.text(min_size=0, max_size=60),
        st.lists(st.tuples(st.sampled_from(["Host", "Content-Length", "Transfer-Encoding", "Upgrade", "Connection",
                                            "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Authorization", "Range", "X"]),
                           st.text(max_size=30)), max_size=6)))


@FUZZ
@seed(1)
@given(data=heads)
def test_request_heads(target, data):
    """Any bytes as a request: answered with an HTTP status line, or closed; never a 5xx, never a crash."""
    server = target["server"]
    for case in corpus("head-*.bin") + [data]:
        received = raw_exchange(server.port, case)
        if received:
            assert received.startswith(b"HTTP/1.1 "), received[:80]
            assert not received.startswith(b"HTTP/1.1 5"), received[:200]
    still_up(server)


claims = st.dictionaries(
    st.sampled_from(["exp", "nbf", "iat", "tenant_id", "sub", "env", "scope", "iss", "aud"]),
    st.one_of(st.integers(min_value=-2**80, max_value=2**80), st.floats(allow_nan=False), st.text(max_size=20),
              st.none(), st.lists(st.text(max_size=5), max_size=3)),
    max_size=6)


@FUZZ
@seed(2)
@given(claims=claims, header=st.dictionaries(st.sampled_from(["alg", "kid", "crit", "typ", "b64"]), json_values, max_size=3),
       garbage=st.text(max_size=80))
def test_tokens_and_claims(target, claims, header, garbage):
    """Validly signed tokens with any claims and header members, and any text as a token: 401 or through, never more."""
    server = target["server"]
    secret = dev_secret(server.data_dir)
    signed = sign_hs(secret, {**dev_claims(), **claims}, header={"alg": "HS256", "kid": "dev", **header})
    saved = [sign_hs(secret, {**dev_claims(), **json.loads(case)}) for case in corpus("claims-*.json")]
    for token in [signed, garbage] + saved:
        try:
            response = server.get(f"/v1/threads/{target['thread']}", headers={"Authorization": f"Bearer {token}"})
        except ValueError:
            continue  # a header value requests refuses to send (a newline): nothing reached the server
        answered_well(response)
        assert response.status_code in (200, 400, 401, 403, 404), response.text[:200]  # 400: bytes a header may not hold
    still_up(server)


@FUZZ
@seed(3)
@given(ops=json_values, base_rev=json_values)
def test_canvas_commands(target, ops, base_rev):
    """Any JSON as a command's ops and base_rev: a 2xx or a 4xx with a code; the canvas stays readable."""
    server, headers, canvas = target["server"], target["headers"], target["canvas"]
    head = server.get(f"/v1/canvases/{canvas}", headers=headers).json()["head_rev"]
    for body in [{"command_id": f"f{time.monotonic_ns()}", "base_rev": base_rev, "ops": ops},
                 {"command_id": f"g{time.monotonic_ns()}", "base_rev": head, "ops": ops}]:
        answered_well(server.post(f"/v1/canvases/{canvas}/commands", json=body, headers=headers))
    for saved in corpus("ops-*.json"):
        body = {"command_id": f"c{time.monotonic_ns()}", "base_rev": head, "ops": json.loads(saved)}
        answered_well(server.post(f"/v1/canvases/{canvas}/commands", json=body, headers=headers))
    assert server.get(f"/v1/canvases/{canvas}", headers=headers).status_code == 200
    still_up(server)


@FUZZ
@seed(4)
@given(samples=st.lists(st.dictionaries(st.sampled_from(["t_ms", "x", "y", "pointer", "phase", "pressure", "tilt_x",
                                                          "tilt_y", "button", "extra"]), json_values, max_size=9),
                        max_size=8), body=json_values)
def test_gesture_samples(target, samples, body):
    """Any sample batch, and any JSON as the body: a 2xx or a 4xx with a code."""
    server, headers = target["server"], target["headers"]
    path = f"/v1/canvases/{target['canvas']}/gestures/{target['gesture']}/samples"
    answered_well(server.post(path, json={"samples": samples}, headers=headers))
    answered_well(server.post(path, json=body, headers=headers))
    still_up(server)


@FUZZ
@seed(5)
@given(message=json_values, frame=st.binary(max_size=200))
def test_websocket_messages(target, message, frame):
    """Any JSON and any bytes on an open socket: an answer or a clean close, and the server stays up."""
    server = target["server"]
    try:
        with connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=target["headers"], open_timeout=10) as socket_:
            for payload in [json.dumps(message), frame] + [saved.decode() for saved in corpus("ws-*.json")]:
                socket_.send(payload)
                answer = json.loads(socket_.recv(timeout=10))
                assert answer["type"] in ("error", "pong", "subscribed", "unsubscribed", "ack", "event", "gap", "end",
                                          "authenticated"), answer
    except ConnectionClosed as closed:
        assert closed.rcvd is None or closed.rcvd.code in (1000, 1002, 1003, 1007, 1008, 1009, 4001, 4008), closed
    still_up(server)


@FUZZ
@seed(6)
@given(config=st.dictionaries(st.sampled_from(["node", "store", "limits", "auth", "plugins", "storage", "extra"]),
                              json_values, max_size=5))
def test_config_files(tmp_path_factory, config):
    """Any JSON as a config: `config check` accepts it or refuses it with a message and exit 2, never crashes."""
    directory = tmp_path_factory.mktemp("cfg")
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    result = subprocess.run([str(NORTHSTAR), "config", "check", "--config", str(path), "--data-dir", str(directory)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 2), (result.returncode, result.stderr[-500:])
    if result.returncode == 2:
        assert result.stderr.startswith("error:"), result.stderr[-500:]
