"""A real browser's EventSource and WebSocket against the sse and ws plugins:
headless Chromium loads a page from another origin, subscribes, and reports
what it saw."""
import json

import pytest

from browser_pages import PageSite, chromium
from conftest import Server, bearer

PAGE = """<!doctype html><meta charset="utf-8"><title>northstar sse</title><script>
const report = body => fetch('/report', {method: 'POST', body: JSON.stringify(body)});
const seen = [];
const source = new EventSource(%s);
source.onopen = () => report({open: true});
source.onerror = () => report({error: true, state: source.readyState});
source.addEventListener('chat.message', e => {
  const event = JSON.parse(e.data);
  seen.push({seq: event.seq, text: event.data.text, id: e.lastEventId, type: event.type});
  if (seen.length === 3) { report({events: seen}); source.close(); }
});
</script>"""

WS_PAGE = """<!doctype html><meta charset="utf-8"><title>northstar ws</title><script>
const report = body => fetch('/report', {method: 'POST', body: JSON.stringify(body)});
const [url, token, thread] = %s;
const seen = [];
// The browser cannot set headers on a WebSocket: the token rides in a subprotocol.
const socket = new WebSocket(url, ['northstar.v1', 'northstar.bearer.' + token]);
socket.onopen = () => {
  report({open: true, protocol: socket.protocol});
  socket.send(JSON.stringify({type: 'subscribe', id: 'sub', stream: 'chat:' + thread, after: 0}));
};
socket.onerror = () => report({error: true});
socket.onmessage = e => {
  const message = JSON.parse(e.data);
  if (message.type === 'subscribed') {
    socket.send(JSON.stringify({type: 'post', id: 'p1', thread_id: thread, message: {text: 'from the browser'}}));
  } else if (message.type === 'ack') {
    seen.push({ack: message.id, status: message.status});
  } else if (message.type === 'event') {
    seen.push({seq: message.event.seq, text: message.event.data.text});
  }
  if (seen.length === 4) { report({seen}); socket.close(); }
};
</script>"""


@pytest.fixture
def setup(data_dir):
    page = PageSite(data_dir)
    config = {"plugins": [
        {"name": "jwt", "path": "libNorthstarJWT.so",
         "config": {"dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
        {"name": "sse", "path": "libNorthstarSSE.so",
         "config": {"allow_query_token": True, "allowed_origins": [page.origin]}},
        {"name": "ws", "path": "libNorthstarWS.so", "config": {"allowed_origins": [page.origin]}}]}
    (data_dir / "config.json").write_text(json.dumps(config))
    server = Server(data_dir, config=data_dir / "config.json").start()
    yield server, page
    server.kill()
    page.httpd.shutdown()


def test_event_source_gets_replay_and_live_events(setup):
    server, page = setup
    token = server.token()
    thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
    server.post(f"/v1/threads/{thread}/messages", json={"text": "before"}, headers=bearer(token))
    page.pages['/'] = PAGE % json.dumps(f"{server.url}/sse/chat/{thread}?access_token={token}")
    browser = chromium(page.origin + "/")
    try:
        assert page.next_report() == {"open": True}
        for text in ("live-1", "live-2"):
            server.post(f"/v1/threads/{thread}/messages", json={"text": text}, headers=bearer(token))
        report = page.next_report()
        assert report == {"events": [
            {"seq": 1, "text": "before", "id": "1", "type": "chat.message"},
            {"seq": 2, "text": "live-1", "id": "2", "type": "chat.message"},
            {"seq": 3, "text": "live-2", "id": "3", "type": "chat.message"},
        ]}
    finally:
        browser.kill()


def test_a_page_from_another_origin_is_refused(setup):
    server, page = setup
    token = server.token()
    thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
    other = PageSite(server.data_dir)  # a different port: a different origin, not in allowed_origins
    other.pages['/'] = PAGE % json.dumps(f"{server.url}/sse/chat/{thread}?access_token={token}")
    browser = chromium(other.origin + "/")
    try:
        report = other.next_report()
        assert report.get("error") is True
    finally:
        browser.kill()
        other.httpd.shutdown()


def test_origin_allow_list_without_a_browser(setup):
    from sse_client import SSEStream
    server, page = setup
    token = server.token()
    thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
    allowed = SSEStream(server.port, f"/sse/chat/{thread}", {**bearer(token), "Origin": page.origin})
    assert allowed.status == 200 and allowed.headers["access-control-allow-origin"] == page.origin
    allowed.close()
    refused = SSEStream(server.port, f"/sse/chat/{thread}", {**bearer(token), "Origin": "http://evil.example"})
    assert refused.status == 403 and refused.error_body()["error"]["code"] == "origin_not_allowed"
    refused.close()


def test_browser_websocket_subscribes_posts_and_gets_live_events(setup):
    server, page = setup
    token = server.token()
    thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
    server.post(f"/v1/threads/{thread}/messages", json={"text": "before"}, headers=bearer(token))
    page.pages['/'] = WS_PAGE % json.dumps([f"ws://127.0.0.1:{server.port}/ws", token, thread])
    browser = chromium(page.origin + "/")
    try:
        assert page.next_report() == {"open": True, "protocol": "northstar.v1"}
        server.post(f"/v1/threads/{thread}/messages", json={"text": "from rest"}, headers=bearer(token))
        seen = page.next_report()["seen"]
        events = [item for item in seen if "seq" in item]
        assert {"ack": "p1", "status": 201} in seen
        assert [e["seq"] for e in events] == [1, 2, 3]
        assert events[0]["text"] == "before"
        assert sorted(e["text"] for e in events[1:]) == ["from rest", "from the browser"]
    finally:
        browser.kill()


def test_browser_websocket_from_another_origin_is_refused(setup):
    server, _ = setup
    token = server.token()
    thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
    other = PageSite(server.data_dir)  # not in the ws plugin's allowed_origins
    other.pages['/'] = WS_PAGE % json.dumps([f"ws://127.0.0.1:{server.port}/ws", token, thread])
    browser = chromium(other.origin + "/")
    try:
        assert other.next_report() == {"error": True}
    finally:
        browser.kill()
        other.httpd.shutdown()
