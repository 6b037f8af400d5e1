"""Artifacts and media on every storage plugin (`fs`, `s3` against moto's
server, `gcs` against an emulator), by changing only the config: streamed
upload, ranged download, ETag, head, delete, list; the one key scheme in
each backend; names and sizes refused before anything is written;
isolation; a SIGKILL mid-upload leaves nothing visible; backends that are
down, slow or failing get clear 5xx answers."""
import hashlib
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import Server, bearer, dev_claims, dev_secret, gauge, sign_hs
from storage_backends import BACKENDS, FSBackend, S3Backend, write_config


class Store:
    """A server on one backend; `restart` keeps the same backend."""

    def __init__(self, data_dir, name, limits=None, **plugin_extra):
        self.data_dir = data_dir
        self.backend = BACKENDS[name](data_dir)
        self.config = write_config(data_dir, [self.backend.plugin(**plugin_extra)], limits=limits)
        self.server = Server(data_dir, config=self.config, env=self.backend.env).start()

    def restart(self):
        self.server = Server(self.data_dir, config=self.config, env=self.backend.env).start()
        return self.server

    def close(self):
        self.server.kill()
        self.backend.stop()


@pytest.fixture(params=["fs", "s3", "gcs"])
def store(request, data_dir):
    instance = Store(data_dir, request.param)
    yield instance
    instance.close()


def upload(server, headers, data, filename="blob.bin", content_type="application/octet-stream"):
    return server.post(f"/v1/artifacts?filename={filename}", data=data,
                       headers={**headers, "Content-Type": content_type})


def temporaries(data_dir):
    folder = data_dir / "objects" / ".northstar" / "tmp"
    return list(folder.iterdir()) if folder.exists() else []


def test_upload_and_download_whole_with_the_one_key_scheme(store):
    server, backend = store.server, store.backend
    headers = bearer(server.token())
    data = os.urandom(700_000)
    answer = upload(server, headers, data, "photo.png", "image/png")
    assert answer.status_code == 201
    body = answer.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert body["key"] == f"tenants/t_alpha/dev/raw/{body['asset_id']}/photo.png"
    assert backend.keys() == [body["key"]]
    by_id = server.get(f"/v1/artifacts/{body['asset_id']}", headers=headers)
    assert by_id.status_code == 200 and by_id.content == data  # by asset id alone, as well
    got = server.get(f"/v1/artifacts/{body['asset_id']}/photo.png", headers=headers)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png" and got.headers["etag"] == f'"{body["sha256"]}"'
    assert got.headers["x-checksum-sha256"] == body["sha256"] and got.headers["accept-ranges"] == "bytes"


def test_ranges_etag_head_and_delete(store):
    server, backend = store.server, store.backend
    headers = bearer(server.token())
    data = bytes(range(256)) * 40  # 10,240 bytes
    asset = upload(server, headers, data).json()
    path = f"/v1/artifacts/{asset['asset_id']}/blob.bin"
    for spec, start, end in [("bytes=0-99", 0, 99), ("bytes=10000-", 10000, 10239), ("bytes=-40", 10200, 10239),
                             ("bytes=10200-999999", 10200, 10239), ("bytes=5-5", 5, 5)]:
        part = server.get(path, headers={**headers, "Range": spec})
        assert part.status_code == 206, spec
        assert part.content == data[start:end + 1]
        assert part.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    for spec in ["bytes=abc", "items=0-1", "bytes=5-1", "bytes=0-1,3-4", "bytes=-", "bytes=--1", "bytes=1.5-2"]:
        bad = server.get(path, headers={**headers, "Range": spec})
        assert bad.status_code == 416 and bad.json()["error"]["code"] == "invalid_range", spec
    for spec in ["bytes=10240-", "bytes=99999-100000", "bytes=-0"]:
        bad = server.get(path, headers={**headers, "Range": spec})
        assert bad.status_code == 416 and bad.json()["error"]["code"] == "range_not_satisfiable", spec
    etag = server.get(path, headers=headers).headers["etag"]
    assert server.get(path, headers={**headers, "If-None-Match": etag}).status_code == 304
    assert server.get(path, headers={**headers, "If-None-Match": '"other"'}).status_code == 200
    # A malformed Range is refused even when the precondition holds; a well-formed one waits for it (RFC 9110, 13.2.2).
    for tags in ("*", etag):
        for spec in ["=kFw", "", "bytes=abc", "bytes=5-1"]:
            bad = server.get(path, headers={**headers, "If-None-Match": tags, "Range": spec})
            assert bad.status_code == 416 and bad.json()["error"]["code"] == "invalid_range", (tags, spec)
        for spec in ["bytes=0-9", "bytes=99999-"]:
            assert server.get(path, headers={**headers, "If-None-Match": tags, "Range": spec}).status_code == 304, (tags, spec)
    head = requests.head(server.url + path, headers=headers)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
    assert requests.delete(server.url + path, headers=headers).status_code == 204
    assert server.get(path, headers=headers).status_code == 404
    assert requests.delete(server.url + path, headers=headers).status_code == 404
    assert backend.keys() == []


def test_empty_object_and_streamed_upload_without_a_length(store):
    server, backend = store.server, store.backend
    headers = bearer(server.token())
    empty = upload(server, headers, b"", "empty.txt", "text/plain").json()
    assert empty["size"] == 0 and empty["sha256"] == hashlib.sha256(b"").hexdigest()
    assert server.get(f"/v1/artifacts/{empty['asset_id']}/empty.txt", headers=headers).content == b""
    # Chunked, and over the s3 part size and the gcs chunk size: a multipart
    # (S3) or resumable (GCS) upload, with the SHA-256 recorded after.
    chunks = [os.urandom(1_000_000) for _ in range(12)]
    streamed = server.post("/v1/artifacts?filename=s.bin", data=iter(chunks), headers=headers).json()
    whole = b"".join(chunks)
    assert streamed["size"] == len(whole) and streamed["sha256"] == hashlib.sha256(whole).hexdigest()
    path = f"/v1/artifacts/{streamed['asset_id']}/s.bin"
    assert server.get(path, headers=headers).content == whole
    tail = server.get(path, headers={**headers, "Range": "bytes=11999990-"})
    assert tail.status_code == 206 and tail.content == whole[11999990:]
    assert requests.head(server.url + path, headers=headers).headers["x-checksum-sha256"] == streamed["sha256"]


def test_list_pages_through_a_tenants_objects_only(store):
    server, backend = store.server, store.backend
    alpha, beta = bearer(server.token()), bearer(server.token(tenant="t_beta"))
    ids = sorted(upload(server, alpha, b"x" * index, f"f{index}.txt").json()["asset_id"] for index in range(5))
    upload(server, beta, b"theirs", "b.txt")
    seen, token = [], None
    while True:
        page = server.get("/v1/artifacts", headers=alpha, params={"limit": 2, **({"page_token": token} if token else {})}).json()
        seen += [item["name"].split("/")[0] for item in page["objects"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == ids
    prefixed = server.get("/v1/artifacts", headers=alpha, params={"prefix": ids[0]}).json()["objects"]
    assert len(prefixed) == 1 and prefixed[0]["name"].startswith(ids[0] + "/")
    assert len(server.get("/v1/artifacts", headers=beta).json()["objects"]) == 1
    assert server.get("/v1/artifacts", headers=alpha, params={"page_token": "tenants/t_beta/dev/raw/"}).status_code == 400
    assert server.get("/v1/artifacts", headers=alpha, params={"limit": 0}).status_code == 400


@pytest.mark.parametrize("filename", ["..", ".", "a/b", "%2e%2e", "%252e%252e", "a%2Fb", "a%5Cb", "a%00b", "a%0Ab",
                                      "x" * 256, ""])
def test_bad_filenames_are_refused_and_nothing_is_written(store, filename):
    server, backend = store.server, store.backend
    headers = bearer(server.token())
    answer = server.post(f"/v1/artifacts?filename={filename}", data=b"data", headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_filename", filename
    assert backend.keys() == [] and temporaries(server.data_dir) == []


def test_missing_filename_and_bad_content_type(store):
    server, backend = store.server, store.backend
    headers = bearer(server.token())
    assert server.post("/v1/artifacts", data=b"d", headers=headers).json()["error"]["code"] == "invalid_filename"
    bad = server.post("/v1/artifacts?filename=a", data=b"d", headers={**headers, "Content-Type": "nonsense"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_content_type"


@pytest.mark.parametrize("name", ["fs", "s3", "gcs"])
def test_size_limit_refused_while_streaming_and_nothing_left(data_dir, name):
    store = Store(data_dir, name, limits={"max_object_bytes": 100_000})
    try:
        server, headers = store.server, bearer(store.server.token())
        declared = upload(server, headers, b"x" * 200_000)
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "body_too_large"
        streamed = server.post("/v1/artifacts?filename=big", data=iter([b"y" * 60_000] * 4), headers=headers)
        assert streamed.status_code == 413
        assert store.backend.keys() == [] and temporaries(data_dir) == []
        assert upload(server, headers, b"z" * 100_000).status_code == 201  # exactly the limit is fine
    finally:
        store.close()


GRACE = 2  # seconds: limits.slow_consumer_grace_seconds on the node below


def open_connections(server):
    return gauge(server, "northstar_connections_open")


def test_downloads_whose_clients_stop_reading_are_closed_after_the_grace(data_dir):
    """A client that asks for an object and reads none of it would hold its
    connection (and what NIO keeps for it) for as long as it likes: a
    connection flood that costs the client nothing. Once the socket has
    taken nothing for the slow-consumer grace, the server closes it; a client
    that only paused within the grace gets the whole object."""
    store = Store(data_dir, "fs", limits={"slow_consumer_grace_seconds": GRACE, "idle_timeout_seconds": 1})
    try:
        server, headers = store.server, bearer(store.server.token())
        baseline = open_connections(server)
        # Sizes past what the kernel's buffers take for a client that does not read, and around that.
        objects = {size: upload(server, headers, os.urandom(size)).json()["asset_id"]
                   for size in (9_000_000, 3_000_000, 1_000_000)}
        stalled = []
        for asset_id in objects.values():
            for _ in range(2):
                client = socket.socket()
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
                client.connect(("127.0.0.1", server.port))
                client.sendall(f"GET /v1/artifacts/{asset_id} HTTP/1.1\r\nHost: x\r\n"
                               f"Authorization: {headers['Authorization']}\r\n\r\n".encode())
                stalled.append(client)
        # A client that pauses for half the grace, then reads, gets it all.
        patient = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        patient.sendall(f"GET /v1/artifacts/{objects[9_000_000]} HTTP/1.1\r\nHost: x\r\n"
                        f"Authorization: {headers['Authorization']}\r\n\r\n".encode())
        time.sleep(GRACE / 2)
        received = b""
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < 9_000_000:
            chunk = patient.recv(1 << 20)
            assert chunk, f"the paused client's download was cut at {len(received)} bytes"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        patient.close()
        # The ones that never read are closed once the grace has passed.
        deadline = time.monotonic() + GRACE + 10
        while open_connections(server) > baseline:
            assert time.monotonic() < deadline, f"{open_connections(server) - baseline:.0f} stalled downloads still held"
            time.sleep(0.2)
        for client in stalled:
            client.close()
        assert upload(server, headers, b"still serving").status_code == 201
    finally:
        store.close()


def raw_request(server, method, path, headers, body=b""):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    return response.status, response.read()


def test_media_at_paths_with_traversal_refused(store):
    server, backend = store.server, store.backend
    headers = bearer(server.token())
    put = requests.put(f"{server.url}/v1/media/posters/2026/a b.png", data=b"img", headers={**headers, "Content-Type": "image/png"})
    assert put.status_code == 201 and put.json()["key"] == "tenants/t_alpha/dev/media/posters/2026/a b.png"
    assert put.json()["path"] == "posters/2026/a b.png"
    assert server.get("/v1/media/posters/2026/a%20b.png", headers=headers).content == b"img"
    listed = server.get("/v1/media", headers=headers, params={"prefix": "posters/"}).json()["objects"]
    assert [item["path"] for item in listed] == ["posters/2026/a b.png"]
    for path in ["/v1/media/../x", "/v1/media/a/../../x", "/v1/media/%2e%2e/x", "/v1/media/a//b", "/v1/media/a/%2F/b",
                 "/v1/media/a/", "/v1/media/a%5Cb", "/v1/media/a%00", "/v1/media/%252e%252e/x"]:
        status, body = raw_request(server, "PUT", path, headers, b"evil")
        assert status in (400, 404), path
        if status == 400:
            assert json.loads(body)["error"]["code"] == "invalid_path", path
    assert backend.keys() == ["tenants/t_alpha/dev/media/posters/2026/a b.png"]


def test_isolation_on_every_artifact_route(store):
    server, backend = store.server, store.backend
    owner = bearer(server.token())
    asset = upload(server, owner, b"secret", "s.txt").json()
    requests.put(f"{server.url}/v1/media/private.txt", data=b"secret", headers=owner)
    secret = dev_secret(server.data_dir)
    other = bearer(server.token(tenant="t_beta"))
    mine = f"/v1/artifacts/{asset['asset_id']}/s.txt"
    missing = f"/v1/artifacts/as_{'a' * 26}/s.txt"
    for method in ("GET", "DELETE"):
        for own, absent in ((mine, missing), (mine.rsplit("/", 1)[0], missing.rsplit("/", 1)[0])):
            theirs = requests.request(method, server.url + own, headers=other)
            nothing = requests.request(method, server.url + absent, headers=other)
            assert theirs.status_code == 404 and theirs.json() == nothing.json()
    assert requests.head(server.url + mine, headers=other).status_code == 404
    assert server.get("/v1/media/private.txt", headers=other).status_code == 404
    assert server.get("/v1/media", headers=other).json()["objects"] == []
    refused = {
        "none": ({}, 401),
        "expired": (bearer(sign_hs(secret, dev_claims(exp=1_600_000_000, iat=1_599_990_000))), 401),
        "forged": (bearer(sign_hs(b"x" * 40, dev_claims())), 401),
        "other_env": (bearer(server.token(env="staging")), 401),
    }
    for name, (headers, status) in refused.items():
        for method, path in [("GET", mine), ("DELETE", mine), ("GET", "/v1/artifacts"), ("GET", "/v1/media/private.txt"),
                             ("POST", "/v1/artifacts?filename=x"), ("PUT", "/v1/media/x")]:
            assert requests.request(method, server.url + path, headers=headers, data=b"x").status_code == status, (name, method, path)
    reader = bearer(server.token(scopes="artifacts:read"))
    assert upload(server, reader, b"no", "n.txt").status_code == 403
    assert requests.delete(server.url + mine, headers=reader).status_code == 403
    assert server.get(mine, headers=reader).content == b"secret"
    assert server.get(mine, headers=owner).content == b"secret"  # untouched by all of the above
    assert server.get(f"/v1/artifacts/not-an-id/s.txt", headers=owner).status_code == 400


@pytest.mark.parametrize("name", ["fs", "s3", "gcs"])
def test_sigkill_during_uploads_leaves_no_partial_object(data_dir, name):
    store = Store(data_dir, name)
    try:
        server = store.server
        headers = bearer(server.token())
        done = upload(server, headers, b"kept" * 1000, "kept.bin").json()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.putrequest("POST", "/v1/artifacts?filename=torn.bin")
        for header, value in {**headers, "Content-Length": str(20_000_000)}.items():
            connection.putheader(header, value)
        connection.endheaders()
        for _ in range(70):
            connection.send(os.urandom(100_000))  # 7 MB of a declared 20 MB: parts or chunks already sent
        time.sleep(1)
        assert store.backend.keys() == [done["key"]]  # in progress, not visible
        server.kill()
        restarted = store.restart()
        assert store.backend.keys() == [done["key"]] and temporaries(data_dir) == []
        assert restarted.get(f"/v1/artifacts/{done['asset_id']}/kept.bin", headers=headers).content == b"kept" * 1000
        names = [item["name"] for item in restarted.get("/v1/artifacts", headers=headers).json()["objects"]]
        assert names == [f"{done['asset_id']}/kept.bin"]
    finally:
        store.close()


def test_a_damaged_object_is_never_served_as_whole(data_dir):
    store = Store(data_dir, "fs")
    try:
        server = store.server
        headers = bearer(server.token())
        asset = upload(server, headers, b"A" * 50_000, "d.bin").json()
        stored = server.data_dir / "objects" / "northstar" / asset["key"]
        stored.write_bytes(b"B" * 50_000)  # same size, different bytes: bit rot, or a hand edit
        # The response is cut short: the client either fails to read it or gets
        # fewer bytes than announced, never the whole damaged object.
        try:
            response = server.get(f"/v1/artifacts/{asset['asset_id']}/d.bin", headers=headers)
            received = len(response.content)
        except requests.exceptions.RequestException:
            received = None
        assert received is None or received < 50_000
        assert "checksum mismatch" in server.log_text()
    finally:
        store.close()


@pytest.mark.parametrize("first,second", [
    ("posters/2026/a.png", "posters/2026"),  # a folder, then an object of its name
    ("f", "f/g"),                            # an object, then a folder of its name
    ("deep/a", "deep/a/b/c/d"),
])
def test_fs_path_conflicts_are_409_both_ways_and_leave_nothing(data_dir, first, second):
    store = Store(data_dir, "fs")
    try:
        server, headers = store.server, bearer(store.server.token())
        assert requests.put(f"{server.url}/v1/media/{first}", data=b"x", headers=headers).status_code == 201
        conflict = requests.put(f"{server.url}/v1/media/{second}", data=b"y" * 300_000, headers=headers)
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "path_conflict", conflict.text
        assert temporaries(data_dir) == []
        assert requests.get(f"{server.url}/v1/media/{first}", headers=headers).content == b"x"
        assert requests.get(f"{server.url}/v1/media/{second}", headers=headers).status_code == 404
    finally:
        store.close()


@pytest.mark.parametrize("first,second", [("x", "x.json/y"), ("a.json/b", "a")])
def test_fs_names_that_once_clashed_in_its_metadata_are_both_stored(data_dir, first, second):
    """Metadata named by the key's hash: `x` and `x.json/y` are two objects, as on S3."""
    store = Store(data_dir, "fs")
    try:
        server, headers = store.server, bearer(store.server.token())
        assert requests.put(f"{server.url}/v1/media/{first}", data=b"one", headers=headers).status_code == 201
        assert requests.put(f"{server.url}/v1/media/{second}", data=b"two", headers=headers).status_code == 201
        for path, body in ((first, b"one"), (second, b"two")):
            got = requests.get(f"{server.url}/v1/media/{path}", headers=headers)
            assert got.content == body and got.headers["x-checksum-sha256"] == hashlib.sha256(body).hexdigest()
        assert temporaries(data_dir) == []
    finally:
        store.close()


@pytest.mark.parametrize("name", ["fs", "s3", "gcs"])
def test_the_longest_allowed_names_are_stored(data_dir, name):
    """Filenames and media segments of 251 to 255 bytes are allowed, so every backend stores them."""
    store = Store(data_dir, name)
    try:
        server, headers = store.server, bearer(store.server.token())
        for length in (251, 253, 255):
            filename = "n" * (length - 4) + ".txt"
            created = upload(server, headers, b"long", filename)
            assert created.status_code == 201, created.text
            asset = created.json()["asset_id"]
            got = server.get(f"/v1/artifacts/{asset}", headers=headers)
            assert got.status_code == 200 and got.content == b"long"
            assert got.headers["ETag"] == server.get(f"/v1/artifacts/{asset}", headers=headers).headers["ETag"]
            segment = "m" * length
            assert requests.put(f"{server.url}/v1/media/long/{segment}", data=b"media", headers=headers).status_code == 201
            assert requests.get(f"{server.url}/v1/media/long/{segment}", headers=headers).content == b"media"
        too_long = upload(server, headers, b"x", "n" * 256)
        assert too_long.status_code == 400
        assert temporaries(data_dir) == []
    finally:
        store.close()


def test_no_storage_plugin_answers_503(data_dir):
    server = Server(data_dir, config=write_config(data_dir, [])).start()
    try:
        answer = upload(server, bearer(server.token()), b"x")
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "storage_not_configured"
    finally:
        server.kill()


def test_a_backend_that_is_down_slow_or_failing_gets_clear_5xx(data_dir):
    s3 = S3Backend(data_dir)
    # A server that accepts connections and never answers: "slow".
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    config = write_config(data_dir, [s3.plugin(timeout_ms=1000)], storage={"timeout_ms": 5000})
    server = Server(data_dir, config=config).start()
    try:
        headers = bearer(server.token())
        kept = upload(server, headers, b"payload", "p.bin").json()
        s3.stop()  # down
        down = server.get(f"/v1/artifacts/{kept['asset_id']}/p.bin", headers=headers)
        assert down.status_code == 503 and down.json()["error"]["code"] == "storage_unavailable", down.text
        assert "code=storage_unavailable" in server.log_text()  # the operator sees why
        assert upload(server, headers, b"x").status_code == 503
    finally:
        server.kill()
    slow = {"name": "s3", "path": "libNorthstarS3.so",
            "config": {**s3.plugin()["config"], "endpoint": f"http://127.0.0.1:{silent.getsockname()[1]}"}}
    server = Server(data_dir, config=write_config(data_dir, [slow], storage={"timeout_ms": 1500})).start()
    try:
        started = time.monotonic()
        answer = upload(server, bearer(server.token()), b"x")
        assert answer.status_code == 504 and answer.json()["error"]["code"] == "storage_timeout"
        assert time.monotonic() - started < 10
    finally:
        server.kill()
        silent.close()
    failing = S3Backend(data_dir)
    try:
        wrong = {"name": "s3", "path": "libNorthstarS3.so", "config": {**failing.plugin()["config"], "bucket": "no-such-bucket"}}
        server = Server(data_dir, config=write_config(data_dir, [wrong])).start()
        answer = upload(server, bearer(server.token()), b"x")
        assert answer.status_code == 502 and answer.json()["error"]["code"] == "storage_error"
        # What the backend said goes to the operator's log, not to the client.
        assert "NoSuchBucket" not in answer.json()["error"]["message"] and "NoSuchBucket" in server.log_text()
        server.kill()
    finally:
        failing.stop()


def test_expect_100_continue_is_answered_before_the_body(data_dir):
    store = Store(data_dir, "fs")
    try:
        server = store.server
        token = server.token()
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        body = b"q" * 2_000_000
        connection.sendall((f"POST /v1/artifacts?filename=big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n"
                            f"Expect: 100-continue\r\n\r\n").encode())
        interim = connection.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")  # before any byte of the body was sent
        connection.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            final += connection.recv(4096)
        assert final.startswith(b"HTTP/1.1 201")
        connection.close()
    finally:
        store.close()


def test_bad_storage_config_is_refused_at_start(data_dir):
    base = {"endpoint": "http://127.0.0.1:9", "bucket": "northstar", "access_key_id": "a", "secret_access_key": "b"}
    cases = [
        ("s3", {**base, "colour": "blue"}, 'unknown key "colour"'),
        ("s3", {**base, "endpoint": "http://127.0.0.1:9/prefix"}, "endpoint"),
        ("s3", {**base, "endpoint": "ftp://example.com"}, "endpoint"),
        ("s3", {**base, "part_size_bytes": 1024}, "part_size_bytes"),
        ("s3", {**base, "addressing": "sideways"}, "addressing"),
        ("s3", {k: v for k, v in base.items() if k != "secret_access_key"}, "secret_access_key"),
        ("s3", {**base, "bucket": "No_Such!"}, "bucket"),
        ("fs", {"root": "relative/path"}, 'root: "relative/path" is relative'),
        ("fs", {}, "root: required"),
        ("fs", {"root": str(data_dir), "bucket": "x"}, "bucket"),
    ]
    for index, (kind, config, words) in enumerate(cases):
        directory = data_dir / f"case{index}"
        directory.mkdir()
        plugin = {"name": kind, "path": f"libNorthstar{kind.upper()}.so", "config": config}
        server = Server(directory, config=write_config(directory, [plugin]))
        with pytest.raises(RuntimeError) as refused:
            server.start(timeout=15)
        assert "config-rejected" in str(refused.value) and words in str(refused.value), (kind, config)
    two = write_config(data_dir, [{"name": "fs", "path": "libNorthstarFS.so", "config": {"root": str(data_dir / "a")}},
                                  {"name": "s3", "path": "libNorthstarS3.so", "config": base}])
    with pytest.raises(RuntimeError) as ambiguous:
        Server(data_dir, config=two).start(timeout=15)
    assert "storage-backend" in str(ambiguous.value) and "storage.backend" in str(ambiguous.value)


@pytest.mark.parametrize("name", ["fs", "s3"])
def test_a_client_that_leaves_mid_upload_leaves_nothing(data_dir, name):
    store = Store(data_dir, name)
    try:
        server = store.server
        token = server.token()
        for _ in range(5):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            connection.sendall((f"POST /v1/artifacts?filename=gone.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                f"Authorization: Bearer {token}\r\nContent-Length: 8000000\r\n\r\n").encode())
            connection.sendall(os.urandom(6_000_000))  # more than one s3 part, then gone
            connection.close()
        deadline = time.monotonic() + 10
        while (temporaries(data_dir) or store.backend.keys()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.backend.keys() == [] and temporaries(data_dir) == []
        if name == "s3":  # the multipart uploads that had begun were aborted, not left to bill
            deadline = time.monotonic() + 10
            pending = lambda: store.backend.client.list_multipart_uploads(Bucket="northstar").get("Uploads", [])
            while pending() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert pending() == []
        assert upload(server, bearer(token), b"still fine").status_code == 201
    finally:
        store.close()


@pytest.mark.parametrize("name", ["s3", "gcs"])
def test_an_upload_answered_504_never_appears_even_if_the_backend_finishes_it_later(data_dir, name):
    """The backend is frozen (SIGSTOP) while uploads are under way: each is answered 504; after SIGCONT the
    backend completes them, and the host removes what it finished, so nothing the client was told failed shows up."""
    backend = BACKENDS[name](data_dir)
    config = write_config(data_dir, [backend.plugin(timeout_ms=20_000)], storage={"timeout_ms": 1500})
    server = Server(data_dir, config=config, env=backend.env).start()
    try:
        headers = bearer(server.token())
        kept = upload(server, headers, b"before the freeze", "kept.txt")
        assert kept.status_code == 201
        backend.process.send_signal(signal.SIGSTOP)
        try:
            answers = []
            threads = [threading.Thread(target=lambda i=i: answers.append(upload(server, headers, os.urandom(2000 + i), f"f{i}.bin")))
                       for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert [a.status_code for a in answers] == [504] * 4, [a.text for a in answers]
            assert all(a.json()["error"]["code"] == "storage_timeout" for a in answers)
        finally:
            backend.process.send_signal(signal.SIGCONT)
        # The backend now finishes what it was given; the host removes it.
        deadline = time.monotonic() + 20
        while len(backend.keys()) > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert backend.keys() == [kept.json()["key"]]
        listed = server.get("/v1/artifacts", headers=headers).json()["objects"]
        assert [item["name"] for item in listed] == [f"{kept.json()['asset_id']}/kept.txt"]
        assert "finished after its timeout" in server.log_text()
    finally:
        server.kill()
        backend.stop()


def test_s3_multipart_uploads_left_behind_are_aborted(data_dir):
    """A multipart upload a crash or an outage left open is aborted, soon after start and then regularly."""
    backend = BACKENDS["s3"](data_dir)
    client = backend.client
    left = client.create_multipart_upload(Bucket="northstar", Key="tenants/t_alpha/dev/raw/as_left/behind.bin")
    client.upload_part(Bucket="northstar", Key="tenants/t_alpha/dev/raw/as_left/behind.bin", PartNumber=1,
                       UploadId=left["UploadId"], Body=b"x" * (5 << 20))
    config = write_config(data_dir, [backend.plugin(abandoned_upload_seconds=2)])
    server = Server(data_dir, config=config, env=backend.env).start()
    try:
        pending = lambda: client.list_multipart_uploads(Bucket="northstar").get("Uploads", [])
        deadline = time.monotonic() + 20
        while pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending() == []
        assert "aborted a multipart upload left behind" in server.log_text()
        # Later leftovers too, while the node runs.
        client.create_multipart_upload(Bucket="northstar", Key="tenants/t_alpha/dev/raw/as_later/later.bin")
        deadline = time.monotonic() + 20
        while pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending() == []
        assert upload(server, bearer(server.token()), b"still fine").status_code == 201
        # An upload of this node's own, in progress across several sweeps (one
        # every 1 s here), is never taken for a leftover, although this server
        # dates every multipart upload 2010-11-10: only its own clock says so.
        def slowly():
            for _ in range(6):
                yield os.urandom(1 << 20)
                time.sleep(0.6)
        streamed = server.post("/v1/artifacts?filename=slow.bin", data=slowly(), headers=bearer(server.token()))
        assert streamed.status_code == 201, streamed.text
        assert streamed.json()["size"] == 6 << 20
    finally:
        server.kill()
        backend.stop()


@pytest.mark.parametrize("name", ["fs", "s3", "gcs"])
def test_a_listing_describes_each_object_as_head_does(data_dir, name):
    store = Store(data_dir, name)
    try:
        server, headers = store.server, bearer(store.server.token())
        created = [upload(server, headers, os.urandom(1000 + i), f"l{i}.bin", content_type=f"image/x-test{i}").json()
                   for i in range(3)]
        listed = {item["name"]: item for item in server.get("/v1/artifacts", headers=headers).json()["objects"]}
        for item in created:
            entry = listed[f"{item['asset_id']}/{item['filename'] if 'filename' in item else item['key'].rsplit('/', 1)[1]}"]
            head = requests.head(f"{server.url}/v1/artifacts/{item['asset_id']}", headers=headers)
            assert entry["etag"] == head.headers["ETag"] == item["etag"]
            assert entry["sha256"] == head.headers["x-checksum-sha256"] == item["sha256"] != ""
            assert entry["content_type"] == head.headers["Content-Type"] == item["content_type"]
            assert entry["etag"].count('"') == 2
    finally:
        store.close()
