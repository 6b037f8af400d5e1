"""Threads and canvases over REST on the embedded default, checked against
the OpenAPI document and the StreamEvent v1 schema."""
import json

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource

from conftest import ROOT, bearer, load_schema

SPEC_PATH = ROOT / "docs" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
EVENT_SCHEMA = load_schema("stream-event.v1.json")


def check(schema_name, body):
    """Validates a body against a component schema of the OpenAPI document."""
    registry = Registry().with_resources([
        ("openapi.json", Resource.from_contents({**SPEC, "$schema": "https://json-schema.org/draft/2020-12/schema"})),
        ("schemas/stream-event.v1.json", Resource.from_contents(EVENT_SCHEMA)),
    ])
    schema = {"$ref": f"openapi.json#/components/schemas/{schema_name}"}
    jsonschema.Draft202012Validator(schema, registry=registry,
                                    format_checker=jsonschema.FormatChecker()).validate(body)


def test_openapi_document_is_valid():
    validate_spec(SPEC, base_uri=SPEC_PATH.as_uri())


def test_every_documented_route_exists(server):
    """Each path and method in the document is routed (never route_not_found)."""
    headers = bearer(server.token())
    for path, methods in SPEC["paths"].items():
        concrete = (path.replace("{thread_id}", "th_" + "a" * 26).replace("{canvas_id}", "cv_" + "a" * 26)
                    .replace("{asset_id}", "as_" + "a" * 26).replace("{filename}", "f.bin").replace("{path}", "a/b.png")
                    .replace("{gesture_id}", "gs_" + "a" * 26))
        for method in methods:
            if method == "parameters":
                continue
            response = getattr(__import__("requests"), method)(server.url + concrete, headers=headers, json={}, timeout=10)
            assert response.status_code != 405, (method, path)
            if response.status_code == 404 and method != "head":
                assert response.json()["error"]["code"] != "route_not_found", (method, path)


def test_thread_flow_matches_the_contract(server):
    headers = bearer(server.token())
    created = server.post("/v1/threads", json={"title": "general", "metadata": {"topic": "x"}}, headers=headers)
    assert created.status_code == 201
    thread = created.json()
    check("Thread", thread)
    thread_id = thread["thread_id"]

    posted = server.post(f"/v1/threads/{thread_id}/messages", json={"text": "hello", "data": {"mentions": ["bob"]}},
                         headers=headers)
    assert posted.status_code == 201
    check("MessagePosted", posted.json())
    event = posted.json()["event"]
    jsonschema.validate(event, EVENT_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert event["data"] == {"text": "hello", "data": {"mentions": ["bob"]}}  # structured, not a string

    for index in range(4):
        server.post(f"/v1/threads/{thread_id}/messages", json={"text": f"m{index}"}, headers=headers)
    page = server.get(f"/v1/threads/{thread_id}/events?after=2&limit=2", headers=headers).json()
    check("EventPage", page)
    assert [e["seq"] for e in page["events"]] == [3, 4] and page["head_seq"] == 5 and page["next_after"] == 4
    for event in page["events"]:
        jsonschema.validate(event, EVENT_SCHEMA)

    read = server.get(f"/v1/threads/{thread_id}", headers=headers).json()
    check("Thread", read)
    assert read["head_seq"] == 5


def test_idempotent_message_post(server):
    headers = bearer(server.token())
    thread_id = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    body = {"text": "once", "client_message_id": "cm-1"}
    first = server.post(f"/v1/threads/{thread_id}/messages", json=body, headers=headers)
    again = server.post(f"/v1/threads/{thread_id}/messages", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["event"] == again.json()["event"] and again.json()["replayed"] is True
    changed = server.post(f"/v1/threads/{thread_id}/messages", json={**body, "text": "other"}, headers=headers)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "client_message_id_reused"
    assert server.get(f"/v1/threads/{thread_id}", headers=headers).json()["head_seq"] == 1


def test_canvas_flow_matches_the_contract(server):
    headers = bearer(server.token())
    canvas = server.post("/v1/canvases", json={"title": "board"}, headers=headers).json()
    check("Canvas", canvas)
    assert canvas["head_rev"] == 0 and canvas["document"] == {}
    canvas_id = canvas["canvas_id"]
    result = server.post(f"/v1/canvases/{canvas_id}/commands", headers=headers,
                         json={"command_id": "c1", "base_rev": 0, "ops": [{"op": "add", "path": "/shapes", "value": []}]})
    assert result.status_code == 201
    check("CommandResult", result.json())
    assert result.json()["rev"] == 1
    revisions = server.get(f"/v1/canvases/{canvas_id}/revisions", headers=headers).json()
    check("RevisionPage", revisions)
    events = server.get(f"/v1/canvases/{canvas_id}/events", headers=headers).json()
    check("EventPage", events)
    committed = events["events"][0]
    jsonschema.validate(committed, EVENT_SCHEMA)
    assert committed["type"] == "canvas.committed" and committed["rev"] == 1
    assert committed["data"]["ops"] == [{"op": "add", "path": "/shapes", "value": []}]
    head = server.get(f"/v1/canvases/{canvas_id}", headers=headers).json()
    check("Canvas", head)
    assert head["document"] == {"shapes": []}


@pytest.mark.parametrize("body, code", [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_body"),
    ('{"text": 5}', "invalid_field"),
    ('{"text": ""}', "missing_field"),
    ('{}', "missing_field"),
    ('{"text": "x", "colour": "red"}', "unknown_field"),
    ('{"text": "x", "client_message_id": "has space"}', "invalid_field"),
    ('{"text": "x", "data": "a string"}', "invalid_field"),
    ("", "invalid_json"),
    # Hostile or broken JSON: refused whole, never half-read.
    ('{"text": "x", "data": ' + "[" * 512 + "]" * 512 + "}", "invalid_json"),
    ("[" * 100_000, "invalid_json"),
    ('{"text": "\\ud800"}', "invalid_json"),
    ('{"text": "x"} {"text": "y"}', "invalid_json"),
    ('{"text": "x", "data": {"n": 1e400}}', "invalid_json"),
    (b'{"text": "\xff"}', "invalid_json"),
    ('{"text": "tab\there"}', "invalid_json"),
])
def test_bad_message_bodies_write_nothing(server, body, code):
    headers = bearer(server.token())
    thread_id = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    response = server.post(f"/v1/threads/{thread_id}/messages", data=body,
                           headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert server.get(f"/v1/threads/{thread_id}", headers=headers).json()["head_seq"] == 0


def test_oversized_body_is_413_and_writes_nothing(server):
    headers = bearer(server.token())
    thread_id = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    huge = json.dumps({"text": "x" * (2 * 1024 * 1024)})
    response = server.post(f"/v1/threads/{thread_id}/messages", data=huge, headers=headers)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert server.get(f"/v1/threads/{thread_id}", headers=headers).json()["head_seq"] == 0


@pytest.mark.parametrize("query, status, code", [
    ("after=-1", 400, "invalid_after"),
    ("after=abc", 400, "invalid_after"),
    ("after=1.5", 400, "invalid_after"),
    ("after=99", 400, "after_past_head"),
    ("limit=0", 400, "invalid_limit"),
    ("limit=5000", 400, "invalid_limit"),
])
def test_bad_event_queries(server, query, status, code):
    headers = bearer(server.token())
    thread_id = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    server.post(f"/v1/threads/{thread_id}/messages", json={"text": "one"}, headers=headers)
    response = server.get(f"/v1/threads/{thread_id}/events?{query}", headers=headers)
    assert response.status_code == status and response.json()["error"]["code"] == code


@pytest.mark.parametrize("thread_id", ["nope", "th_SHORT", "th_" + "a" * 27, "th_" + "1" * 26, "cv_" + "a" * 26])
def test_ids_of_the_wrong_shape(server, thread_id):
    response = server.get(f"/v1/threads/{thread_id}", headers=bearer(server.token()))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_id"


def test_unknown_route_and_method_are_json(server):
    response = server.get("/v1/nothing", headers=bearer(server.token()))
    assert response.status_code == 404 and response.json()["error"]["code"] == "route_not_found"
