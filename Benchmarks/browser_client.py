#!/usr/bin/env python3
"""The browser client in a real page: how many events per second one page
takes in without dropping frames, and how long a page takes to resume after
the server restarts.

Method: release build of the server (embedded-default plugins, SQLite);
headless Chromium (Debian's) loads a page from another origin that imports
`clients/js/northstar.js` from the server, as an app would.

- **Intake.** The page follows one chat thread and renders every message as
  a chat would (a list item each, the last 100 kept). `northstar-load`
  publishes at fixed rates (open loop), each rate for `--seconds`. The page
  counts what it received and times every animation frame
  (`requestAnimationFrame`); a frame is *dropped* when it came more than
  1.5 frame periods after the last (the period is the median interval with
  nothing published). Latency is commit (the event's `ts`) to the page's
  handler, on the same machine's clock. A rate is *kept up with* when every
  event arrived and at most 1 % of frames dropped.
- **Catch-up.** The publish rate above is bounded by what the server
  commits to one thread on this machine (about 1,000 durable posts a second
  with the browser beside it). To see what a page itself takes in, it
  subscribes from 0 to a thread of `--backlog` stored messages and renders
  them all as they arrive: events per second while catching up, and frames.
- **Resume.** The page follows a thread; the server is stopped (SIGKILL, or
  SIGTERM: a drain, close 1001), stays down `--down` seconds and is started
  on the same address. From the moment it logs `listening`: the page's
  client is `open` again, and the page has the message posted right then.
  The client's backoff (250 ms base, full jitter, doubling) is part of the
  figure, as users would see it.

Everything shares the machine's cores (server, browser, publisher): read
the figures as this machine's, and compare transports within one run.

    swift build -c release
    python3 Benchmarks/browser_client.py [--seconds 5] [--rates 100,250,500,1000] [--backlog 20000] [--rounds 8] [--down 1]
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".build" / "release"
os.environ.setdefault("NORTHSTAR_BIN", str(BIN))
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from browser_pages import PageSite  # noqa: E402
from conftest import Server, bearer  # noqa: E402

INTAKE_PAGE = """
const client = ns.connect({url: params.server, token, transports: [params.transport]});
const list = document.createElement('ul');
document.body.append(list);
let received = 0;
let latencies = [];
let frames = [];
let last = performance.now();
const tick = now => { frames.push(now - last); last = now; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
let firstAt = null;
let lastAt = null;
client.subscribe('chat:' + params.thread, {onEvent: event => {
  received += 1;
  lastAt = performance.now();
  firstAt ??= lastAt;
  latencies.push(Date.now() - Date.parse(event.ts));
  const item = document.createElement('li');
  item.textContent = event.actor + ': ' + event.data.text;
  list.append(item);
  if (list.childElementCount > 100) list.firstElementChild.remove();
}});
await client.ready();
report('ready', {transport: client.transport});
// Every second: what arrived and how the frames went since the last report.
setInterval(() => {
  report('tick', {received, latencies, frames, firstAt, lastAt});
  latencies = [];
  frames = [];
}, 1000);
"""

RESUME_PAGE = """
const client = ns.connect({url: params.server, token, transports: [params.transport]});
client.onStateChange(({state}) => report('state', {state, at: Date.now()}));
client.subscribe('chat:' + params.thread, {onEvent: event => report('event', {seq: event.seq, at: Date.now()})});
"""


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def config(data_dir, origin):
    document = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
    document["node"] = {"allowed_origins": [origin], "client_dir": str(ROOT / "clients" / "js")}
    # One user publishes at up to the server's commit rate: no write rate.
    document["limits"].update({"writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0,
                               "reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0,
                               "ws_messages_per_second_per_user": 0, "ws_messages_per_second_per_tenant": 0})
    for plugin in document["plugins"]:
        if plugin["name"] in ("sse", "ws"):
            plugin["config"]["allowed_origins"] = [origin]
    path = data_dir / "config.json"
    path.write_text(json.dumps(document))
    return path


@contextlib.contextmanager
def page_and_server():
    """A page site, a server that lets its pages in, a token and a new thread."""
    with tempfile.TemporaryDirectory(prefix="northstar-bench-") as folder:
        data_dir = Path(folder)
        site = PageSite(data_dir)
        server = Server(data_dir, config=config(data_dir, site.origin)).start()
        try:
            token = server.token()
            thread = server.post("/v1/threads", json={}, headers=bearer(token)).json()["thread_id"]
            yield site, server, token, thread
        finally:
            server.kill()
            site.close()


def reports(site, page, kind, seconds):
    """The `kind` reports of `page` over the next `seconds`."""
    found, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            report = site.reports.get(timeout=max(0.01, deadline - time.monotonic()))
        except Exception:
            continue
        if report["page"] == page and report["kind"] == kind:
            found.append(report)
    return found


def intake(args, transport):
    with page_and_server() as (site, server, token, thread):
        site.add("intake", server.url, INTAKE_PAGE, thread=thread, transport=transport)
        site.open("intake")
        assert site.wait("intake", "ready")["transport"] == transport
        idle = [f for r in reports(site, "intake", "tick", 3)[1:] for f in r["frames"]]
        period = statistics.median(idle)
        rows = [("idle", period)]
        total = 0
        for rate in args.rates:
            before = reports(site, "intake", "tick", 1.05)[-1]["received"]
            load = subprocess.Popen([str(BIN / "northstar-load"), "--subscribe", f"{server.url}/sse/chat/{thread}",
                                     "--publish", f"{server.url}/v1/threads/{thread}/messages",
                                     "--header", f"Authorization: Bearer {token}", "--subscribers", "1",
                                     "--rate", str(rate), "--seconds", str(args.seconds)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ticks = reports(site, "intake", "tick", args.seconds + 1)
            load.communicate(timeout=120)
            published = int(server.get(f"/v1/threads/{thread}", headers=bearer(token)).json()["head_seq"]) - total
            total += published
            # Events still on their way count if they arrive within 5 s more (their latency shows the delay).
            while ticks[-1]["received"] < total and len(ticks) < args.seconds + 6:
                ticks += reports(site, "intake", "tick", 1.05)
            received = ticks[-1]["received"] - before
            frames = [f for t in ticks for f in t["frames"]]
            latencies = [x for t in ticks for x in t["latencies"]]
            dropped = sum(1 for f in frames if f > 1.5 * period) / max(1, len(frames))
            rows.append((rate, published, received, dropped, percentile(frames, 0.99),
                         percentile(latencies, 0.5), percentile(latencies, 0.99)))
        return rows


def catch_up(args, transport):
    """A page that subscribes from 0 to a thread of `--backlog` stored messages:
    the events per second it takes in while it catches up, and its frames."""
    with page_and_server() as (site, server, token, thread):
        subprocess.run([str(BIN / "northstar-load"), "--subscribe", f"{server.url}/sse/chat/{thread}",
                        "--publish", f"{server.url}/v1/threads/{thread}/messages",
                        "--header", f"Authorization: Bearer {token}", "--subscribers", "1",
                        "--rate", "500", "--seconds", str(args.backlog / 500)], capture_output=True, timeout=300)
        stored = int(server.get(f"/v1/threads/{thread}", headers=bearer(token)).json()["head_seq"])
        site.add("catch-up", server.url, INTAKE_PAGE, thread=thread, transport=transport)
        started = time.monotonic()
        site.open("catch-up")
        ticks = []
        while not ticks or ticks[-1]["received"] < stored:
            assert time.monotonic() - started < 120, "the page did not catch up in 120 s"
            ticks += reports(site, "catch-up", "tick", 1.05)
        busy = [t for t in ticks if t["latencies"]]
        frames = [f for t in busy for f in t["frames"]]
        period = 1000 / 60
        dropped = sum(1 for f in frames if f > 1.5 * period) / max(1, len(frames))
        seconds = (ticks[-1]["lastAt"] - ticks[-1]["firstAt"]) / 1000
        return stored, stored / max(seconds, 0.001), dropped, percentile(frames, 0.99)


def resume(args, transport, signal_name):
    opened, resumed = [], []
    with page_and_server() as (site, server, token, thread):
        server.listen = f"127.0.0.1:{server.port}"
        site.add("resume", server.url, RESUME_PAGE, thread=thread, transport=transport)
        site.open("resume")
        site.wait("resume", "state")
        for seq in range(1, args.rounds + 1):
            if signal_name == "SIGKILL":
                server.kill()
            else:
                server.stop()
            time.sleep(args.down)
            server.start()
            listening = time.time()
            server.post(f"/v1/threads/{thread}/messages", json={"text": f"after restart {seq}"}, headers=bearer(token))
            event = site.wait("resume", "event", timeout=60)
            assert event["seq"] == seq, event
            states = [r for r in site.seen if r["page"] == "resume" and r["kind"] == "state"]
            site.seen = [r for r in site.seen if r not in states]
            open_at = [s["at"] for s in states if s["state"] == "open"]
            opened.append((open_at[-1] if open_at else event["at"]) - listening * 1000)
            resumed.append(event["at"] - listening * 1000)
    return opened, resumed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rates", default="100,250,500,1000")
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--down", type=float, default=1.0)
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    assert (BIN / "northstar").exists(), "build first: swift build -c release"

    print("== intake: one page, one thread, each message rendered ==")
    for transport in ("ws", "sse"):
        rows = intake(args, transport)
        print(f"-- {transport}: frame period {rows[0][1]:.1f} ms with nothing published")
        print("rate/s  published  received  dropped frames  p99 frame ms  latency p50 / p99 ms")
        kept = 0
        for rate, published, received, dropped, frame99, p50, p99 in rows[1:]:
            print(f"{rate:>6}  {published:>9}  {received:>8}  {dropped * 100:>13.1f}%  {frame99:>12.1f}  {p50:>8.1f} / {p99:.1f}")
            if received == published and dropped <= 0.01:
                kept = max(kept, rate)
        print(f"kept up with (every event, at most 1 % of frames dropped): {kept}/s")

    print(f"\n== catch-up: a page subscribes from 0 to {args.backlog} stored messages ==")
    print("transport  stored  events/s taken in  dropped frames  p99 frame ms")
    for transport in ("ws", "sse"):
        stored, rate, dropped, frame99 = catch_up(args, transport)
        print(f"{transport:<9}  {stored:>6}  {rate:>17.0f}  {dropped * 100:>13.1f}%  {frame99:>12.1f}")

    print(f"\n== resume: server down {args.down} s, {args.rounds} rounds; ms from `listening` ==")
    print("transport  stop     open again p50 / p90   first event p50 / p90")
    for transport in ("ws", "sse"):
        for signal_name in ("SIGKILL", "SIGTERM"):
            opened, resumed = resume(args, transport, signal_name)
            print(f"{transport:<9}  {signal_name:<7}  {statistics.median(opened):>8.0f} / {percentile(opened, 0.9):<8.0f}"
                  f"  {statistics.median(resumed):>8.0f} / {percentile(resumed, 0.9):.0f}")


if __name__ == "__main__":
    main()
