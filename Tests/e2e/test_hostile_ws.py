"""WebSocket strictness (RFC 6455): a client that breaks the framing rules is
closed with the code the RFC names, the server stays up, and requests sent
back to back are each answered."""
import json
import os
import struct

import pytest
from websockets.sync.client import connect

from conftest import Server, bearer, dev_config
from test_ws import thread_with_messages, ws_url
from ws_raw import RawWebSocket


def frame(opcode, payload, fin=True, masked=True, rsv=0):
    """One client frame, built by hand so that it can break the rules."""
    header = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header += bytes([mask_bit | length])
    elif length < 65536:
        header += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        header += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(socket):
    """The code of the server's close frame (events before it are skipped)."""
    while True:
        opcode, payload = socket.frame()
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


VIOLATIONS = [
    ("unmasked_frame", [frame(0x1, b'{"type":"ping","id":1}', masked=False)], 1002),
    ("continuation_without_start", [frame(0x0, b"orphan")], 1002),
    ("reserved_bit", [frame(0x1, b'{"type":"ping","id":1}', rsv=0b100)], 1002),
    ("unknown_opcode", [frame(0x3, b"x")], 1002),
    ("fragmented_ping", [frame(0x9, b"x", fin=False)], 1002),
    ("new_message_inside_a_fragmented_one", [frame(0x1, b"{", fin=False), frame(0x1, b"}")], 1002),
    ("invalid_utf8", [frame(0x1, b'{"type":"ping","id":"\xff\xfe"}')], 1007),
    ("utf8_split_then_broken", [frame(0x1, b'{"x":"\xc3', fin=False), frame(0x0, b'\x28"}')], 1007),
    ("oversized_in_fragments", [frame(0x1, b"a" * 3000, fin=False), frame(0x0, b"a" * 3000, fin=False),
                                frame(0x0, b"a" * 3000)], 1009),
]


@pytest.mark.parametrize("name,frames,code", VIOLATIONS, ids=[case[0] for case in VIOLATIONS])
def test_protocol_violations_close_with_the_rfc_code(data_dir, name, frames, code):
    server = Server(data_dir, config=dev_config(data_dir, limits={"ws_max_message_bytes": 8192})).start()
    try:
        socket = RawWebSocket(server.port, "/ws", headers=[f"Authorization: Bearer {server.token()}"])
        assert socket.status == 101
        for raw in frames:
            socket.sock.sendall(raw)
        assert close_code(socket) == code, name
        socket.close()
        assert server.get("/healthz").status_code == 200
    finally:
        server.kill()


def test_a_split_utf8_character_across_fragments_is_accepted(server):
    """A character whose bytes straddle two fragments is valid: the message is answered."""
    socket = RawWebSocket(server.port, "/ws", headers=[f"Authorization: Bearer {server.token()}"])
    text = '{"type":"ping","id":"é"}'.encode()
    cut = text.index(b"\xa9")
    socket.sock.sendall(frame(0x1, text[:cut], fin=False) + frame(0x0, text[cut:]))
    opcode, payload = socket.frame()
    answer = json.loads(payload)
    assert opcode == 0x1 and answer["type"] == "pong" and answer["id"] == "é"
    socket.close()


def test_subscribe_then_unsubscribe_at_once_are_both_answered_in_order(server):
    headers = bearer(server.token())
    thread = thread_with_messages(server, headers, 1)
    with connect(ws_url(server, "/ws"), additional_headers=headers) as socket:
        for round_ in range(20):
            stream = f"chat:{thread}"
            socket.send(json.dumps({"type": "subscribe", "id": f"s{round_}", "stream": stream, "after": 1}))
            socket.send(json.dumps({"type": "unsubscribe", "id": f"u{round_}", "stream": stream}))
            answers = []
            while len(answers) < 2:
                answer = json.loads(socket.recv(timeout=10))
                if answer["type"] in ("event", "gap"):
                    continue
                answers.append((answer["type"], answer["id"]))
            assert answers == [("subscribed", f"s{round_}"), ("unsubscribed", f"u{round_}")], answers
        socket.send(json.dumps({"type": "ping", "id": "last"}))
        assert json.loads(socket.recv(timeout=10)) == {"type": "pong", "id": "last"}
