"""A plugin built against each earlier header (1.0 to 1.4, kept in
Tests/PluginAPITests/headers/) loads into today's host and works: the host
reads its shorter structs at their own size, and it keeps getting what its
minor promised: a 400's code inside the message (a 1.2+ plugin that sets
`on_refused` gets the code as a field of its own), and every event through
`on_event`, live ones included (1.3 plugins that name their connection get
live events written by the host instead)."""
import json
import subprocess
import threading
import time

import pytest
import requests

from conftest import ROOT, Server, bearer

HEADERS = ROOT / "Tests" / "PluginAPITests" / "headers"


@pytest.fixture(scope="module", params=["1.0", "1.1", "1.2", "1.3", "1.4"])
def old_plugin(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"oldplugin{request.param}")
    (folder / "exports.map").write_text("{ global: northstar_plugin_v1; local: *; };\n")
    library = folder / "libOldMinorChat.so"
    subprocess.run(["cc", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Werror", "-shared", "-fPIC",
                    "-I", str(HEADERS / request.param), f"-Wl,--version-script={folder / 'exports.map'}",
                    "-o", str(library), str(ROOT / "Tests" / "e2e" / "plugins" / "old_minor_chat.c")], check=True)
    return library, request.param


CONNECTIONS_PER_USER = 8  # limits.max_connections_per_user on the node of the older plugin


def config_with(data_dir, name, library, limits=None):
    """The dev auth, the plugin under test and the sse plugin, with these `limits`."""
    config = data_dir / "config.json"
    config.write_text(json.dumps({"limits": limits or {}, "plugins": [
        {"name": "jwt", "path": "libNorthstarJWT.so", "config": {
            "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
        {"name": name, "path": str(library), "config": {}},
        {"name": "sse", "path": "libNorthstarSSE.so", "config": {}}]}))
    return config


def get_after_next_post(server, path, thread, headers):
    """GETs `path` (a plugin route that waits for the next live event), posts
    one message once the plugin is subscribed, and returns the answer."""
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(server.get(path, headers=headers)))
    waiting.start()
    deadline = time.monotonic() + 10
    while "northstar_live_subscribers 1" not in server.get("/metrics").text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.post(f"/v1/threads/{thread}/messages", json={"text": "live"}, headers=headers).status_code == 201
    waiting.join(timeout=10)
    assert answers, f"{path} did not answer"
    return answers[0]


def test_the_saved_headers_are_the_earlier_minors():
    # Their layouts are checked against abi-layout.json by ABILayoutTests.
    text = (HEADERS / "1.0" / "northstar_plugin.h").read_text()
    assert "#define NS_ABI_MINOR 0\n" in text and "http_fetch" not in text and "timer_start" not in text
    text = (HEADERS / "1.1" / "northstar_plugin.h").read_text()
    assert "#define NS_ABI_MINOR 1\n" in text and "on_refused" not in text
    text = (HEADERS / "1.2" / "northstar_plugin.h").read_text()
    assert "#define NS_ABI_MINOR 2\n" in text and "on_refused" in text and "frame_event" not in text
    text = (HEADERS / "1.3" / "northstar_plugin.h").read_text()
    assert "#define NS_ABI_MINOR 3\n" in text and "frame_event" in text and "on_live" not in text
    text = (HEADERS / "1.4" / "northstar_plugin.h").read_text()
    assert "#define NS_ABI_MINOR 4\n" in text and "on_live" in text and "NS_ERR_TENANT_LIMIT" not in text


def test_a_plugin_built_against_an_earlier_header_loads_and_works(data_dir, old_plugin):
    old_plugin, version = old_plugin
    config = config_with(data_dir, "oldchat", old_plugin, limits={"max_connections_per_user": CONNECTIONS_PER_USER})
    inspected = subprocess.run([str(ROOT / ".build" / "debug" / "northstar"), "plugins", "inspect", "--json", str(old_plugin)],
                               capture_output=True, text=True)
    assert f'"{version}"' in inspected.stdout, inspected.stdout + inspected.stderr
    server = Server(data_dir, config=config).start()
    try:
        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        for text in ("one", "two"):
            assert server.post(f"/v1/threads/{thread}/messages", json={"text": text}, headers=headers).status_code == 201
        first = server.get(f"/old/chat/{thread}?after=1", headers=headers)
        assert first.status_code == 200 and first.json()["seq"] == 2 and first.json()["data"]["text"] == "two", first.text
        # A live event (one committed after the subscribe) reaches it through on_event.
        live = get_after_next_post(server, f"/old/chat/{thread}?after=2", thread, headers)
        assert live.status_code == 200 and live.json()["seq"] == 3 and live.json()["data"]["text"] == "live", live.text
        # 1.1's contract for a refusal: the code inside a 400's message.
        refused = server.get(f"/old/chat/{thread}?after=99", headers=headers)
        assert refused.status_code == 400 and refused.text.startswith("invalid_after: "), refused.text
        other = bearer(server.token(tenant="t_other"))
        assert server.get(f"/old/chat/{thread}", headers=other).status_code == 404
        # The 1.2 sse plugin gets the code as a field and answers with it.
        modern = server.get(f"/sse/chat/{thread}", headers={**headers, "Last-Event-ID": "99"})
        assert modern.status_code == 400 and modern.json()["error"]["code"] == "invalid_after"
        assert "invalid_after:" not in modern.json()["error"]["message"]
        # Principals are handles the host looks up: a released or a made-up one is refused, not trusted.
        for misuse in ("released", "forged"):
            answer = server.get(f"/old/chat/{thread}?principal={misuse}", headers=headers)
            assert answer.status_code == 200 and answer.text == "status=1", (misuse, answer.text)  # NS_ERR_INVALID_ARGUMENT
        # Past the user's limit of connections, authenticate answers NS_ERR_TOO_LARGE, which a plugin
        # built before it answers as its own default refusal. This one never releases its principals,
        # so alice reaches the limit within CONNECTIONS_PER_USER more requests.
        answers = [server.get(f"/old/chat/{thread}?after=1", headers=headers) for _ in range(CONNECTIONS_PER_USER)]
        assert answers[0].status_code == 200 and answers[-1].status_code == 401, [a.status_code for a in answers]
        assert answers[-1].text.startswith("status=7 ") and "max_connections_per_user" in answers[-1].text, answers[-1].text
        assert server.get(f"/old/chat/{thread}?after=1", headers=bearer(server.token(user="bob"))).status_code == 200
        assert server.get("/healthz").status_code == 200
    finally:
        server.kill()


def test_a_plugin_of_an_earlier_minor_at_the_tenants_limit_gets_the_code_it_knows(data_dir, old_plugin):
    """NS_ERR_TENANT_LIMIT came with 1.5: a plugin built before it is given
    NS_ERR_TOO_LARGE, which it knows, with a message naming the tenant's
    limit; the 1.5 sse plugin answers 429 too_many_tenant_connections."""
    old_plugin, version = old_plugin
    config = config_with(data_dir, "oldchat", old_plugin, limits={"max_connections_per_tenant": 2})
    server = Server(data_dir, config=config).start()
    try:
        alice, bob, carol = (bearer(server.token(user=user)) for user in ("alice", "bob", "carol"))
        thread = server.post("/v1/threads", json={}, headers=alice).json()["thread_id"]
        assert server.post(f"/v1/threads/{thread}/messages", json={"text": "one"}, headers=alice).status_code == 201
        # This plugin never releases its principals: alice and bob hold the tenant's two.
        for headers in (alice, bob):
            assert server.get(f"/old/chat/{thread}?after=0", headers=headers).status_code == 200
        refused = server.get(f"/old/chat/{thread}?after=0", headers=carol)
        assert refused.status_code == 401 and refused.text.startswith("status=7 "), (version, refused.text)
        assert "max_connections_per_tenant" in refused.text
        modern = server.get(f"/sse/chat/{thread}", headers=carol)
        assert modern.status_code == 429 and modern.json()["error"]["code"] == "too_many_tenant_connections", modern.text
        # Another tenant holds none of them.
        other = bearer(server.token(tenant="t_other"))
        other_thread = server.post("/v1/threads", json={}, headers=other).json()["thread_id"]
        assert server.post(f"/v1/threads/{other_thread}/messages", json={"text": "x"}, headers=other).status_code == 201
        assert server.get(f"/old/chat/{other_thread}?after=0", headers=other).status_code == 200
    finally:
        server.kill()


def test_a_transport_whose_frame_event_refuses_ends_the_subscription_with_a_clear_reason(data_dir, tmp_path):
    """ABI 1.3's frame_event is the transport's: when it refuses an event,
    the subscriptions that needed it end with NS_ERR_INTERNAL naming the
    event, at the position before it, and nothing else breaks."""
    (tmp_path / "exports.map").write_text("{ global: northstar_plugin_v1; local: *; };\n")
    library = tmp_path / "libFramer.so"
    subprocess.run(["cc", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE", "-Wall", "-Werror", "-shared", "-fPIC",
                    "-I", str(ROOT / "Sources" / "PluginAPI" / "include"), f"-Wl,--version-script={tmp_path / 'exports.map'}",
                    "-o", str(library), str(ROOT / "Tests" / "e2e" / "plugins" / "refusing_framer.c")], check=True)
    config = config_with(data_dir, "framer", library)
    server = Server(data_dir, config=config).start()
    try:
        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        assert server.post(f"/v1/threads/{thread}/messages", json={"text": "before"}, headers=headers).status_code == 201
        answer = get_after_next_post(server, f"/framer/chat/{thread}?after=1", thread, headers)
        assert answer.status_code == 200, answer.text
        text = answer.text
        assert text.startswith("status=14 position=1 "), text  # NS_ERR_INTERNAL, resume after seq 1
        assert "could not frame event 2" in text and "frame_event" in text, text
        # The other transport on the same stream is untouched.
        assert server.get("/healthz").status_code == 200
        stream = server.get(f"/v1/threads/{thread}/events?after=0", headers=headers).json()
        assert [event["seq"] for event in stream["events"]] == [1, 2]
    finally:
        server.kill()
