"""Keys from a JWKS URL, fetched through the host's HTTP client: cached,
refreshed on an unknown kid, at most once per jwks_min_refresh_seconds."""
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import QuietHandler, Server, b64url, dev_claims, local_http
from test_tokens import sign_rs


def jwk(key, kid):
    numbers = key.public_key().public_numbers()
    as_bytes = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64url(as_bytes(numbers.n)), "e": b64url(as_bytes(numbers.e))}


class KeyServer:
    """A JWKS endpoint on 127.0.0.1 whose key set the test rotates."""

    def __init__(self):
        self.keys = []
        self.requests = 0
        self.down = False
        outer = self

        class Handler(QuietHandler):
            def do_GET(self):
                outer.requests += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                self.send_json(200, {"keys": outer.keys})

        self.httpd, base = local_http(Handler)
        self.url = f"{base}/jwks.json"

    def close(self):
        self.httpd.shutdown()


K1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
K2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def setup(data_dir):
    keys = KeyServer()
    keys.keys = [jwk(K1, "k1")]
    config = {"node": {"env": "dev"}, "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
        "jwks_url": keys.url, "jwks_algorithms": ["RS256"], "jwks_min_refresh_seconds": 1, "jwks_cache_seconds": 300,
        "issuer": "northstar-dev", "audience": "northstar"}}]}
    (data_dir / "config.json").write_text(json.dumps(config))
    server = Server(data_dir, config=data_dir / "config.json").start()
    yield server, keys
    server.kill()
    keys.close()


def status(server, token):
    return server.get("/v1/threads/th_" + "a" * 26, headers={"Authorization": f"Bearer {token}"}).status_code


def test_fetched_cached_rotated_and_bounded(setup):
    server, keys = setup
    assert keys.requests == 1  # fetched once at start
    for _ in range(5):
        assert status(server, sign_rs(K1, dev_claims(), kid="k1")) == 404  # authenticated; the id is just missing
    assert keys.requests == 1  # served from the cache

    time.sleep(1.1)
    keys.keys = [jwk(K2, "k2")]  # rotation: k1 retired, k2 published
    assert status(server, sign_rs(K2, dev_claims(), kid="k2")) == 404  # unknown kid -> one refresh
    assert keys.requests == 2
    assert status(server, sign_rs(K1, dev_claims(), kid="k1")) == 401  # retired with the refresh

    # Unknown kids cannot make the server hammer the key server.
    for _ in range(20):
        assert status(server, sign_rs(K2, dev_claims(), kid="nope")) == 401
    assert keys.requests <= 3


def test_key_server_down_is_503_not_401_for_unknown_keys(setup):
    server, keys = setup
    time.sleep(1.1)
    keys.down = True
    response = server.get("/v1/threads/th_" + "a" * 26,
                          headers={"Authorization": f"Bearer {sign_rs(K2, dev_claims(), kid='k2')}"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "auth_unavailable"
    # Known keys keep working from the cache while it is down.
    assert status(server, sign_rs(K1, dev_claims(), kid="k1")) == 404
