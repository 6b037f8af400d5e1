"""A small SSE reader over a real socket, for tests: frames as dicts."""
import json
import socket


class SSEStream:
    """GET an SSE URL and read frames ({"id", "event", "data", "comment"})."""

    def __init__(self, port, path, headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in header_lines if ":" in h}
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.body = b""

    def _read_until(self, marker):
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _more_body(self):
        if not self.chunked:
            data = self.buffer or self.sock.recv(65536)
            self.buffer = b""
            if not data:
                raise EOFError("connection closed")
            self.body += data
            return
        size_line = self._read_until(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            raise EOFError("end of response")
        while len(self.buffer) < size + 2:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buffer += data
        self.body += self.buffer[:size]
        self.buffer = self.buffer[size + 2:]

    def error_body(self):
        """The whole (small) body of a non-stream answer, as JSON."""
        if self.chunked:
            try:
                while True:
                    self._more_body()
            except EOFError:
                return json.loads(self.body or b"null")
        length = int(self.headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        return json.loads(self.buffer[:length] or b"null")

    def frame(self):
        """The next frame (blocking, up to the socket timeout)."""
        while b"\n\n" not in self.body:
            self._more_body()
        raw, _, self.body = self.body.partition(b"\n\n")
        frame = {}
        for line in raw.decode().split("\n"):
            if line.startswith(":"):
                frame["comment"] = line[1:].strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                frame[key] = value[1:] if value.startswith(" ") else value
        return frame

    def events(self, count):
        """The next `count` event frames (skipping retry and comments), data parsed."""
        found = []
        while len(found) < count:
            frame = self.frame()
            if "data" in frame:
                frame["json"] = json.loads(frame["data"])
                found.append(frame)
        return found

    def close(self):
        self.sock.close()


def read_until_closed(stream, event="chat.message", timeout=10):
    """Reads a stream to its close: the seqs of its `event` frames, its
    `stream.end` events, and how it closed (None if it did not within
    `timeout` s)."""
    stream.sock.settimeout(timeout)
    seqs, ends, ended = [], [], None
    try:
        while True:
            frame = stream.frame()
            if frame.get("event") == event:
                seqs.append(int(frame["id"]))
            elif frame.get("event") == "stream.end":
                ends.append(json.loads(frame["data"]))
    except EOFError as error:
        ended = str(error)
    return seqs, ends, ended
