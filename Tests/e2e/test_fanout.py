"""Fan-out through the sse plugin with the load tool: every subscriber gets
every event (bounded: 200 subscribers, 2 seconds)."""
import re
import subprocess

from conftest import BIN, bearer


def test_every_subscriber_gets_every_event(server):
    token = server.token()
    thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
    result = subprocess.run([str(BIN / "northstar-load"),
                             "--subscribe", f"{server.url}/sse/chat/{thread}",
                             "--publish", f"{server.url}/v1/threads/{thread}/messages",
                             "--header", f"Authorization: Bearer {token}",
                             "--subscribers", "200", "--rate", "20", "--seconds", "2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "200 connected, 0 failed" in result.stdout, result.stdout
    delivered = re.search(r"delivered: (\d+) of (\d+)", result.stdout)
    assert delivered and delivered.group(1) == delivered.group(2) == str(200 * 40), result.stdout
    assert server.get("/healthz").status_code == 200
