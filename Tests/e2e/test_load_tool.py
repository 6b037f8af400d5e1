"""The load tool (`northstar-load`) that Benchmarks/fanout_vs_nchan.sh runs
against Northstar and Nchan measures the server, not its own slips.

nginx closes a keep-alive connection after 1,000 requests: until
2026-12-03 the tool went on writing to the closed connection, its closed
loop stalled on a publish that never got an answer, and Nchan's rate came
out at a third of its real one. Here a small relay server (SSE subscribers,
a POST relayed to all of them) closes its publishing connections the ways a
server may, and the tool must reconnect, count what was lost, and expect at
the subscribers only what the server accepted."""
import queue
import re
import subprocess
import threading

import pytest

from conftest import BIN, QuietHandler, local_http

SUBSCRIBERS = 5


class RelayHandler(QuietHandler):
    """GET /sub: an event stream; POST /pub: relays the body to every subscriber.

    Each publishing connection is closed after `close_after` requests:
    politely (`Connection: close` on the last answer) or, when `drop` is
    set, by closing the socket instead of answering. `refuse_every` answers
    every Nth publish 503; `starve_first` relays nothing to the first
    subscriber; `refuse_subscribers` answers the first N subscribers 429."""
    protocol_version = "HTTP/1.1"
    close_after = 3
    drop = False
    refuse_every = 0
    starve_first = False
    refuse_subscribers = 0
    refused_subscribers = 0
    subscribers: list = []
    lock = threading.Lock()
    published = 0

    def do_GET(self):
        with self.lock:
            refuse = type(self).refused_subscribers < self.refuse_subscribers
            type(self).refused_subscribers += refuse
        if refuse:
            body = b'{"error":{"code":"too_many_user_connections"}}'
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        inbox = queue.Queue()
        with self.lock:
            self.subscribers.append(inbox)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        while (data := inbox.get()) is not None:
            self.wfile.write(b"data: " + data + b"\n\n")
            self.wfile.flush()
        self.close_connection = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests = getattr(self, "requests", 0) + 1
        last = self.requests >= self.close_after
        if last and self.drop:
            self.close_connection = True
            return  # no answer: the publish is lost with its connection
        with self.lock:
            type(self).published += 1
            refused = self.refuse_every and type(self).published % self.refuse_every == 0
            if not refused:
                for inbox in self.subscribers[1 if self.starve_first else 0:]:
                    inbox.put(body)
        self.send_response(503 if refused else 200)
        self.send_header("Content-Length", "0")
        if last:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()


@pytest.fixture
def relay():
    def serve(**settings):
        handler = type("Relay", (RelayHandler,), {"subscribers": [], "published": 0, **settings})
        httpd, url = local_http(handler)
        served.append((httpd, handler))
        return url
    served = []
    yield serve
    for httpd, handler in served:
        for inbox in handler.subscribers:
            inbox.put(None)
        httpd.shutdown()
        httpd.server_close()


def run_load(url, *flags):
    result = subprocess.run([str(BIN / "northstar-load"), "--subscribe", f"{url}/sub", "--publish", f"{url}/pub",
                             "--subscribers", str(SUBSCRIBERS), "--seconds", "1", *flags],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    published = re.search(r"published: (\d+) in [\d.]+ s \(\d+/s\), (\d+) accepted, (\d+) refused, "
                          r"(\d+) unanswered; (\d+) reconnections", result.stdout)
    delivered = re.search(r"delivered: (\d+) of (\d+) \(([\d.]+)%\), (\d+) events/s", result.stdout)
    assert published and delivered, result.stdout
    return [int(x) for x in published.groups()], [float(x) for x in delivered.groups()], result.stdout


@pytest.mark.parametrize("flags", [("--in-flight", "1"), ("--in-flight", "4"), ("--rate", "60")])
def test_a_connection_the_server_closes_politely_is_reopened(relay, flags):
    url = relay(close_after=3)
    (sent, accepted, refused, unanswered, reconnections), (delivered, expected, percent, _), out = run_load(url, *flags)
    assert unanswered == 0 and refused == 0, out
    assert accepted == sent and accepted >= 20, out
    # A new connection per three publishes, on each connection publishing at once.
    connections = int(flags[1]) if flags[0] == "--in-flight" else 1
    assert reconnections >= accepted // 3 - connections, out
    assert delivered == expected == accepted * SUBSCRIBERS and percent == 100.0, out


def test_a_closed_loop_replaces_a_publish_lost_with_its_connection(relay):
    url = relay(close_after=4, drop=True)
    (sent, accepted, refused, unanswered, reconnections), (delivered, expected, percent, _), out = run_load(url, "--in-flight", "2")
    # Every fourth publish on a connection is dropped: counted, replaced, and not expected at the subscribers.
    assert accepted >= 20 and unanswered >= accepted // 3 - 2, out
    assert sent == accepted + unanswered and refused == 0, out
    assert reconnections >= unanswered, out
    assert delivered == expected == accepted * SUBSCRIBERS, out


def test_refused_publishes_are_counted_and_not_expected(relay):
    url = relay(close_after=1000, refuse_every=4)
    (sent, accepted, refused, unanswered, _), (delivered, expected, percent, _), out = run_load(url, "--in-flight", "1")
    assert refused >= 5 and unanswered == 0 and sent == accepted + refused, out
    assert delivered == expected == accepted * SUBSCRIBERS, out


def test_the_rate_ends_at_the_last_delivery_not_at_the_wait_for_a_missing_one(relay):
    """A subscriber that gets nothing is waited for (10 s), and reported; the
    rate is still what arrived over the time it took to arrive."""
    url = relay(close_after=1000, starve_first=True)
    (sent, accepted, _, unanswered, _), (delivered, expected, percent, per_second), out = run_load(url, "--rate", "30")
    assert sent == accepted == 30 and unanswered == 0, out
    assert expected == 30 * SUBSCRIBERS and delivered == 30 * (SUBSCRIBERS - 1) and percent == 80.0, out
    # 120 events over about a second; stretched over the wait it would be about 11/s.
    assert per_second > 60, out


def test_refused_subscribers_are_counted_once_each_with_the_servers_answer(relay):
    url = relay(close_after=1000, refuse_subscribers=2)
    (sent, accepted, _, _, _), (delivered, expected, percent, _), out = run_load(url, "--rate", "20")
    assert f"subscribers: {SUBSCRIBERS - 2} connected, 2 failed (HTTP 429: 2)" in out, out
    assert delivered == expected == accepted * (SUBSCRIBERS - 2) and percent == 100.0, out
