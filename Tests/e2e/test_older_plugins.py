"""A plugin built against the previous header (1.1, kept in
Tests/PluginAPITests/headers/) loads into today's host and works: the host
reads its shorter structs at their own size, and it keeps getting what 1.1
promised, a 400's code inside the message, while a 1.2 plugin gets the code
as a field of its own."""
import json
import subprocess

import pytest
import requests

from conftest import ROOT, Server, bearer

HEADERS = ROOT / "Tests" / "PluginAPITests" / "headers"


@pytest.fixture(scope="module")
def old_plugin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oldplugin")
    (folder / "exports.map").write_text("{ global: northstar_plugin_v1; local: *; };\n")
    library = folder / "libOldMinorChat.so"
    subprocess.run(["cc", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Werror", "-shared", "-fPIC",
                    "-I", str(HEADERS / "1.1"), f"-Wl,--version-script={folder / 'exports.map'}",
                    "-o", str(library), str(ROOT / "Tests" / "e2e" / "plugins" / "old_minor_chat.c")], check=True)
    return library


def test_the_saved_header_is_the_previous_minor():
    text = (HEADERS / "1.1" / "northstar_plugin.h").read_text()
    assert "#define NS_ABI_MINOR 1\n" in text and "on_refused" not in text


def test_a_plugin_built_against_the_1_1_header_loads_and_works(data_dir, old_plugin):
    config = data_dir / "config.json"
    config.write_text(json.dumps({"plugins": [
        {"name": "jwt", "path": "libNorthstarJWT.so", "config": {
            "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
        {"name": "oldchat", "path": str(old_plugin), "config": {}},
        {"name": "sse", "path": "libNorthstarSSE.so", "config": {}}]}))
    inspected = subprocess.run([str(ROOT / ".build" / "debug" / "northstar"), "plugins", "inspect", "--json", str(old_plugin)],
                               capture_output=True, text=True)
    assert '"1.1"' in inspected.stdout, inspected.stdout + inspected.stderr
    server = Server(data_dir, config=config).start()
    try:
        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        for text in ("one", "two"):
            assert server.post(f"/v1/threads/{thread}/messages", json={"text": text}, headers=headers).status_code == 201
        first = server.get(f"/old/chat/{thread}?after=1", headers=headers)
        assert first.status_code == 200 and first.json()["seq"] == 2 and first.json()["data"]["text"] == "two"
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
        assert server.get("/healthz").status_code == 200
    finally:
        server.kill()
