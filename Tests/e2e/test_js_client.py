"""The browser client (`clients/js/`) driven inside real pages by headless
Chromium, against a real server: pages of another origin load the module
from the server, so CORS, the transports' origin checks and the client's
resume, rebase and Graft paths are all exercised as an app would."""
import json
import re
import socket
import socketserver
import threading
import time

import pytest
import requests

from browser_pages import PageSite
from conftest import ROOT, Server, bearer, gauge, wait_for

ROOT_CLIENT = ROOT / "clients" / "js"


def site_config(data_dir, origin, ws=True, **extra):
    config = {
        "node": {"allowed_origins": [origin], "client_dir": str(ROOT_CLIENT)},
        "auth": {"chain": ["jwt"], "expiry_leeway_seconds": 0},
        "plugins": [
            {"name": "jwt", "path": "libNorthstarJWT.so",
             "config": {"dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}},
            {"name": "sse", "path": "libNorthstarSSE.so", "config": {"allow_query_token": True, "allowed_origins": [origin]}},
        ] + ([{"name": "ws", "path": "libNorthstarWS.so", "config": {"allowed_origins": [origin]}}] if ws else []),
    }
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value}
    path = data_dir / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def site(data_dir):
    site = PageSite(data_dir)
    yield site
    site.close()


def start(data_dir, site, **kwargs):
    server = Server(data_dir, config=site_config(data_dir, site.origin, **kwargs)).start()
    return server


def create(server, kind, token, body=None):
    answer = server.post(f"/v1/{kind}", json=body or {}, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()["thread_id" if kind == "threads" else "canvas_id"]


def post(server, token, thread, text, message_id=None):
    """Posts, retrying with the same client_message_id while the server is away."""
    body = {"text": text, "client_message_id": message_id or text}
    for _ in range(300):
        try:
            answer = requests.post(f"{server.url}/v1/threads/{thread}/messages", json=body, headers=bearer(token), timeout=5)
            if answer.status_code in (200, 201):
                return answer.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"could not post {text}")


# ---- connection, resume and credentials ------------------------------------------

FOLLOW_THREAD = """
const client = ns.connect({url: params.server, token, transports: params.transports});
const seqs = [];
const states = [];
client.onStateChange(({state, transport}) => states.push(state + '/' + transport));
client.subscribe('chat:' + params.thread, {
  after: 0,
  onEvent: event => {
    seqs.push(event.seq);
    if (seqs.length === params.expect) report('done', {seqs, states, tokens, transport: client.transport});
  },
  onError: error => report('page-error', {message: 'subscription: ' + error.code}),
});
await client.ready();
report('open', {transport: client.transport});
"""


def test_every_page_gets_every_event_once_in_order_across_a_sigkill(data_dir, site):
    server = start(data_dir, site)
    token = server.token()
    thread = create(server, "threads", token)
    total = 60
    for name in ("ws-page", "sse-page"):
        site.add(name, server.url, FOLLOW_THREAD, thread=thread, expect=total,
                 transports=["ws", "sse"] if name == "ws-page" else ["sse"])
        site.open(name)
    assert site.wait("ws-page", "open")["transport"] == "ws"
    assert site.wait("sse-page", "open")["transport"] == "sse"
    for index in range(1, 21):
        post(server, token, thread, f"m{index}")
    # SIGKILL mid-stream, then the same address again: the pages resume from their last seq.
    server.listen = f"127.0.0.1:{server.port}"
    server.kill()
    stop = threading.Event()

    def keep_posting():
        for index in range(21, total + 1):
            post(server, token, thread, f"m{index}")
            time.sleep(0.02)
        stop.set()

    poster = threading.Thread(target=keep_posting)
    poster.start()
    time.sleep(0.5)
    server.start()
    poster.join(timeout=60)
    assert stop.is_set()
    for name in ("ws-page", "sse-page"):
        done = site.wait(name, "done", timeout=60)
        assert done["seqs"] == list(range(1, total + 1)), name
        assert any(state.startswith("reconnecting") for state in done["states"]), done["states"]
    server.kill()


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_a_token_that_expires_mid_session_is_refreshed_without_losing_events(data_dir, site, transport):
    server = start(data_dir, site)
    token = server.token()
    thread = create(server, "threads", token)
    total = 40
    site.add("page", server.url, FOLLOW_THREAD, thread=thread, expect=total, transports=[transport], token={"ttl": 3})
    site.open("page")
    site.wait("page", "open")
    for index in range(1, total + 1):
        post(server, token, thread, f"m{index}")
        time.sleep(0.2)  # 8 s: two and more lifetimes of a 3 s token
    done = site.wait("page", "done", timeout=30)
    assert done["seqs"] == list(range(1, total + 1))
    assert done["tokens"] >= 3, done
    assert not any(state.startswith("closed") for state in done["states"]), done["states"]
    server.kill()


GAP_PAGE = """
const client = ns.connect({url: params.server, token, transports: params.transports});
const seqs = [];
let gap = null;
client.subscribe('chat:' + params.thread, {
  after: 2,
  onGap: g => { gap = g; },
  onEvent: event => {
    seqs.push(event.seq);
    if (event.seq === 20) report('done', {gap, seqs});
  },
});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_a_gap_from_retention_reaches_the_gap_callback(data_dir, site, transport):
    server = start(data_dir, site, store={"retain_events_per_stream": 5})
    token = server.token()
    thread = create(server, "threads", token)
    for index in range(1, 21):
        post(server, token, thread, f"m{index}")
    site.add("page", server.url, GAP_PAGE, thread=thread, transports=[transport])
    site.open("page")
    done = site.wait("page", "done")
    assert done["gap"] == {"stream": f"chat:{thread}", "requestedAfter": 2, "firstSeq": 16,
                           "refetch": f"/v1/threads/{thread}"}
    assert done["seqs"] == [16, 17, 18, 19, 20]
    server.kill()


FALLBACK_PAGE = """
const client = ns.connect({url: params.server, token});
const thread = new ns.Thread(client, params.thread, {
  onChange: messages => {
    if (messages.length === 3 && messages.every(m => !m.pending))
      report('done', {transport: client.transport, reason: client.reason?.code ?? null,
                      messages: messages.map(m => ({seq: m.seq, text: m.text, pending: m.pending}))});
  },
});
await client.ready();
await thread.post('from the page', {clientMessageId: 'page-1'});
const canvas = new ns.Canvas(client, params.canvas);
await canvas.ready;
const result = await canvas.command([{op: 'add', path: '/from', value: 'sse'}]);
report('command', {result, document: canvas.document});
"""


def test_with_websocket_refused_the_sse_fallback_delivers_and_writes_over_rest(data_dir, site):
    server = start(data_dir, site, ws=False)  # no ws plugin: /ws is refused
    token = server.token()
    thread = create(server, "threads", token)
    canvas = create(server, "canvases", token)
    post(server, token, thread, "before")
    site.add("page", server.url, FALLBACK_PAGE, thread=thread, canvas=canvas)
    site.open("page")
    command = site.wait("page", "command")
    assert command["result"] == {"rev": 1, "replayed": False}
    assert command["document"] == {"from": "sse"}
    post(server, token, thread, "after")
    done = site.wait("page", "done")
    assert done["transport"] == "sse"
    assert [m["text"] for m in done["messages"]] == ["before", "from the page", "after"]
    assert [m["seq"] for m in done["messages"]] == [1, 2, 3]
    server.kill()


class WebSocketRefusingFront:
    """A TCP front to the server, as a proxy would be: it answers the first
    `refuse` WebSocket handshakes 503 itself (a passing hiccup of the proxy)
    and passes every other connection through to the server, byte for byte."""

    def __init__(self, server_port, refuse):
        self.refusals_left = refuse
        lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                if b"\r\nupgrade: websocket" in head.lower():
                    with lock:
                        refuse, outer.refusals_left = outer.refusals_left > 0, outer.refusals_left - 1
                    if refuse:
                        self.request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        return
                with socket.create_connection(("127.0.0.1", server_port)) as upstream:
                    upstream.sendall(head)
                    back = threading.Thread(target=pipe, args=(upstream, self.request), daemon=True)
                    back.start()
                    pipe(self.request, upstream)
                    back.join(timeout=10)

        def pipe(source, target):
            try:
                while data := source.recv(65536):
                    target.sendall(data)
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.tcp.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.tcp.server_address[1]}"

    def close(self):
        self.tcp.shutdown()
        self.tcp.server_close()


THROUGH_A_FRONT_PAGE = """
await flag('go');
const client = ns.connect({url: params.front, token});
const reasons = [];
client.onStateChange(({reason}) => { if (reason) reasons.push(reason.code); });
client.subscribe('chat:' + params.thread, {
  after: 0,
  onEvent: event => report('event', {seq: event.seq, transport: client.transport, reasons}),
  onError: error => report('page-error', {message: 'subscription: ' + error.code}),
});
"""


def test_a_probe_refused_for_the_read_rate_is_not_taken_for_a_server_without_websocket(data_dir, site):
    # The client learns why a WebSocket did not open from a REST probe. Here the
    # first two handshakes fail at a front and every probe meets the user's read
    # rate: the client backs off and tries WebSocket again, where it used to
    # count each probe's 429 as a refusal of WebSocket and fall back to SSE.
    server = start(data_dir, site, limits={"reads_per_second_per_user": 1})
    token = server.token()
    thread = create(server, "threads", token)
    post(server, token, thread, "m1")
    front = WebSocketRefusingFront(server.port, refuse=2)
    stop = threading.Event()

    def read_every_token_as_it_comes():  # alice's other tab: it keeps her read rate spent
        while not stop.is_set():
            requests.get(f"{server.url}/v1/threads/{thread}", headers=bearer(token), timeout=10)

    reader = threading.Thread(target=read_every_token_as_it_comes)
    reader.start()
    try:
        site.add("page", server.url, THROUGH_A_FRONT_PAGE, front=front.url, thread=thread)
        site.open("page")
        time.sleep(0.5)  # the burst is spent by now
        site.flags.add("go")
        event = site.wait("page", "event", timeout=40)
    finally:
        stop.set()
        reader.join(timeout=10)
        front.close()
    assert event["seq"] == 1
    assert event["transport"] == "ws", event
    assert "rate_limited" in event["reasons"]  # the probe's own refusal is the reason given while backing off
    assert front.refusals_left < 0  # the third handshake went through the front
    server.kill()


# ---- canvas: concurrent commands converge; what cannot apply is reported ---------------

EDITOR_PAGE = """
const client = ns.connect({url: params.server, token});
const canvas = new ns.Canvas(client, params.canvas);
await canvas.ready;
report('ready', {rev: canvas.rev});
await flag('go');
// Each command is an intent: run again against the new head after a conflict.
const results = await Promise.all(Array.from({length: params.count}, (_, i) =>
  canvas.command(doc => [
    {op: 'replace', path: '/count', value: doc.count + 1},
    {op: 'add', path: '/items/-', value: params.label + '-' + i},
  ])));
while (canvas.rev < params.finalRev) await new Promise(r => setTimeout(r, 20));
report('done', {document: canvas.document, view: canvas.view, rev: canvas.rev, pending: canvas.pending.length,
                revs: results.map(r => r.rev)});
"""


def test_two_pages_editing_one_canvas_with_conflicting_commands_converge(data_dir, site):
    server = start(data_dir, site)
    token = server.token()
    canvas = create(server, "canvases", token)
    seed = {"command_id": "seed", "base_rev": 0,
            "ops": [{"op": "add", "path": "/count", "value": 0}, {"op": "add", "path": "/items", "value": []}]}
    assert server.post(f"/v1/canvases/{canvas}/commands", json=seed, headers=bearer(token)).status_code == 201
    count = 12
    for name in ("left", "right"):
        site.add(name, server.url, EDITOR_PAGE, canvas=canvas, label=name, count=count, finalRev=1 + 2 * count)
        site.open(name)
    site.wait("left", "ready")
    site.wait("right", "ready")
    site.flags.add("go")
    documents = [site.wait(name, "done", timeout=60) for name in ("left", "right")]
    head = server.get(f"/v1/canvases/{canvas}", headers=bearer(token)).json()
    assert head["rev"] == 1 + 2 * count
    assert head["document"]["count"] == 2 * count  # every increment kept: each rebased on the others
    assert sorted(head["document"]["items"]) == sorted(f"{n}-{i}" for n in ("left", "right") for i in range(count))
    for done in documents:
        assert done["document"] == head["document"] and done["view"] == head["document"] and done["pending"] == 0
        assert len(set(done["revs"])) == count
    conflicts = server.get("/metrics").text
    assert 'northstar_conflicts_total{code="rev_conflict"}' in conflicts  # they did collide
    server.kill()


REJECT_PAGE = """
const client = ns.connect({url: params.server, token});
const rejected = [];
const canvas = new ns.Canvas(client, params.canvas, {onRejected: r => rejected.push({id: r.commandId, code: r.error.code})});
await canvas.ready;
canvas.close();  // stop following: the next commands are made on a revision the server has left behind
report('ready', {rev: canvas.rev});
await flag('go');
await new Promise(r => setTimeout(r, 300));
const outcomes = await Promise.allSettled([
  // Plain ops whose `test` no longer holds at the new head: cannot apply.
  canvas.command([{op: 'test', path: '/count', value: 0}, {op: 'replace', path: '/count', value: 1}], {commandId: 'stale'}),
  // An intent: run again on the new head, it applies.
  canvas.command(doc => [{op: 'replace', path: '/count', value: doc.count * 10}], {commandId: 'intent'}),
]);
report('done', {outcomes: outcomes.map(o => o.status === 'fulfilled' ? o.value : {code: o.reason.code, name: o.reason.name}),
                rejected, document: canvas.document, rev: canvas.rev});
try {
  await canvas.command([{op: 'remove', path: '/missing'}]);
} catch (error) {
  report('refused', {code: error.code, name: error.name});
}
const past = await canvas.readRevision(1);
report('past', past);
try { await canvas.readRevision(99); } catch (error) { report('no-such-rev', {code: error.code, status: error.status}); }
"""


def test_a_command_that_cannot_apply_after_a_rebase_is_reported_and_an_intent_is_rebased(data_dir, site):
    server = start(data_dir, site)
    token = server.token()
    canvas = create(server, "canvases", token)
    seed = {"command_id": "seed", "base_rev": 0, "ops": [{"op": "add", "path": "/count", "value": 0}]}
    assert server.post(f"/v1/canvases/{canvas}/commands", json=seed, headers=bearer(token)).status_code == 201
    site.add("page", server.url, REJECT_PAGE, canvas=canvas)
    site.open("page")
    assert site.wait("page", "ready")["rev"] == 1
    other = {"command_id": "other", "base_rev": 1, "ops": [{"op": "replace", "path": "/count", "value": 5}]}
    assert server.post(f"/v1/canvases/{canvas}/commands", json=other, headers=bearer(token)).status_code == 201
    site.flags.add("go")
    done = site.wait("page", "done")
    assert done["outcomes"] == [{"code": "command_cannot_apply", "name": "NorthstarError"}, {"rev": 3, "replayed": False}]
    assert done["rejected"] == [{"id": "stale", "code": "command_cannot_apply"}]
    assert done["document"] == {"count": 50} and done["rev"] == 3
    # A change that does not apply even locally is refused before it is sent.
    assert site.wait("page", "refused") == {"page": "page", "kind": "refused", "code": "patch_failed", "name": "NorthstarError"}
    assert site.wait("page", "past")["document"] == {"count": 0}
    assert site.wait("page", "no-such-rev") == {"page": "page", "kind": "no-such-rev", "code": "revision_not_found", "status": 404}
    assert server.get(f"/v1/canvases/{canvas}", headers=bearer(token)).json()["document"] == {"count": 50}
    server.kill()


# ---- Graft: capture in one page, live ink in another, replay at speed 2 -----------------

DRAW_PAGE = """
const client = ns.connect({url: params.server, token});
await client.ready();
const pad = document.getElementById('pad');
let ended = null;
const capture = new ns.GestureCapture(client, params.canvas, pad, {batchMs: 30, maxBatchSamples: 8, onEnd: g => { ended = g; }});
await flag('draw');
const sleep = ms => new Promise(r => setTimeout(r, ms));
const fire = (type, pointerId, x, y, extra = {}) => pad.dispatchEvent(new PointerEvent(type, {
  pointerId, clientX: x, clientY: y, pressure: 0.25 + pointerId / 10, tiltX: 10 * pointerId, tiltY: -5,
  pointerType: 'pen', button: type === 'pointerdown' ? 0 : -1, bubbles: true, ...extra}));
fire('pointerdown', 1, 10, 10);
for (let i = 1; i <= 20; i++) {
  await sleep(25);
  fire('pointermove', 1, 10 + i * 5, 10 + i * 2);
  if (i === 5) fire('pointerdown', 2, 200, 100);           // a second finger joins
  if (i > 5 && i <= 15) fire('pointermove', 2, 200 - i, 100 + i);
  if (i === 15) fire('pointerup', 2, 185, 115);
}
fire('pointermove', 3, 5, 5);                               // hovering: not a sample
fire('pointerup', 1, 110, 50);
while (!ended) await sleep(20);
report('drawn', {gesture: ended});
"""

WATCH_PAGE = """
const client = ns.connect({url: params.server, token});
const ink = [];
let gestureId = null;
const canvas = new ns.Canvas(client, params.canvas, {onInk: i => {
  if (i.type === 'samples') ink.push(...i.samples);
  if (i.type === 'ended') { gestureId = i.gestureId; report('ink', {samples: ink, gestureId}); }
}});
await canvas.ready;
report('watching');
await flag('replay');
const arrivals = [];
const player = new ns.ReplayPlayer(client, gestureId, {speed: 2,
  onSample: sample => arrivals.push({t_ms: sample.t_ms, at: performance.now()}),
  onEnd: end => report('replayed', {arrivals, code: end.code, state: player.state})});
player.play();
"""


def test_a_gesture_drawn_in_one_page_appears_live_in_another_and_replays_at_speed_2(data_dir, site):
    server = start(data_dir, site)
    token = server.token()
    canvas = create(server, "canvases", token)
    site.add("draw", server.url, DRAW_PAGE, canvas=canvas)
    site.add("watch", server.url, WATCH_PAGE, canvas=canvas)
    site.open("watch")
    site.wait("watch", "watching")
    site.open("draw")
    site.flags.add("draw")
    gesture = site.wait("draw", "drawn")["gesture"]
    ink = site.wait("watch", "ink")
    samples = ink["samples"]
    assert ink["gestureId"] == gesture["gesture_id"] and gesture["state"] == "ended"
    assert len(samples) == gesture["sample_count"] == 1 + 20 + 1 + 10 + 1 + 1
    assert gesture["pointer_count"] == 2
    phases = [(s["pointer"], s["phase"]) for s in samples]
    assert phases[0] == (1, "down") and phases[-1] == (1, "up") and (2, "down") in phases and (2, "up") in phases
    assert all(s["pointer"] in (1, 2) for s in samples)  # the hovering pointer drew nothing
    first = samples[0]
    assert first["pressure"] == pytest.approx(0.35) and first["tilt_x"] == 10 and first["tilt_y"] == -5 and first["button"] == 0
    assert (first["x"], first["y"]) == (10, 10)
    stored = server.get(f"/v1/canvases/{canvas}/events?after=0", headers=bearer(token)).json()["events"]
    assert [e["type"] for e in stored][0] == "gesture.started" and stored[-1]["type"] == "gesture.ended"
    site.flags.add("replay")
    replayed = site.wait("watch", "replayed", timeout=30)
    assert replayed["code"] == "complete" and replayed["state"] == "ended"
    arrivals = replayed["arrivals"]
    assert [a["t_ms"] for a in arrivals] == [s["t_ms"] for s in samples]
    # At speed 2 each sample comes (t_ms - t0) / 2 after the first, within what a shared machine's clock allows.
    start_at, start_t = arrivals[0]["at"], arrivals[0]["t_ms"]
    for arrival in arrivals:
        expected = (arrival["t_ms"] - start_t) / 2
        assert abs((arrival["at"] - start_at) - expected) < 60, (arrival, expected)
    span = arrivals[-1]["t_ms"] - start_t
    assert span > 400  # the drawing took about 500 ms: the check above was not vacuous
    server.kill()


# ---- errors and isolation: typed errors with the server's codes ------------------------

BAD_CREDENTIAL_PAGE = """
const client = ns.connect({url: params.server, token, transports: params.transports});
client.onStateChange(({state, reason}) => {
  if (state === 'reconnecting' && reason?.code === 'unauthorized') {
    report('refused', {code: reason.code, name: reason.name, tokens, state});
    client.close();
  }
  if (state === 'open') report('page-error', {message: 'opened with a bad credential'});
});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
@pytest.mark.parametrize("credential", [{"ttl": -30}, {"forged": 1}, {"env": "prod"}], ids=["expired", "forged", "other-env"])
def test_a_bad_credential_is_reported_and_retried_with_a_fresh_one(data_dir, site, transport, credential):
    server = start(data_dir, site)
    site.add("page", server.url, BAD_CREDENTIAL_PAGE, transports=[transport], token=credential)
    site.open("page")
    refused = site.wait("page", "refused")
    assert refused["code"] == "unauthorized" and refused["name"] == "NorthstarError"
    assert refused["tokens"] >= 2  # the token function was asked again, not the same credential replayed
    server.kill()


AT_THE_USER_LIMIT_PAGE = """
const client = ns.connect({url: params.server, token, transports: params.transports, backoffMaxMs: 1000});
const reasons = [];
client.onStateChange(({state, reason}) => {
  if (reason) reasons.push(reason.code);
  if (state === 'reconnecting' && reason?.code === params.code && reasons.indexOf(reason.code) === reasons.length - 1) {
    report('limited', {status: reason.status, message: reason.message, transport: client.transport});
  }
});
client.subscribe('chat:' + params.thread, {
  after: 0,
  onEvent: event => report('event', {seq: event.seq, transport: client.transport, reasons}),
  onError: error => report('page-error', {message: 'subscription: ' + error.code}),
});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
@pytest.mark.parametrize("limit", ["user", "tenant"])
def test_a_user_at_the_connection_limit_is_told_so_and_connects_once_another_closes(data_dir, site, transport, limit):
    server = start(data_dir, site, limits={f"max_connections_per_{limit}": 2})
    token = server.token()
    thread = create(server, "threads", token)
    # Two other connections: every place the node gives alice (or, for the tenant's limit, alice's tenant, held by bob).
    holder = token if limit == "user" else server.token(user="bob")
    held = [requests.get(f"{server.url}/sse/chat/{thread}", headers=bearer(holder), stream=True, timeout=10) for _ in range(2)]
    assert [answer.status_code for answer in held] == [200, 200]
    site.add("page", server.url, AT_THE_USER_LIMIT_PAGE, transports=[transport], thread=thread,
             code=f"too_many_{limit}_connections")
    site.open("page")
    limited = site.wait("page", "limited")
    # Said why, with the server's code, and still on the transport it asked for: no fallback to SSE.
    assert limited["status"] == 429 and f"max_connections_per_{limit}" in limited["message"]
    assert limited["transport"] == transport
    for answer in held:
        answer.close()
    post(server, token, thread, "once a place is free", message_id="m1")
    event = site.wait("page", "event")
    assert event["seq"] == 1 and event["transport"] == transport
    assert "websocket_refused" not in event["reasons"]  # the refusal was read as the limit, never as a server without WebSocket
    server.kill()


ISOLATION_PAGE = """
const client = ns.connect({url: params.server, token, transports: params.transports});
await client.ready();
const outcome = async promise => {
  try { await promise; return 'accepted'; } catch (error) { return {code: error.code, status: error.status, name: error.name, requestId: error.requestId}; }
};
const ended = new Promise(resolve => client.subscribe('chat:' + params.thread, {onError: e => resolve({code: e.code, status: e.status})}));
report('done', {
  post: await outcome(client.call('chat.post', {threadId: params.thread}, {text: 'hi'})),
  command: await outcome(client.call('canvas.command', {canvasId: params.canvas}, {command_id: 'x', base_rev: 0, ops: [{op: 'add', path: '/x', value: 1}]})),
  read: await outcome(client.rest('GET', '/v1/canvases/' + params.canvas)),
  subscribe: await ended,
  badBody: await outcome(client.call('chat.post', {threadId: params.own}, {text: 5})),
  badStream: await outcome(Promise.resolve().then(() => client.subscribe('nope'))),
});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_another_tenants_ids_are_not_found_and_errors_carry_the_servers_code(data_dir, site, transport):
    server = start(data_dir, site)
    other = server.token(tenant="t_beta", user="mallory")
    thread = create(server, "threads", other)
    canvas = create(server, "canvases", other)
    own = create(server, "threads", server.token())
    site.add("page", server.url, ISOLATION_PAGE, transports=[transport], thread=thread, canvas=canvas, own=own)
    site.open("page")
    done = site.wait("page", "done")
    # A REST answer's error names its request (CORS exposes x-request-id); the client's own errors name none.
    assert re.fullmatch(r"req_[0-9a-f]{24}", done["read"].pop("requestId"))
    assert done["badStream"].pop("requestId") is None
    for outcome in ("post", "command", "badBody"):
        request_id = done[outcome].pop("requestId")
        assert request_id is None if transport == "ws" else re.fullmatch(r"req_[0-9a-f]{24}", request_id), (outcome, request_id)
    not_found = {"code": "not_found", "status": 404, "name": "NorthstarError"}
    assert done["post"] == not_found and done["command"] == not_found and done["read"] == not_found
    assert done["subscribe"]["code"] == "not_found"
    assert done["badBody"]["code"] == "invalid_field" and done["badBody"]["status"] == 400
    assert done["badStream"] == {"code": "invalid_stream", "status": None, "name": "NorthstarError"}
    assert server.get(f"/v1/threads/{thread}/events?after=0", headers=bearer(other)).json()["events"] == []
    server.kill()


# ---- the demo page ---------------------------------------------------------------------

def test_the_demo_page_draws_the_canvas_it_is_given(data_dir, tmp_path):
    from browser_pages import chromium
    from png_pixels import bounding_box, read_png
    # The embedded default, started where ./scripts/run starts it: it serves /demo from clients/js.
    server = Server(data_dir, cwd=ROOT).start()
    token = server.token()
    thread = create(server, "threads", token)
    canvas = create(server, "canvases", token)
    post(server, token, thread, "hello from the test", message_id="demo-1")
    strokes = [{"points": [[50, 60], [350, 60]], "colour": "#dc2828", "width": 10},
               {"points": [[100, 200], [100, 320]], "colour": "#2828dc", "width": 10}]
    command = {"command_id": "strokes", "base_rev": 0, "ops": [{"op": "add", "path": "/strokes", "value": strokes}]}
    assert server.post(f"/v1/canvases/{canvas}/commands", json=command, headers=bearer(token)).status_code == 201
    assert server.get("/demo").headers["content-type"].startswith("text/html")
    # The README tells newcomers to open the demo this way: the address this test opens.
    assert 'echo "http://127.0.0.1:8080/demo#token=$(.build/debug/northstar token' in (ROOT / "README.md").read_text()
    shot = tmp_path / "demo.png"
    browser = chromium(f"{server.url}/demo#token={token}&thread={thread}&canvas={canvas}",
                       f"--screenshot={shot}", "--window-size=1200,800", "--force-device-scale-factor=1",
                       "--virtual-time-budget=10000", "--hide-scrollbars")
    browser.wait(timeout=60)
    width, height, rows = read_png(shot)
    assert (width, height) == (1200, 800)
    (red_left, red_top, red_right, red_bottom), red = bounding_box(rows, (0xdc, 0x28, 0x28))
    (blue_left, blue_top, blue_right, blue_bottom), blue = bounding_box(rows, (0x28, 0x28, 0xdc))
    assert red > 2000 and blue > 800, (red, blue)
    # Where and how big, relative to each other: the strokes as given, wherever the canvas sits.
    assert abs((red_right - red_left) - 310) <= 4 and abs((red_bottom - red_top) - 10) <= 4
    assert abs((blue_bottom - blue_top) - 130) <= 4 and abs((blue_right - blue_left) - 10) <= 4
    assert abs((blue_left - red_left) - 50) <= 4 and abs((blue_top - red_top) - 140) <= 4
    server.kill()


# ---- reconnects: a draining server, writes made while the server is away -------------------

RESTART_PAGE = """
const client = ns.connect({url: params.server, token, transports: params.transports, backoffBaseMs: 400});
const changes = [];
client.onStateChange(({state, reason}) => changes.push({state, code: reason?.code ?? null, at: performance.now()}));
const seqs = [];
const thread = new ns.Thread(client, params.thread, {onMessage: m => seqs.push(m.seq)});
const canvas = new ns.Canvas(client, params.canvas);
await canvas.ready;
report('ready');
await flag('down');
// Made while the server is away: they wait, then go once it is back.
const posted = thread.post('while away', {clientMessageId: 'away-1'});
const committed = canvas.command([{op: 'add', path: '/while', value: 'away'}], {commandId: 'away-c'});
const [message, command] = await Promise.all([posted, committed]);
report('written');
await flag('check');
// The stream may still be reopening after the restart: wait for the message posted since.
for (let i = 0; i < 400 && thread.messages.length < 2; i++) await new Promise(r => setTimeout(r, 50));
report('done', {changes, seqs, message: {seq: message.seq, pending: message.pending}, command,
                document: canvas.document, count: thread.messages.length});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_writes_made_while_the_server_is_away_go_once_it_is_back(data_dir, site, transport):
    server = start(data_dir, site)
    token = server.token()
    thread = create(server, "threads", token)
    canvas = create(server, "canvases", token)
    site.add("page", server.url, RESTART_PAGE, thread=thread, canvas=canvas, transports=[transport])
    site.open("page")
    site.wait("page", "ready")
    server.listen = f"127.0.0.1:{server.port}"
    server.kill()
    site.flags.add("down")
    time.sleep(1.5)
    server.start()
    site.wait("page", "written", timeout=60)
    post(server, token, thread, "after")
    site.flags.add("check")
    done = site.wait("page", "done", timeout=60)
    assert done["message"] == {"seq": 1, "pending": False} and done["command"] == {"rev": 1, "replayed": False}
    assert done["document"] == {"while": "away"}
    events = server.get(f"/v1/threads/{thread}/events?after=0", headers=bearer(token)).json()["events"]
    assert [e["data"]["text"] for e in events] == ["while away", "after"]  # stored once
    assert done["count"] == 2 and done["seqs"] == [1, 2]  # its own message once, reconciled with its event
    states = [c["state"] for c in done["changes"]]
    assert "reconnecting" in states and states[-1] == "open"
    server.kill()


DRAIN_PAGE = """
const client = ns.connect({url: params.server, token, backoffBaseMs: 6000});
const changes = [];
client.onStateChange(({state, reason}) => changes.push({state, code: reason?.code ?? null, at: performance.now()}));
await client.ready();
report('open');
// Open, then closed by the drain, then open again.
while (!(changes.length >= 3 && client.state === 'open')) await new Promise(r => setTimeout(r, 50));
report('done', {changes});
"""


def test_a_draining_server_is_reconnected_to_without_the_backoff_penalty(data_dir, site):
    server = start(data_dir, site)
    site.add("page", server.url, DRAIN_PAGE)
    site.open("page")
    site.wait("page", "open")
    server.listen = f"127.0.0.1:{server.port}"
    server.stop()  # SIGTERM: sockets close with 1001, which the browser must see
    server.start()
    changes = site.wait("page", "done", timeout=40)["changes"]
    closed = next(c for c in changes if c["state"] == "reconnecting")
    assert closed["code"] == "closed_1001"
    assert changes[-1]["state"] == "open"
    # The first retry after a 1001 comes within half the base delay (3 s of 6 s),
    # where an ordinary retry would wait anywhere up to the whole 6 s.
    after = changes[changes.index(closed) + 1]
    assert after["at"] - closed["at"] < 3500, changes
    server.kill()


# ---- the replay player: pause, resume, seek and speed ----------------------------------

PLAYER_PAGE = """
const client = ns.connect({url: params.server, token, transports: params.transports});
const played = [];
let player;
const ended = new Promise(resolve => {
  player = new ns.ReplayPlayer(client, params.gesture, {speed: 4,
    onSample: sample => played.push(sample.t_ms), onEnd: resolve});
});
player.play();
while (played.length < 3) await new Promise(r => setTimeout(r, 5));
await player.pause();
const atPause = played.length;
await new Promise(r => setTimeout(r, 400));
const duringPause = played.length - atPause;
await player.play();
await ended;
const whole = [...played];
played.length = 0;
const again = new Promise(resolve => { player.options.onEnd = resolve; });
player.seek(700);
await again;
const fromSeek = [...played];
let error = null;
try { player.setSpeed(99); } catch (e) { error = e.code; }
report('done', {whole, atPause, duringPause, fromSeek, error, state: player.state});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_the_replay_player_pauses_resumes_and_seeks_without_losing_a_sample(data_dir, site, transport):
    server = start(data_dir, site)
    token = server.token()
    canvas = create(server, "canvases", token)
    gesture = server.post(f"/v1/canvases/{canvas}/gestures", headers=bearer(token)).json()["gesture_id"]
    samples = [{"t_ms": t, "x": t / 10, "y": 1, "pointer": 1, "phase": "down" if t == 0 else "up" if t == 1000 else "move"}
               for t in range(0, 1001, 100)]
    base = f"/v1/canvases/{canvas}/gestures/{gesture}"
    assert server.post(base + "/samples", json={"samples": samples}, headers=bearer(token)).status_code == 200
    assert server.post(base + "/end", headers=bearer(token)).status_code == 200
    site.add("page", server.url, PLAYER_PAGE, gesture=gesture, transports=[transport])
    site.open("page")
    done = site.wait("page", "done")
    assert done["whole"] == [s["t_ms"] for s in samples]  # every sample once, in order, across the pause
    assert done["atPause"] >= 3 and done["duringPause"] == 0
    assert done["fromSeek"] == [700, 800, 900, 1000]
    assert done["error"] == "invalid_speed" and done["state"] == "ended"
    server.kill()


UNSUBSCRIBE_PAGE = """
const client = ns.connect({url: params.server, token, transports: [params.transport]});
const seqs = [];
const subscription = client.subscribe('chat:' + params.thread, {onEvent: event => {
  seqs.push(event.seq);
  if (event.seq === 1) { subscription.unsubscribe(); report('unsubscribed'); }
}});
await flag('check');
report('done', {seqs, closed: subscription.closed});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_unsubscribing_stops_the_stream_on_the_server_too(data_dir, site, transport):
    server = start(data_dir, site)
    token = server.token()
    thread = create(server, "threads", token)
    site.add("page", server.url, UNSUBSCRIBE_PAGE, thread=thread, transport=transport)
    site.open("page")
    post(server, token, thread, "one")
    site.wait("page", "unsubscribed")
    for text in ("two", "three"):
        post(server, token, thread, text)
    deadline = time.monotonic() + 10
    while "northstar_live_subscribers 0.0" not in server.get("/metrics").text:
        assert time.monotonic() < deadline, "the server still holds the subscription"
        time.sleep(0.1)
    site.flags.add("check")
    assert site.wait("page", "done") == {"page": "page", "kind": "done", "seqs": [1], "closed": True}
    server.kill()


RATE_LIMITED_PAGE = """
const client = ns.connect({url: params.server, token, transports: params.transports});
await client.ready();
const thread = new ns.Thread(client, params.thread);
const started = performance.now();
// More than the node's burst at once: the ones refused for the rate wait and go again.
const posts = [];
for (let i = 0; i < params.count; i++) posts.push(thread.post(`m${i}`));
const outcomes = await Promise.allSettled(posts);
// A gesture start has no idempotency key; refused for the rate, nothing was stored, so it goes again too.
const gestures = await Promise.allSettled([1, 2, 3].map(() => client.call('gesture.start', {canvasId: params.canvas}, {})));
report('done', {failed: [...outcomes, ...gestures].filter(o => o.status === 'rejected').map(o => o.reason.code),
                seconds: (performance.now() - started) / 1000, transport: client.transport});
"""


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_writes_refused_for_the_rate_wait_as_told_and_each_is_stored_once(data_dir, site, transport):
    per_user = 5  # a burst of 10, then one every 200 ms
    server = start(data_dir, site, limits={"writes_per_second_per_user": per_user})
    token = server.token()
    thread = create(server, "threads", token)
    canvas = create(server, "canvases", token)
    count = 20
    time.sleep(2.2)  # the bucket full again after the two creates
    site.add("page", server.url, RATE_LIMITED_PAGE, thread=thread, canvas=canvas, count=count, transports=[transport])
    site.open("page")
    done = site.wait("page", "done", timeout=60)
    assert done["failed"] == [] and done["transport"] == transport, done
    # 23 writes, 10 at once and then one each 200 ms: they were held back, not refused for good.
    assert done["seconds"] >= (count + 3 - 2 * per_user) / per_user * 0.8, done
    events = server.get(f"/v1/threads/{thread}/events?after=0", headers=bearer(token)).json()["events"]
    assert sorted(e["data"]["text"] for e in events) == sorted(f"m{i}" for i in range(count))  # each once
    metrics = server.get("/metrics").text
    assert re.search(r'^northstar_writes_rate_limited_total\{limit="user"\} [1-9]', metrics, re.M), "no write was refused"
    server.kill()


IN_PROGRESS_PAGE = """
const client = ns.connect({url: params.server, token, transports: ['sse']});
await client.ready();
const thread = new ns.Thread(client, params.thread);
const started = performance.now();
const outcomes = await Promise.allSettled([0, 1, 2].map(i => thread.post(`p${i}`)));
report('done', {failed: outcomes.filter(o => o.status === 'rejected').map(o => o.reason.code),
                seconds: (performance.now() - started) / 1000});
"""


def test_a_request_refused_for_the_users_requests_in_progress_goes_again_once_one_is_answered(data_dir, site):
    """Over REST (the SSE transport's writes), a post refused 429 too_many_user_requests (nothing of it
    done) waits and goes again: each is stored once, none reaches the app as an error."""
    server = start(data_dir, site, limits={"max_requests_in_progress_per_user": 2})
    token = server.token()
    thread = create(server, "threads", token)
    slow = []
    for _ in range(2):  # every place alice has: two posts whose bodies never end
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall((f"POST /v1/threads/{thread}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te").encode())
        slow.append(sock)
    try:
        assert wait_for(lambda: gauge(server, "northstar_user_requests_in_progress") == 2)
        refused = server.post(f"/v1/threads/{thread}/messages", json={"text": "x"}, headers=bearer(token))
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_user_requests"
        site.add("page", server.url, IN_PROGRESS_PAGE, thread=thread)
        site.open("page")
        time.sleep(3)  # the page's posts are refused meanwhile, and go again
    finally:
        for sock in slow:
            sock.close()
    done = site.wait("page", "done", timeout=60)
    assert done["failed"] == [] and done["seconds"] >= 2, done
    events = server.get(f"/v1/threads/{thread}/events?after=0", headers=bearer(token)).json()["events"]
    assert sorted(e["data"]["text"] for e in events) == ["p0", "p1", "p2"]  # each once
    server.kill()
