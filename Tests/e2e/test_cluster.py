"""Several nodes on one PostgreSQL database (`store.backend: postgres`):
one log, one seq per stream, revisions and idempotency shared by every
node, live delivery from a commit on any node to subscribers on every node.
PostgreSQL is Debian's, started here on 127.0.0.1 as an unprivileged user."""
import concurrent.futures
import json
import time

import pytest

from conftest import Server, bearer, northstar
from postgres_server import PostgresServer
from sse_client import SSEStream


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    yield server
    server.stop()


def node_config(folder, url, secret_file, **store):
    config = {
        "node": {"env": "dev"},
        "store": {"backend": "postgres", "postgres_url": f"{url}?sslmode=disable", "pool_size": 4, **store},
        "plugins": [
            # One dev secret for every node: a token from one is good on all.
            {"name": "jwt", "path": "libNorthstarJWT.so",
             "config": {"dev_secret_file": str(secret_file), "issuer": "northstar-dev", "audience": "northstar"}},
            {"name": "sse", "path": "libNorthstarSSE.so", "config": {"allow_query_token": True}},
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


class Cluster:
    """`count` nodes on one new database."""

    def __init__(self, postgres, root, count=2, **store):
        self.postgres = postgres
        self.url = postgres.create_database()
        self.database = self.url.rsplit("/", 1)[1]
        self.secret = root / "jwt-dev-secret"
        self.nodes = [Server(root / f"node{i}", config=node_config(root / f"node{i}", self.url, self.secret, **store))
                      for i in range(count)]

    def start(self):
        for node in self.nodes:
            node.start()
        return self

    def stop(self):
        for node in self.nodes:
            node.kill()


@pytest.fixture
def cluster(postgres, data_dir):
    instance = Cluster(postgres, data_dir).start()
    yield instance
    instance.stop()


def test_a_commit_on_any_node_reaches_subscribers_on_every_node_once_in_order(cluster):
    a, b = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    streams = [SSEStream(node.port, f"/sse/chat/{thread}", headers) for node in (a, b)]
    assert all(stream.status == 200 for stream in streams)
    time.sleep(0.3)  # both subscribers are live
    for index in range(20):
        node = (a, b)[index % 2]
        assert node.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers).status_code == 201
    for stream in streams:
        got = [event["json"] for event in stream.events(20)]
        assert [event["seq"] for event in got] == list(range(1, 21))
        assert [event["data"]["text"] for event in got] == [f"m{index}" for index in range(20)]
        stream.close()


def test_a_subscriber_resumes_on_another_node_without_a_gap(cluster):
    a, b = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    for index in range(5):
        a.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers)
    resumed = SSEStream(b.port, f"/sse/chat/{thread}", {**headers, "Last-Event-ID": "3"})
    b.post(f"/v1/threads/{thread}/messages", json={"text": "live"}, headers=headers)
    assert [event["json"]["seq"] for event in resumed.events(3)] == [4, 5, 6]
    resumed.close()


def test_concurrent_appends_through_two_nodes_get_every_seq_once(cluster):
    a, b = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]

    def post(index):
        node = (a, b)[index % 2]
        return node.post(f"/v1/threads/{thread}/messages", json={"text": str(index)}, headers=headers).json()["event"]["seq"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        seqs = list(pool.map(post, range(100)))
    assert sorted(seqs) == list(range(1, 101))
    events = b.get(f"/v1/threads/{thread}/events?limit=500", headers=headers).json()["events"]
    assert [event["seq"] for event in events] == list(range(1, 101))


def test_one_base_rev_has_one_winner_across_nodes(cluster):
    a, b = cluster.nodes
    headers = bearer(a.token())
    canvas = a.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]

    def attempt(index):
        node = (a, b)[index % 2]
        answer = node.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                           json={"command_id": f"c{index}", "base_rev": 0, "ops": [{"op": "add", "path": "/winner", "value": index}]})
        return answer.status_code, answer.json()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(attempt, range(24)))
    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 1 and statuses.count(409) == 23
    assert all(body["error"]["head_rev"] == 1 for status, body in answers if status == 409)
    winner = next(index for index, (status, _) in enumerate(answers) if status == 201)
    for node in (a, b):
        head = node.get(f"/v1/canvases/{canvas}", headers=headers).json()
        assert head["head_rev"] == 1 and head["document"] == {"winner": winner}


def test_a_retry_sent_to_another_node_gets_the_first_outcome(cluster):
    a, b = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    message = {"text": "once", "client_message_id": "cm-1"}
    first = a.post(f"/v1/threads/{thread}/messages", json=message, headers=headers)
    again = b.post(f"/v1/threads/{thread}/messages", json=message, headers=headers)
    assert first.status_code == 201 and again.status_code in (200, 201)
    assert again.json()["replayed"] is True and again.json()["event"]["seq"] == first.json()["event"]["seq"]
    reused = b.post(f"/v1/threads/{thread}/messages", json={"text": "other", "client_message_id": "cm-1"}, headers=headers)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "client_message_id_reused"

    canvas = a.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    command = {"command_id": "cmd-1", "base_rev": 0, "ops": [{"op": "add", "path": "/a", "value": 1}]}
    committed = a.post(f"/v1/canvases/{canvas}/commands", json=command, headers=headers)
    replayed = b.post(f"/v1/canvases/{canvas}/commands", json=command, headers=headers)
    assert committed.status_code == 201 and replayed.status_code == 200
    assert replayed.json()["rev"] == committed.json()["rev"] == 1
    assert len(b.get(f"/v1/canvases/{canvas}/events", headers=headers).json()["events"]) == 1


def test_a_gesture_started_on_one_node_takes_samples_through_another_and_replays_from_a_third(postgres, data_dir):
    cluster = Cluster(postgres, data_dir, count=3).start()
    try:
        a, b, c = cluster.nodes
        headers = bearer(a.token())
        canvas = a.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
        gesture = a.post(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"]
        samples = [{"t_ms": 0, "x": 0, "y": 0, "pointer": 1, "phase": "down"},
                   {"t_ms": 20, "x": 1, "y": 1, "pointer": 1, "phase": "move"},
                   {"t_ms": 40, "x": 2, "y": 2, "pointer": 1, "phase": "up"}]
        for sample in samples:
            answer = b.post(f"/v1/canvases/{canvas}/gestures/{gesture}/samples", json={"samples": [sample]}, headers=headers)
            assert answer.status_code == 200, answer.text
        assert a.post(f"/v1/canvases/{canvas}/gestures/{gesture}/end", headers=headers).status_code == 200
        replay = SSEStream(c.port, f"/sse/gestures/{gesture}?pace=none", headers)
        assert [event["json"]["data"]["t_ms"] for event in replay.events(3)] == [0, 20, 40]
        replay.close()
        assert c.get(f"/v1/canvases/{canvas}/gestures/{gesture}", headers=headers).json()["sample_count"] == 3
    finally:
        cluster.stop()


def test_isolation_holds_across_nodes(cluster):
    a, b = cluster.nodes
    owner = bearer(a.token())
    other = bearer(b.token(tenant="t_beta"))
    thread = a.post("/v1/threads", json={}, headers=owner).json()["thread_id"]
    assert b.get(f"/v1/threads/{thread}", headers=other).status_code == 404
    assert b.post(f"/v1/threads/{thread}/messages", json={"text": "x"}, headers=other).status_code == 404
    assert SSEStream(b.port, f"/sse/chat/{thread}", other).status == 404
    assert b.get(f"/v1/threads/{thread}", headers=bearer(b.token(env="prod"))).status_code == 401
    assert b.get(f"/v1/threads/{thread}").status_code == 401


def test_nodes_starting_together_migrate_once_and_an_older_binary_refuses_a_newer_schema(postgres, data_dir):
    cluster = Cluster(postgres, data_dir, count=3)
    for node in cluster.nodes:  # all at once: the advisory lock lets one migrate
        node.start(timeout=60)
    try:
        assert postgres.psql(cluster.database, "SELECT version FROM northstar.schema_version") == "1\n"
    finally:
        cluster.stop()
    postgres.psql(cluster.database, "UPDATE northstar.schema_version SET version = 99")
    result = northstar("serve", "--listen", "127.0.0.1:0", "--config", cluster.nodes[0].config,
                       "--data-dir", data_dir / "node0", )
    assert result.returncode == 2 and "schema 99" in result.stderr and "newer Northstar" in result.stderr


def test_an_unreachable_database_is_refused_at_start_without_the_password(data_dir):
    config = node_config(data_dir, "postgres://someone:hunter2@127.0.0.1:1/northstar", data_dir / "secret")
    result = northstar("serve", "--listen", "127.0.0.1:0", "--config", config, "--data-dir", data_dir)
    assert result.returncode == 2 and "cannot be used" in result.stderr and "hunter2" not in result.stderr


@pytest.mark.parametrize("store, key", [
    ({"backend": "postgres"}, "store.postgres_url"),
    ({"backend": "postgres", "postgres_url": "mysql://u@h/db"}, "store.postgres_url"),
    ({"backend": "postgres", "postgres_url": "postgres://h/db"}, "store.postgres_url"),
    ({"backend": "postgres", "postgres_url": "postgres://u@h/"}, "store.postgres_url"),
    ({"backend": "postgres", "postgres_url": "postgres://u@h/db?sslmode=maybe"}, "store.postgres_url"),
    ({"backend": "postgres", "postgres_url": "postgres://u@h/db?application_name=x"}, "store.postgres_url"),
    ({"backend": "postgres", "postgres_url": "postgres://u@h/db", "pool_size": 0}, "store.pool_size"),
    ({"backend": "sqlite", "postgres_url": "postgres://u@h/db"}, "store.postgres_url"),
    ({"backend": "mysql"}, "store.backend"),
])
def test_bad_store_config_is_refused_with_the_key(data_dir, store, key):
    path = data_dir / "config.json"
    path.write_text(json.dumps({"store": store}))
    result = northstar("config", "check", "--config", path, "--data-dir", data_dir)
    assert result.returncode == 2 and key in result.stderr, result.stderr


def test_malformed_notifications_are_ignored(cluster):
    a, b = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    stream = SSEStream(b.port, f"/sse/chat/{thread}", headers)
    time.sleep(0.3)
    for payload in ["", "garbage", "0 chat:x", f"0 chat:{thread}", "5", "-1 chat:x", "99999999999999999999 chat:x", f"7 chat:{thread}"]:
        cluster.postgres.psql(cluster.database, f"NOTIFY northstar_events, '{payload}'")
    a.post(f"/v1/threads/{thread}/messages", json={"text": "after"}, headers=headers)
    assert [event["json"]["data"]["text"] for event in stream.events(1)] == ["after"]
    stream.close()
    assert b.process.poll() is None and "store notification not understood" in b.log_text()


def test_a_database_restart_is_answered_503_then_recovered_and_live_subscribers_catch_up(postgres, data_dir):
    cluster = Cluster(postgres, data_dir).start()
    try:
        a, b = cluster.nodes
        headers = bearer(a.token())
        thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        watcher = SSEStream(b.port, f"/sse/chat/{thread}", headers, timeout=30)
        time.sleep(0.3)
        a.post(f"/v1/threads/{thread}/messages", json={"text": "before"}, headers=headers)
        assert watcher.events(1)[0]["json"]["seq"] == 1

        postgres.stop_only()
        refused = a.post(f"/v1/threads/{thread}/messages", json={"text": "down"}, headers=headers)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_unavailable"
        assert a.get("/readyz").status_code == 503
        postgres.start_again()

        deadline = time.monotonic() + 30
        while a.post(f"/v1/threads/{thread}/messages", json={"text": "after"}, headers=headers).status_code != 201:
            assert time.monotonic() < deadline, "writes did not come back"
            time.sleep(0.5)
        while a.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "/readyz did not come back"
            time.sleep(0.2)
        texts = [event["json"]["data"]["text"] for event in watcher.events(1)]
        assert texts == ["after"]  # the subscriber on the other node stayed and caught up
        watcher.close()
    finally:
        cluster.stop()
