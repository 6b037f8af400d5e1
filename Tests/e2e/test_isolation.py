"""Every route (threads, canvases, gestures, artifacts, media) against the
owner, another tenant, the same tenant in another env, no credential, an
expired one, a forged one, and a read-only scope."""
import pytest
import requests

from conftest import bearer, dev_claims, dev_secret, sign_hs

MISSING_THREAD = "th_" + "a" * 26
MISSING_CANVAS = "cv_" + "a" * 26
MISSING_GESTURE = "gs_" + "a" * 26
MISSING_ASSET = "as_" + "a" * 26


@pytest.fixture
def world(server):
    """Tenant t_alpha's thread and canvas, and every kind of caller."""
    owner = bearer(server.token(tenant="t_alpha"))
    thread = server.post("/v1/threads", json={}, headers=owner).json()["thread_id"]
    canvas = server.post("/v1/canvases", json={}, headers=owner).json()["canvas_id"]
    server.post(f"/v1/threads/{thread}/messages", json={"text": "secret"}, headers=owner)
    gesture = server.post(f"/v1/canvases/{canvas}/gestures", headers=owner).json()["gesture_id"]
    asset = server.post("/v1/artifacts?filename=secret.txt", data=b"secret", headers=owner).json()["asset_id"]
    assert requests.put(f"{server.url}/v1/media/private/plan.txt", data=b"secret", headers=owner, timeout=10).status_code == 201
    secret = dev_secret(server.data_dir)
    callers = {
        "owner": owner,
        "other_tenant": bearer(server.token(tenant="t_beta")),
        "other_env": bearer(server.token(tenant="t_alpha", env="staging")),
        "none": {},
        "expired": bearer(sign_hs(secret, dev_claims(exp=1_600_000_000, iat=1_599_990_000))),
        "forged": bearer(sign_hs(b"not-the-server-secret-" * 2, dev_claims())),
        "read_only": bearer(server.token(tenant="t_alpha", scopes="read")),
    }
    return server, {"thread": thread, "canvas": canvas, "gesture": gesture, "asset": asset}, callers


def routes(ids):
    """(method, path, body, writes) for every REST route on a resource."""
    thread, canvas, gesture, asset = ids["thread"], ids["canvas"], ids["gesture"], ids["asset"]
    command = {"command_id": "iso-1", "base_rev": 0, "ops": [{"op": "add", "path": "/x", "value": 1}]}
    sample = {"samples": [{"t_ms": 0, "x": 1, "y": 1, "pointer": 1, "phase": "down"}]}
    return [
        ("get", f"/v1/threads/{thread}", None, False),
        ("post", f"/v1/threads/{thread}/messages", {"text": "hi"}, True),
        ("get", f"/v1/threads/{thread}/events?after=0", None, False),
        ("get", f"/v1/canvases/{canvas}", None, False),
        ("get", f"/v1/canvases/{canvas}?rev=0", None, False),
        ("post", f"/v1/canvases/{canvas}/commands", command, True),
        ("get", f"/v1/canvases/{canvas}/revisions?after=0", None, False),
        ("get", f"/v1/canvases/{canvas}/events?after=0", None, False),
        ("get", f"/v1/canvases/{canvas}/gestures", None, False),
        ("get", f"/v1/canvases/{canvas}/gestures/{gesture}", None, False),
        ("post", f"/v1/canvases/{canvas}/gestures/{gesture}/samples", sample, True),
        ("get", f"/v1/artifacts/{asset}", None, False),
        ("get", f"/v1/artifacts/{asset}/secret.txt", None, False),
        ("get", "/v1/media/private/plan.txt", None, False),
    ]


def call(server, method, path, body, headers):
    return requests.request(method, server.url + path, json=body, headers=headers, timeout=10)


@pytest.mark.parametrize("caller", ["other_tenant", "other_env", "none", "expired", "forged", "read_only", "owner"])
def test_matrix(world, caller):
    server, ids, callers = world
    thread = ids["thread"]
    for method, path, body, writes in routes(ids):
        response = call(server, method, path, body, callers[caller])
        status = response.status_code
        if caller == "owner" or (caller == "read_only" and not writes):
            assert status in (200, 201), (caller, method, path, response.text)
        elif caller == "read_only":
            assert status == 403 and response.json()["error"]["code"] == "forbidden", (method, path)
        elif caller == "other_tenant":
            # Exactly the answer for an id that does not exist.
            missing = (path.replace(thread, MISSING_THREAD).replace(ids["canvas"], MISSING_CANVAS)
                       .replace(ids["gesture"], MISSING_GESTURE).replace(ids["asset"], MISSING_ASSET))
            if missing == path:  # a media path: another tenant's is simply not in this tenant's key space
                missing = path.replace("plan.txt", "no-such-plan.txt")
            expected = call(server, method, missing, body, callers[caller])
            assert status == 404 and response.json() == expected.json(), (method, path)
        else:
            assert status == 401, (caller, method, path, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
    # Nothing the refused callers sent was written.
    owner = callers["owner"]
    head = server.get(f"/v1/threads/{thread}", headers=owner).json()["head_seq"]
    assert head == (2 if caller == "owner" else 1)


def test_create_routes_refuse_unauthenticated_and_read_only(world):
    server, _, callers = world
    for path in ("/v1/threads", "/v1/canvases"):
        for caller in ("none", "expired", "forged", "other_env"):
            assert call(server, "post", path, {}, callers[caller]).status_code == 401
        assert call(server, "post", path, {}, callers["read_only"]).status_code == 403


def test_other_tenant_creates_in_its_own_tenant(world):
    server, ids, callers = world
    thread = ids["thread"]
    theirs = server.post("/v1/threads", json={}, headers=callers["other_tenant"]).json()["thread_id"]
    assert server.get(f"/v1/threads/{theirs}", headers=callers["owner"]).status_code == 404
    assert server.get(f"/v1/threads/{thread}", headers=callers["other_tenant"]).status_code == 404


def test_identity_never_comes_from_headers_or_query(world):
    server, ids, callers = world
    thread = ids["thread"]
    spoof = {**callers["other_tenant"], "X-Tenant-Id": "t_alpha", "X-User-Id": "alice"}
    assert server.get(f"/v1/threads/{thread}?tenant_id=t_alpha", headers=spoof).status_code == 404
    assert server.get(f"/v1/threads/{thread}?token=x", headers={"X-Tenant-Id": "t_alpha"}).status_code == 401
