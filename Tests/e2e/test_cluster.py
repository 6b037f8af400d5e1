"""Several nodes on one PostgreSQL database (`store.backend: postgres`):
one log, one seq per stream, revisions and idempotency shared by every
node, live delivery from a commit on any node to subscribers on every node.
PostgreSQL is Debian's, started here on 127.0.0.1 as an unprivileged user."""
import concurrent.futures
import json
import re
import subprocess
import sys
import threading
import time

import jsonschema
import pytest

from conftest import NORTHSTAR, Server, bearer, load_schema, northstar
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
    # Each node counts what it appended, not what it delivered.
    for node in (a, b):
        assert 'northstar_events_appended_total{type="chat.message"} 10\n' in node.get("/metrics").text


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


EVENT_SCHEMA = load_schema("stream-event.v1.json")


def publish_sql(stream, type_="app.order_shipped", data='{"order": 7}', tenant="t_alpha", env="dev", extra=""):
    return f"SELECT northstar.publish('{tenant}', '{env}', '{stream}', '{type_}', '{data}'::jsonb{extra})"


def test_an_event_published_in_the_applications_transaction_exists_exactly_when_it_commits(cluster):
    a, b = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    watcher = SSEStream(b.port, f"/sse/chat/{thread}", headers, timeout=10)
    time.sleep(0.3)
    # The application's transaction: publish, then work on for a second before COMMIT.
    session = threading.Thread(target=cluster.postgres.psql, args=(cluster.database,
                               f"BEGIN; {publish_sql(f'chat:{thread}')}; SELECT pg_sleep(1); COMMIT;"))
    started = time.monotonic()
    session.start()
    time.sleep(0.5)
    assert a.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"] == []  # not before the commit
    event = watcher.events(1)[0]["json"]
    assert time.monotonic() - started >= 0.9  # delivered after the commit, not at the call
    session.join()
    jsonschema.validate(event, EVENT_SCHEMA)
    assert event["seq"] == 1 and event["type"] == "app.order_shipped" and event["data"] == {"order": 7}
    assert event["actor"] == "app" and event["stream"] == f"chat:{thread}"
    # A node's append takes the next seq after it.
    assert a.post(f"/v1/threads/{thread}/messages", json={"text": "next"}, headers=headers).json()["event"]["seq"] == 2
    watcher.close()


def test_a_rolled_back_publish_leaves_nothing(cluster):
    a, _ = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    cluster.postgres.psql(cluster.database, f"BEGIN; {publish_sql(f'chat:{thread}')}; ROLLBACK;")
    assert a.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"] == []
    assert a.post(f"/v1/threads/{thread}/messages", json={"text": "first"}, headers=headers).json()["event"]["seq"] == 1
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert cluster.postgres.psql(cluster.database, publish_sql(f"chat:{thread}", extra=f", 'billing', '{trace}'")) == "2\n"
    published = a.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"][-1]
    assert published["actor"] == "billing" and published["trace"] == trace


@pytest.mark.parametrize("change, message", [
    ({"tenant": "t_beta"}, "no stream"),
    ({"env": "prod"}, "no stream"),
    ({"stream": "chat:th_" + "a" * 26}, "no stream"),
    ({"stream": "gesture:gs_" + "a" * 26}, "stream must be"),
    ({"type_": "chat.message"}, "type must be app."),
    ({"type_": "app"}, "type must be app."),
    ({"type_": "app.Order"}, "type must be app."),
    ({"data": "[1, 2]"}, "data must be a JSON object"),
    ({"extra": ", ''"}, "actor must be"),
    ({"extra": ", 'app', 'not-a-trace'"}, "traceparent must be"),
    ({"extra": ", 'app', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'"}, "traceparent must be"),
])
def test_publish_refuses_another_tenants_stream_and_bad_input(cluster, change, message):
    a, _ = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    arguments = {"stream": f"chat:{thread}", **change}
    try:
        cluster.postgres.psql(cluster.database, publish_sql(**arguments))
        raise AssertionError("published")
    except AssertionError as refused:
        assert message in str(refused), refused
    assert a.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"] == []


def all_events(node, thread, headers):
    events = []
    while True:
        page = node.get(f"/v1/threads/{thread}/events?after={len(events)}&limit=1000", headers=headers).json()["events"]
        if not page:
            return events
        events += page


def test_store_copy_moves_a_node_to_a_cluster_verified_and_can_run_again(postgres, data_dir):
    single = Server(data_dir / "single").start()
    headers = bearer(single.token())
    thread = single.write("/v1/threads", json={"title": "kept"}, headers=headers).json()["thread_id"]
    for index in range(1205):  # more than one page of the copy
        message = {"text": f"m{index}", **({"client_message_id": f"cm{index}"} if index < 5 else {})}
        single.write(f"/v1/threads/{thread}/messages", json=message, headers=headers)
    canvas = single.write("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    for rev in range(3):
        single.write(f"/v1/canvases/{canvas}/commands", headers=headers,
                     json={"command_id": f"c{rev}", "base_rev": rev, "ops": [{"op": "add", "path": f"/k{rev}", "value": rev}]})
    gesture = single.write(f"/v1/canvases/{canvas}/gestures", headers=headers).json()["gesture_id"]
    single.write(f"/v1/canvases/{canvas}/gestures/{gesture}/samples", headers=headers,
                 json={"samples": [{"t_ms": 0, "x": 1, "y": 2, "pointer": 1, "phase": "down"}]})
    before = all_events(single, thread, headers)
    single.stop()

    url = postgres.create_database()
    sqlite = data_dir / "single" / "northstar.sqlite"
    copied = northstar("store", "copy", "--from", sqlite, "--to", url + "?sslmode=disable")
    assert copied.returncode == 0, copied.stderr
    assert "events: 1211 copied" in copied.stdout and copied.stdout.count(" verified\n") == 9 and "0 differ" in copied.stdout, copied.stdout

    # Run again: nothing new, still verified. Then lose part of the copy (an interruption) and run again.
    again = northstar("store", "copy", "--from", sqlite, "--to", url + "?sslmode=disable")
    assert again.returncode == 0 and "events: 0 copied" in again.stdout
    database = url.rsplit("/", 1)[1]
    postgres.psql(database, f"DELETE FROM northstar.events WHERE stream = 'chat:{thread}' AND seq > 600")
    resumed = northstar("store", "copy", "--from", sqlite, "--to", url + "?sslmode=disable")
    assert resumed.returncode == 0 and "events: 605 copied" in resumed.stdout, resumed.stdout

    cluster = Cluster.__new__(Cluster)
    cluster.postgres, cluster.url, cluster.database, cluster.secret = postgres, url, database, data_dir / "single" / "jwt-dev-secret"
    cluster.nodes = [Server(data_dir / f"node{i}", config=node_config(data_dir / f"node{i}", url, cluster.secret)) for i in range(2)]
    cluster.start()
    try:
        a, b = cluster.nodes
        headers = bearer(a.token())
        for node in (a, b):
            assert all_events(node, thread, headers) == before
            assert node.get(f"/v1/canvases/{canvas}", headers=headers).json()["document"] == {"k0": 0, "k1": 1, "k2": 2}
            assert node.get(f"/v1/canvases/{canvas}/gestures/{gesture}", headers=headers).json()["sample_count"] == 1
        replay = b.post(f"/v1/threads/{thread}/messages", json={"text": "m3", "client_message_id": "cm3"}, headers=headers).json()
        assert replay["replayed"] is True and replay["event"]["seq"] == 4
        assert a.post(f"/v1/threads/{thread}/messages", json={"text": "new"}, headers=headers).json()["event"]["seq"] == 1206
    finally:
        cluster.stop()

    # The cluster wrote meanwhile: a copy now finds the difference and says where.
    differs = northstar("store", "copy", "--from", sqlite, "--to", url + "?sslmode=disable")
    assert differs.returncode == 1 and "streams" in differs.stderr and "events" in differs.stderr


def test_store_copy_pages_large_rows_by_bytes(postgres, data_dir):
    """60 commands of 900 KB (54 MB in events and as much in revisions):
    copied whole, a few MB at a time, not 1,000 rows of them at once."""
    single = Server(data_dir / "single").start()
    headers = bearer(single.token())
    canvas = single.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    for rev in range(60):
        answer = single.post(f"/v1/canvases/{canvas}/commands", headers=headers, json={
            "command_id": f"c{rev}", "base_rev": rev, "ops": [{"op": "add", "path": "/v", "value": chr(97 + rev % 26) * 900_000}]})
        assert answer.status_code == 201
    single.stop()
    url = postgres.create_database()
    command = [str(NORTHSTAR), "store", "copy", "--from", data_dir / "single" / "northstar.sqlite", "--to", url + "?sslmode=disable"]
    # A small parent tells the copy's own peak (a child forked from pytest would count pytest's).
    measure = "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; " \
              "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
    copied = subprocess.run([sys.executable, "-c", measure, *map(str, command)], capture_output=True, text=True, timeout=120)
    output = copied.stdout
    assert copied.returncode == 0, output + copied.stderr
    assert "events: 60 copied" in output and "revisions: 60 copied" in output and output.count(" verified\n") == 9, output
    peak_mb = int(re.search(r"maxrss_kb (\d+)", output).group(1)) // 1024
    assert peak_mb < 130, f"the copy peaked at {peak_mb} MB for 108 MB of rows"


def test_store_copy_refuses_what_it_cannot_open(postgres, data_dir):
    missing = northstar("store", "copy", "--from", data_dir / "nothing.sqlite", "--to", "postgres://u@127.0.0.1:1/db")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (data_dir / "empty.sqlite").write_bytes(b"")
    for url, message in [("mysql://u@h/db", "must be postgres://"), ("postgres://u:secret@127.0.0.1:1/db", "cannot be used")]:
        refused = northstar("store", "copy", "--from", data_dir / "empty.sqlite", "--to", url)
        assert refused.returncode == 2 and message in refused.stderr and "secret" not in refused.stderr, refused.stderr


def test_publish_is_for_granted_roles_only_and_they_get_no_table_rights(cluster):
    a, _ = cluster.nodes
    headers = bearer(a.token())
    thread = a.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    database = cluster.database
    cluster.postgres.psql(database, "CREATE ROLE app_granted; CREATE ROLE app_other; GRANT USAGE ON SCHEMA northstar TO app_granted, app_other;"
                          " GRANT EXECUTE ON FUNCTION northstar.publish(text, text, text, text, jsonb, text, text) TO app_granted")
    assert cluster.postgres.psql(database, f"SET ROLE app_granted; {publish_sql(f'chat:{thread}')}").split() == ["SET", "1"]
    for refused in [f"SET ROLE app_other; {publish_sql(f'chat:{thread}')}",
                    f"SET ROLE app_granted; INSERT INTO northstar.events VALUES ('chat:{thread}', 9, 'ev_x', 'app.x', ''::bytea)",
                    "SET ROLE app_granted; SELECT count(*) FROM northstar.resources"]:
        with pytest.raises(AssertionError, match="permission denied"):
            cluster.postgres.psql(database, refused)
    assert [e["seq"] for e in a.get(f"/v1/threads/{thread}/events", headers=headers).json()["events"]] == [1]


def test_past_revisions_rebuild_from_snapshots_on_every_node(postgres, data_dir):
    cluster = Cluster(postgres, data_dir, snapshot_every=3).start()
    try:
        a, b = cluster.nodes
        headers = bearer(a.token())
        canvas = a.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
        for rev in range(10):
            node = (a, b)[rev % 2]
            answer = node.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                               json={"command_id": f"c{rev}", "base_rev": rev, "ops": [{"op": "add", "path": f"/k{rev}", "value": rev}]})
            assert answer.status_code == 201, answer.text
        assert cluster.postgres.psql(cluster.database, f"SELECT rev FROM northstar.snapshots WHERE canvas = '{canvas}' ORDER BY rev").split() \
            == ["0", "3", "6", "9"]
        for rev in range(11):
            document = b.get(f"/v1/canvases/{canvas}?rev={rev}", headers=headers).json()["document"]
            assert document == {f"k{index}": index for index in range(rev)}
    finally:
        cluster.stop()


def test_the_console_of_any_node_lists_every_node(postgres, data_dir):
    cluster = Cluster(postgres, data_dir, count=3).start()
    try:
        a, b, c = cluster.nodes
        admin = bearer(a.token(user="ops", scopes="read,write,admin"))
        deadline = time.monotonic() + 10
        while len(b.get("/console/status", headers=admin).json()["cluster"]) < 3:
            assert time.monotonic() < deadline, "the nodes did not all show up"
            time.sleep(0.2)
        listed = b.get("/console/status", headers=admin).json()["cluster"]
        assert sorted(int(n["address"].rsplit(":", 1)[1]) for n in listed) == sorted(node.port for node in cluster.nodes)
        assert [n["this"] for n in listed].count(True) == 1
        this = next(n for n in listed if n["this"])
        assert this["address"].endswith(f":{b.port}") and all(n["state"] == "ready" and n["version"] for n in listed)
        assert b.get("/console/status", headers=bearer(b.token())).status_code == 403  # admins only
        assert c.stop() == 0  # a node that stops leaves the list
        remaining = a.get("/console/status", headers=admin).json()["cluster"]
        assert sorted(int(n["address"].rsplit(":", 1)[1]) for n in remaining) == sorted([a.port, b.port])
    finally:
        cluster.stop()


def test_commands_batched_together_keep_their_own_outcomes(cluster):
    a, _ = cluster.nodes
    headers = bearer(a.token())
    canvas = a.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    bodies = [("same", {"command_id": "same", "base_rev": 0, "ops": [{"op": "add", "path": "/by", "value": "same"}]})] * 8
    bodies += [(f"x{index}", {"command_id": f"x{index}", "base_rev": 0, "ops": [{"op": "add", "path": "/by", "value": f"x{index}"}]})
               for index in range(8)]
    bodies += [("bad", {"command_id": "bad", "base_rev": 0, "ops": [{"op": "remove", "path": "/nothing"}]})]

    def send(item):
        name, body = item
        answer = a.post(f"/v1/canvases/{canvas}/commands", json=body, headers=headers)
        return name, answer.status_code, answer.json()

    with concurrent.futures.ThreadPoolExecutor(17) as pool:
        answers = list(pool.map(send, bodies))
    assert [status for _, status, _ in answers].count(201) == 1
    winner = next(name for name, status, _ in answers if status == 201)
    for name, status, body in answers:
        if name == "same" and winner == "same":
            assert status in (200, 201) and body["rev"] == 1  # the copies replay the one that won
        elif name == "bad":
            assert (status, body["error"]["code"]) in ((422, "patch_failed"), (409, "rev_conflict"))
        elif name != winner:
            assert status == 409 and body["error"]["head_rev"] == 1
    head = a.get(f"/v1/canvases/{canvas}", headers=headers).json()
    assert head["head_rev"] == 1 and head["document"] == {"by": winner}
    assert len(a.get(f"/v1/canvases/{canvas}/events", headers=headers).json()["events"]) == 1
