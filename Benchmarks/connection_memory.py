"""Server memory per idle SSE connection, Northstar and nginx + Nchan side
by side, and the memory a stalled client costs.

Method (Benchmarks/README.md): each server is started fresh on loopback by
this script. `idle`: N SSE subscribers are opened by several client
processes (each capped at 20,000 open files, spread over several 127.0.0.x
source addresses), each reads its response head and then nothing more; the
server's resident memory (VmRSS; for nginx, the sum over its processes) is
read before and after, and the difference divided by N. `stalled`: S SSE
and S WebSocket clients subscribe and then stop reading (a small receive
buffer), while M messages of 1 KB are published; one normal SSE reader
measures publish-to-deliver latency meanwhile; RSS is read during and after,
and each stalled client is checked for its last word (SSE `stream.end`,
WS close 4008).

    python3 Benchmarks/connection_memory.py idle [--connections 15000] [--processes 3]
    python3 Benchmarks/connection_memory.py stalled [--clients 1000] [--messages 20000]

Needs a release build (swift build -c release) and, for the Nchan side of
`idle`, Debian's nginx-light and libnginx-mod-nchan (installed here when
missing, as Benchmarks/fanout_vs_nchan.sh does).
"""
import argparse
import base64
import json
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8384
NCHAN_PORT = 8390


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total


def call(method, path, token=None, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


class Northstar:
    def __init__(self, binary, limits):
        self.work = Path(tempfile.mkdtemp())
        # The embedded default's plugins, with these limits.
        settings = json.loads((ROOT / "Deploy" / "northstar.dev.json").read_text())
        # One user publishes every event: no write rate.
        settings["limits"].update({"writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0,
                                   "reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0,
                                   "ws_messages_per_second_per_user": 0, "ws_messages_per_second_per_tenant": 0, **limits})
        settings["node"]["data_dir"] = str(self.work / "data")
        config = self.work / "config.json"
        config.write_text(json.dumps(settings))
        self.process = subprocess.Popen([str(binary / "northstar"), "serve", "--listen", f"127.0.0.1:{PORT}",
                                         "--config", str(config), "--log-level", "error"])
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        self.token = subprocess.run([str(binary / "northstar"), "token", "--tenant", "t_bench", "--user", "bench",
                                     "--config", str(config)],
                                    capture_output=True, text=True, check=True).stdout.strip()
        self.thread = call("POST", "/v1/threads", self.token, {})["thread_id"]

    def pids(self):
        return [self.process.pid]

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.work, ignore_errors=True)


def install_nchan():
    """Debian's nginx and its Nchan module, installed when missing."""
    for package in ("nginx-light", "libnginx-mod-nchan"):
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True).stdout
        if "install ok installed" not in status:
            subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


class Nchan:
    def __init__(self):
        install_nchan()
        self.process = subprocess.Popen(["nginx", "-p", str(ROOT / "Benchmarks" / "nchan"), "-c", "nginx.conf"])
        for _ in range(100):
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited {self.process.returncode} (see its message above)")
            try:
                socket.create_connection(("127.0.0.1", NCHAN_PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.3)

    def pids(self):
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout.split()
        return [self.process.pid] + [int(pid) for pid in children]

    def stop(self):
        self.process.terminate()
        self.process.wait()


def hold_connections(port, path, headers, count, source, ready, release):
    """A client process: opens `count` SSE subscribers from `source`, reads each head, then holds them."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    sockets = []
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n" +
               "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n").encode()
    failed = 0
    for _ in range(count):
        try:
            connection = socket.socket()
            connection.bind((source, 0))
            connection.connect(("127.0.0.1", port))
            connection.sendall(request)
            connection.settimeout(30)
            head = connection.recv(4096)
            if not head.startswith(b"HTTP/1.1 200"):
                failed += 1
            sockets.append(connection)
        except OSError:
            failed += 1
    ready.put(failed)
    release.wait()
    for connection in sockets:
        connection.close()


def idle(server_pids, port, path, headers, connections, processes):
    """RSS per idle subscriber, in KiB."""
    before = rss_kib(server_pids)
    release = multiprocessing.Event()
    ready = multiprocessing.Queue()
    share = connections // processes
    workers = [multiprocessing.Process(target=hold_connections,
                                       args=(port, path, headers, share, f"127.0.0.{index + 2}", ready, release))
               for index in range(processes)]
    for worker in workers:
        worker.start()
    failed = sum(ready.get(timeout=600) for _ in workers)
    time.sleep(2)
    after = rss_kib(server_pids)
    release.set()
    for worker in workers:
        worker.join()
    held = share * processes - failed
    return before, after, held, (after - before) / max(1, held)


def run_idle(arguments):
    binary = Path(arguments.bin)
    print(f"idle SSE connections: {arguments.connections} over {arguments.processes} client processes")
    northstar = Northstar(binary, {"max_connections": arguments.connections + 1000,
                                   "max_pending_connections_per_ip": 100000, "max_connections_per_user": 100000,
                                   "max_connections_per_tenant": 100000})
    try:
        before, after, held, each = idle(northstar.pids(), PORT, f"/sse/chat/{northstar.thread}",
                                         {"Authorization": f"Bearer {northstar.token}"}, arguments.connections,
                                         arguments.processes)
        print(f"  Northstar: {held} held; RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB: {each:.2f} KiB each")
    finally:
        northstar.stop()
    nchan = Nchan()
    try:
        before, after, held, nchan_each = idle(nchan.pids(), NCHAN_PORT, "/sub?id=idle", {}, arguments.connections,
                                               arguments.processes)
        print(f"  Nchan:     {held} held; RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB: {nchan_each:.2f} KiB each")
        print(f"  ratio Northstar/Nchan: {each / nchan_each:.2f}x")
    finally:
        nchan.stop()


def raw_subscribe(path, token, websocket=False):
    """A client that subscribes and then never reads: a receive buffer of 4 KiB."""
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.connect(("127.0.0.1", PORT))
    extra = ""
    if websocket:
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nAuthorization: Bearer {token}\r\n{extra}\r\n".encode())
    return connection


def read_all(connection, limit_seconds=30):
    """Everything the server sends until it closes the socket."""
    connection.settimeout(limit_seconds)
    chunks = []
    try:
        while True:
            chunk = connection.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks)


def run_stalled(arguments):
    binary = Path(arguments.bin)
    # A cut-off client's last word waits for it to read for the grace
    # (60 s by default), then the socket closes without it (the idle
    # timeout no longer cuts it short: its clock starts once the last word
    # is on the wire). These clients
    # read only once every message was published, which can take longer on
    # a loaded machine: the grace is set past the publishing here, so what is
    # checked is that the last word was written, not how long the machine took.
    northstar = Northstar(binary, {"max_pending_connections_per_ip": 100000, "max_connections_per_user": 100000,
                                   "max_connections_per_tenant": 100000, "slow_consumer_grace_seconds": 900})
    try:
        token, thread = northstar.token, northstar.thread
        baseline = rss_kib(northstar.pids())
        stalled = [raw_subscribe(f"/sse/chat/{thread}", token) for _ in range(arguments.clients)]
        stalled += [raw_subscribe(f"/ws/chat/{thread}", token, websocket=True) for _ in range(arguments.clients)]
        time.sleep(2)
        # One normal reader, timing each message from publish to arrival.
        latencies, sent_at = [], {}
        reader = socket.create_connection(("127.0.0.1", PORT))
        reader.sendall(f"GET /sse/chat/{thread} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())

        def read_normally():
            buffer = b""
            while len(latencies) < arguments.messages:
                chunk = reader.recv(1 << 16)
                if not chunk:
                    return
                buffer += chunk
                while b"lt_" in buffer:
                    start = buffer.index(b"lt_") + 3
                    end = start
                    while end < len(buffer) and buffer[end:end + 1].isdigit():
                        end += 1
                    if end == len(buffer):
                        break
                    key = buffer[start:end].decode()
                    latencies.append(time.monotonic() - sent_at.get(key, time.monotonic()))
                    buffer = buffer[end:]
        threading.Thread(target=read_normally, daemon=True).start()
        peak = 0
        text = "x" * 1000
        started = time.monotonic()
        for index in range(arguments.messages):
            key = str(index)
            sent_at[key] = time.monotonic()
            call("POST", f"/v1/threads/{thread}/messages", token, {"text": f"lt_{key} {text}"})
            if index % 500 == 0:
                peak = max(peak, rss_kib(northstar.pids()))
        seconds = time.monotonic() - started
        peak = max(peak, rss_kib(northstar.pids()))
        time.sleep(1)
        # Now every stalled client reads: each must find its last word, then the socket closes.
        told = {"sse": 0, "ws": 0}
        for index, connection in enumerate(stalled):
            data = read_all(connection, 20)
            if index < arguments.clients:
                told["sse"] += b"event: stream.end" in data and b'"reason":"slow_consumer"' in data
            else:
                told["ws"] += b"\x88" in data and (4008).to_bytes(2, "big") in data
            connection.close()
        time.sleep(2)
        after = rss_kib(northstar.pids())
        latencies.sort()
        print(f"stalled clients: {arguments.clients} SSE + {arguments.clients} WS, {arguments.messages} messages of 1 KB "
              f"published in {seconds:.1f} s")
        print(f"  server RSS: {baseline / 1024:.1f} MiB before, {peak / 1024:.1f} MiB peak during, "
              f"{after / 1024:.1f} MiB after")
        print(f"  told where to resume: SSE {told['sse']} of {arguments.clients} (stream.end), "
              f"WS {told['ws']} of {arguments.clients} (close 4008)")
        if latencies:
            print(f"  normal reader: {len(latencies)} received, p50 {statistics.median(latencies) * 1000:.1f} ms, "
                  f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms")
    finally:
        northstar.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["idle", "stalled"])
    parser.add_argument("--bin", default=str(ROOT / ".build" / "release"))
    parser.add_argument("--connections", type=int, default=15000)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20000)
    arguments = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    run_idle(arguments) if arguments.mode == "idle" else run_stalled(arguments)


if __name__ == "__main__":
    sys.exit(main())
