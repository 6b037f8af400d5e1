"""The cluster example of Deploy/cluster/ for real: two nodes on one
PostgreSQL database behind Debian's nginx, run with Deploy/cluster/nginx.conf
(only its ports and file paths changed). Streams pass the proxy unbuffered,
WebSockets upgrade, and a node drained by a rolling deploy hands its
clients to the other one without a gap."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import requests
from websockets.sync.client import connect

from conftest import ROOT, Server, bearer, northstar
from postgres_server import PostgresServer, _free_port
from sse_client import SSEStream
from test_cluster import node_config


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    yield server
    server.stop()


class Proxy:
    """nginx with the example config, its upstreams pointed at `ports`."""

    def __init__(self, folder, ports):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.path.exists(nginx), "nginx is required (scripts/bootstrap test installs Debian's nginx-light)"
        text = (ROOT / "Deploy" / "cluster" / "nginx.conf").read_text()
        # The example's two nodes, in each of its upstreams.
        for example, port in zip(("127.0.0.1:8081", "127.0.0.1:8082"), ports):
            assert text.count(f"server {example} ") == 2, f"the example lists {example} in both upstreams"
            text = text.replace(f"server {example} ", f"server 127.0.0.1:{port} ")
        self.port = _free_port()
        text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
        text = text.replace("http {", f"http {{\n    access_log off;\n    client_body_temp_path {folder}/body;\n"
                                      f"    proxy_temp_path {folder}/proxy;", 1)
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "nginx.conf"
        config.write_text(text)
        self.process = subprocess.Popen([nginx, "-p", str(folder), "-c", str(config), "-g",
                                         f"daemon off; pid {folder}/nginx.pid; error_log {folder}/error.log warn;"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except requests.ConnectionError:
                assert self.process.poll() is None, self.process.stderr.read().decode()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def deployed(postgres, data_dir):
    url = postgres.create_database()
    secret = data_dir / "jwt-dev-secret"
    nodes = []
    for index in range(2):
        folder = data_dir / f"node{index}"
        config = node_config(folder, url, secret)
        document = json.loads(config.read_text())
        document["node"].update(drain_seconds=1, drain_deadline_seconds=5)
        document["plugins"].append({"name": "ws", "path": "libNorthstarWS.so", "config": {"allow_query_token": True}})
        config.write_text(json.dumps(document))
        nodes.append(Server(folder, config=config).start())
    proxy = Proxy(data_dir / "nginx", [node.port for node in nodes])
    yield proxy, nodes
    proxy.stop()
    for node in nodes:
        node.kill()


def test_the_example_configs_load(data_dir):
    config = json.loads((ROOT / "Deploy" / "cluster" / "northstar.node.json").read_text())
    config["node"]["plugin_dir"] = str(os.environ.get("NORTHSTAR_BIN", ROOT / ".build" / "debug"))
    config["node"]["data_dir"] = str(data_dir)
    path = data_dir / "node.json"
    path.write_text(json.dumps(config))
    secrets = {"NORTHSTAR_JWT_HS256_SECRET": "k" * 40, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example",
               "NORTHSTAR_ADMIN_TOKEN": "a" * 32, "NORTHSTAR_PG_URL": "postgres://northstar@db.internal:5432/northstar?sslmode=require"}
    checked = northstar("config", "check", "--config", path, env={**os.environ, **secrets})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    missing = northstar("config", "check", "--config", path,
                        env={**os.environ, **{k: v for k, v in secrets.items() if k != "NORTHSTAR_PG_URL"}})
    assert missing.returncode == 2 and "NORTHSTAR_PG_URL" in missing.stderr
    nginx = subprocess.run(["nginx", "-t", "-p", str(data_dir), "-c", str(ROOT / "Deploy" / "cluster" / "nginx.conf"),
                            "-g", f"pid {data_dir}/nginx.pid; error_log {data_dir}/error.log;"], capture_output=True, text=True)
    assert nginx.returncode == 0, nginx.stderr


def test_events_posted_through_the_proxy_stream_back_through_it_unbuffered(deployed):
    proxy, nodes = deployed
    headers = bearer(nodes[0].token())
    thread = requests.post(f"{proxy.url}/v1/threads", json={}, headers=headers, timeout=10).json()["thread_id"]
    stream = SSEStream(proxy.port, f"/sse/chat/{thread}", headers)
    assert stream.status == 200
    time.sleep(0.3)
    delays = []
    for index in range(10):  # round robin: half land on each node
        posted = time.monotonic()
        answer = requests.post(f"{proxy.url}/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers, timeout=10)
        assert answer.status_code == 201
        event = stream.events(1)[0]["json"]
        delays.append(time.monotonic() - posted)
        assert event["seq"] == index + 1
    assert max(delays) < 1.0, delays  # each event arrived on its own, not held in a proxy buffer
    stream.close()
    # Both nodes took posts.
    for node in nodes:
        assert re.search(r'northstar_http_requests_total\{status="201"\} [1-9]', node.get("/metrics").text)


def test_websockets_upgrade_through_the_proxy(deployed):
    proxy, nodes = deployed
    headers = bearer(nodes[0].token())
    thread = requests.post(f"{proxy.url}/v1/threads", json={}, headers=headers, timeout=10).json()["thread_id"]
    try:
        socket = connect(f"ws://127.0.0.1:{proxy.port}/ws", additional_headers=headers, open_timeout=10)
    except Exception as error:  # the nodes' logs say what the handshake met
        raise AssertionError(f"{error!r}\n" + "\n".join(node.log_text()[-4000:] for node in nodes)) from error
    with socket:
        socket.send(json.dumps({"type": "subscribe", "id": "s1", "stream": f"chat:{thread}", "after": 0}))
        assert json.loads(socket.recv(timeout=10))["type"] == "subscribed"
        requests.post(f"{proxy.url}/v1/threads/{thread}/messages", json={"text": "hello"}, headers=headers, timeout=10)
        message = json.loads(socket.recv(timeout=10))
        assert message["type"] == "event" and message["event"]["data"]["text"] == "hello"
    # Handshakes between REST requests, which leave kept-alive upstream connections in the proxy's
    # cache: each handshake still gets a connection of its own (a reused one cannot upgrade).
    for index in range(10):
        assert requests.get(f"{proxy.url}/v1/threads/{thread}", headers=headers, timeout=10).status_code == 200
        with connect(f"ws://127.0.0.1:{proxy.port}/ws", additional_headers=headers, open_timeout=10) as again:
            again.send(json.dumps({"type": "ping", "id": index}))
            assert json.loads(again.recv(timeout=10))["type"] == "pong"


def test_a_drained_node_hands_its_clients_to_the_other_without_a_gap(deployed):
    proxy, nodes = deployed
    headers = bearer(nodes[0].token())
    thread = requests.post(f"{proxy.url}/v1/threads", json={}, headers=headers, timeout=10).json()["thread_id"]
    # Two streams: round robin puts them on different nodes.
    streams = [SSEStream(proxy.port, f"/sse/chat/{thread}", headers) for _ in range(2)]
    time.sleep(0.3)
    requests.post(f"{proxy.url}/v1/threads/{thread}/messages", json={"text": "before"}, headers=headers, timeout=10)
    for stream in streams:
        assert stream.events(1)[0]["json"]["seq"] == 1

    nodes[0].process.send_signal(signal.SIGTERM)  # a rolling deploy takes node 0 down
    posted, failures = 1, []
    deadline = time.monotonic() + 6
    while nodes[0].process.poll() is None and time.monotonic() < deadline:
        answer = requests.post(f"{proxy.url}/v1/threads/{thread}/messages", json={"text": f"m{posted}"}, headers=headers, timeout=10)
        if answer.status_code == 201:
            posted += 1
        else:
            failures.append(answer.status_code)
        time.sleep(0.05)
    assert nodes[0].process.wait(timeout=20) == 0
    assert not failures, failures  # the proxy sent every post to a node that took it
    requests.post(f"{proxy.url}/v1/threads/{thread}/messages", json={"text": "after"}, headers=headers, timeout=10)
    posted += 1

    # Each client reads until its stream ends (the drained node's) or has everything, then resumes through the proxy.
    for stream in streams:
        seen = [1]
        while seen[-1] < posted:
            frame = stream.frame()
            if frame.get("event") == "stream.end":
                resume_from = json.loads(frame["data"])["last_seq"]
                assert resume_from == seen[-1]
                stream.close()
                stream = SSEStream(proxy.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": str(resume_from)})
                continue
            if "id" in frame and "data" in frame:
                seen.append(json.loads(frame["data"])["seq"])
        assert seen == list(range(1, posted + 1))
        stream.close()
