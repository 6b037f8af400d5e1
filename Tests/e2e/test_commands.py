"""Two clients editing one canvas converge through conflicts and rebases."""
import concurrent.futures
import json

import pytest
from websockets.sync.client import connect

from conftest import bearer
from test_ws import ws_url


def command(command_id, base_rev, ops):
    return {"command_id": command_id, "base_rev": base_rev, "ops": ops}


def test_two_clients_converge(server):
    alice = bearer(server.token(user="alice"))
    bob = bearer(server.token(user="bob"))
    canvas = server.post("/v1/canvases", json={}, headers=alice).json()["canvas_id"]
    url = f"/v1/canvases/{canvas}/commands"
    server.post(url, headers=alice, json=command("a0", 0, [{"op": "add", "path": "/shapes", "value": []}]))

    # Both edit against rev 1; Alice lands first.
    assert server.post(url, headers=alice, json=command("a1", 1, [{"op": "add", "path": "/shapes/-", "value": "circle"}])).status_code == 201
    conflict = server.post(url, headers=bob, json=command("b1", 1, [{"op": "add", "path": "/shapes/-", "value": "square"}]))
    assert conflict.status_code == 409
    error = conflict.json()["error"]
    assert error["code"] == "rev_conflict" and error["head_rev"] == 2 and error["base_rev"] == 1
    assert 'northstar_conflicts_total{code="rev_conflict"} 1\n' in server.get("/metrics").text

    # Bob fetches what he missed, rebases, and commits.
    missed = server.get(error["missed"], headers=bob).json()
    assert [r["rev"] for r in missed["revisions"]] == [2] and missed["revisions"][0]["command_id"] == "a1"
    rebased = server.post(url, headers=bob, json=command("b1-rebased", 2, [{"op": "add", "path": "/shapes/-", "value": "square"}]))
    assert rebased.status_code == 201 and rebased.json()["rev"] == 3

    head = server.get(f"/v1/canvases/{canvas}", headers=alice).json()
    assert head["head_rev"] == 3 and head["document"] == {"shapes": ["circle", "square"]}
    events = server.get(f"/v1/canvases/{canvas}/events", headers=alice).json()["events"]
    assert [(e["type"], e["rev"]) for e in events] == [("canvas.committed", 1), ("canvas.committed", 2), ("canvas.committed", 3)]
    assert [e["actor"] for e in events] == ["alice", "alice", "bob"]
    assert server.get(f"/v1/canvases/{canvas}?rev=2", headers=bob).json()["document"] == {"shapes": ["circle"]}


def test_concurrent_commands_grant_each_revision_once(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]

    def attempt(index):
        return server.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                           json=command(f"c{index}", 0, [{"op": "add", "path": "/winner", "value": index}])).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(attempt, range(32)))
    assert statuses.count(201) == 1 and statuses.count(409) == 31
    events = server.get(f"/v1/canvases/{canvas}/events", headers=headers).json()["events"]
    assert [e["seq"] for e in events] == [1]


@pytest.mark.parametrize("body, status, code", [
    (command("x", 1, [{"op": "jump", "path": "/a"}]), 400, "invalid_patch"),
    (command("x", 1, [{"op": "add", "value": 1}]), 400, "invalid_patch"),
    (command("x", 1, [{"op": "add", "path": "a", "value": 1}]), 400, "invalid_patch"),
    (command("x", 1, [{"op": "add", "path": "/a~2", "value": 1}]), 400, "invalid_patch"),
    (command("x", 1, [{"op": "remove", "path": "/nothing"}]), 422, "patch_failed"),
    (command("x", 1, [{"op": "add", "path": "/b", "value": 1}, {"op": "test", "path": "/a", "value": 2}]), 422, "patch_failed"),
    (command("x", 7, [{"op": "add", "path": "/b", "value": 1}]), 422, "base_rev_ahead"),
    (command("x", 0, [{"op": "add", "path": "/b", "value": 1}]), 409, "rev_conflict"),
    ({"base_rev": 1, "ops": [{"op": "add", "path": "/b", "value": 1}]}, 400, "missing_field"),
    ({"command_id": "x", "base_rev": -1, "ops": [{"op": "add", "path": "/b", "value": 1}]}, 400, "invalid_field"),
    ({"command_id": "x", "base_rev": "1", "ops": [{"op": "add", "path": "/b", "value": 1}]}, 400, "invalid_field"),
    ({"command_id": "x", "base_rev": 1.5, "ops": [{"op": "add", "path": "/b", "value": 1}]}, 400, "invalid_field"),
    ({"command_id": "x", "base_rev": 1, "ops": []}, 400, "invalid_patch"),
    ({"command_id": "x", "base_rev": 1, "ops": {"op": "add"}}, 400, "invalid_field"),
    ({"command_id": "x", "base_rev": 1, "ops": [{"op": "add", "path": "/b", "value": 1}], "extra": 1}, 400, "unknown_field"),
    (command("x", 1, [{"op": "add", "path": "/" + "/".join(["d"] * 40), "value": 1}]), 400, "invalid_patch"),
    (command("x", 1, [{"op": "add", "path": f"/k{i}", "value": i} for i in range(1001)]), 413, "too_many_operations"),
])
def test_bad_commands_change_nothing(server, body, status, code):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    server.post(f"/v1/canvases/{canvas}/commands", headers=headers, json=command("first", 0, [{"op": "add", "path": "/a", "value": 1}]))
    response = server.post(f"/v1/canvases/{canvas}/commands", headers=headers, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    head = server.get(f"/v1/canvases/{canvas}", headers=headers).json()
    assert head["head_rev"] == 1 and head["document"] == {"a": 1}
    assert len(server.get(f"/v1/canvases/{canvas}/events", headers=headers).json()["events"]) == 1


def doubling_ops(pairs):
    """Copy the document into itself, then copy that beside it: each pair doubles the document it stands for."""
    return [{"op": "copy", "from": "", "path": "/x"}, {"op": "copy", "from": "/x", "path": "/y"}] * pairs


@pytest.mark.parametrize("transport", ["rest", "ws"])
def test_copies_that_double_the_document_are_refused_and_every_tenant_is_still_served(server, transport):
    """500 doublings stand for 2^500 values in a 50 KB body. Measuring such a
    document whole would hold the store's writer, every tenant's, forever:
    each command's copies may duplicate one document's worth of bytes at most."""
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    url = f"/v1/canvases/{canvas}/commands"
    assert server.post(url, headers=headers, json=command("first", 0, [{"op": "add", "path": "/a", "value": "0123456789"}])).status_code == 201
    bomb = command("bomb", 1, doubling_ops(500))
    if transport == "rest":
        response = server.post(url, headers=headers, json=bomb)
        assert response.status_code == 413, response.text
        error = response.json()["error"]
    else:
        with connect(ws_url(server, "/ws"), additional_headers=headers, open_timeout=10) as socket:
            socket.send(json.dumps({"type": "command", "id": 1, "canvas_id": canvas, "command": bomb}))
            answer = json.loads(socket.recv(timeout=60))
        assert answer["type"] == "error" and answer["status"] == 413, answer
        error = answer["error"]
    assert error["code"] == "document_too_large" and error["op_index"] > 0
    assert "1048576" in error["message"]
    # Nothing stored, and the writer serves everyone: another tenant, this canvas, a chat message.
    head = server.get(f"/v1/canvases/{canvas}", headers=headers).json()
    assert head["head_rev"] == 1 and head["document"] == {"a": "0123456789"}
    other = bearer(server.token(tenant="t_other"))
    thread = server.post("/v1/threads", json={}, headers=other).json()["thread_id"]
    assert server.post(f"/v1/threads/{thread}/messages", json={"text": "still here"}, headers=other).status_code == 201
    assert server.post(url, headers=headers,
                       json=command("small", 1, doubling_ops(3))).json()["rev"] == 2


def test_the_copies_of_one_command_duplicate_one_document_at_most(server):
    """Copies within the budget apply, even when the document ends small; past it, 413 at the copy that passes it."""
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    url = f"/v1/canvases/{canvas}/commands"
    value = "x" * 99_998   # 100,000 bytes of JSON text
    assert server.post(url, headers=headers, json=command("a", 0, [{"op": "add", "path": "/a", "value": value}])).status_code == 201
    # Ten copies of 100,000 bytes, each removed again: 1,000,000 bytes duplicated, within 1,048,576.
    within = [op for _ in range(10) for op in ({"op": "copy", "from": "/a", "path": "/b"}, {"op": "remove", "path": "/b"})]
    assert server.post(url, headers=headers, json=command("within", 1, within)).status_code == 201
    past = within + [{"op": "copy", "from": "/a", "path": "/b"}]
    response = server.post(url, headers=headers, json=command("past", 2, past))
    assert response.status_code == 413 and response.json()["error"]["code"] == "document_too_large"
    assert response.json()["error"]["op_index"] == 20
    head = server.get(f"/v1/canvases/{canvas}", headers=headers).json()
    assert head["head_rev"] == 2 and head["document"] == {"a": value}


def test_reused_command_id_with_another_body(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    url = f"/v1/canvases/{canvas}/commands"
    server.post(url, headers=headers, json=command("same", 0, [{"op": "add", "path": "/a", "value": 1}]))
    response = server.post(url, headers=headers, json=command("same", 0, [{"op": "add", "path": "/a", "value": 2}]))
    assert response.status_code == 409 and response.json()["error"]["code"] == "command_id_reused"


def test_rev_queries(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]
    for query, status, code in (("rev=5", 404, "revision_not_found"), ("rev=-1", 400, "invalid_rev"), ("rev=x", 400, "invalid_rev")):
        response = server.get(f"/v1/canvases/{canvas}?{query}", headers=headers)
        assert response.status_code == status and response.json()["error"]["code"] == code
    response = server.get(f"/v1/canvases/{canvas}/revisions?after=3", headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "after_past_head"
