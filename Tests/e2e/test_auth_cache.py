"""Accepted credentials are remembered (`auth.cache`): the plugin verifies a
token once, and the node's own rules (expiry, env, tenant) still apply to
every request. Rejections are never remembered; `seconds: 0` turns it off;
`entries` bounds it."""
import json
import re
import time

from conftest import Server, bearer, dev_claims, dev_secret, northstar, sign_hs
from storage_backends import jwt_plugin


def start(data_dir, **auth):
    plugin = jwt_plugin()
    if auth.get("expiry_leeway_seconds") == 0:
        plugin["config"]["leeway_seconds"] = 0  # the token's exp is the moment it stops working
    config = data_dir / "config.json"
    config.write_text(json.dumps({"auth": {"chain": ["jwt"], **auth}, "plugins": [plugin]}))
    return Server(data_dir, config=config).start()


def counts(server):
    """(plugin verify calls, cache hits, cache misses) from /metrics."""
    text = server.get("/metrics").text

    def value(pattern):
        found = re.search(pattern, text, flags=re.M)
        return int(float(found.group(1))) if found else 0
    return (value(r'^northstar_plugin_call_duration_seconds_count\{plugin="jwt",entry="verify"\} (\S+)$'),
            value(r'^northstar_auth_cache_total\{result="hit"\} (\S+)$'),
            value(r'^northstar_auth_cache_total\{result="miss"\} (\S+)$'))


def test_a_token_is_verified_once_then_remembered(data_dir):
    server = start(data_dir)
    try:
        headers = bearer(server.token())
        thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
        for index in range(4):
            assert server.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}"}, headers=headers).status_code == 201
        assert server.get(f"/v1/threads/{thread}/events", headers=headers).status_code == 200
        assert counts(server) == (1, 5, 1)
        # Another token of the same user is a credential of its own.
        other = bearer(server.token())
        assert server.get(f"/v1/threads/{thread}/events", headers=other).status_code == 200
        assert counts(server) == (2, 5, 2)
    finally:
        server.stop()


def test_rejections_are_never_remembered(data_dir):
    server = start(data_dir)
    try:
        secret = dev_secret(data_dir)
        wrong_env = bearer(sign_hs(secret, dev_claims(env="prod")))
        forged = bearer(sign_hs(b"not the secret", dev_claims()))
        for _ in range(3):
            assert server.get("/v1/threads/th_" + "a" * 26, headers=wrong_env).status_code == 401
            assert server.get("/v1/threads/th_" + "a" * 26, headers=forged).status_code == 401
            assert server.get("/v1/threads/th_" + "a" * 26, headers={"Authorization": "Bearer nonsense"}).status_code == 401
        verify, hits, misses = counts(server)
        assert (verify, hits, misses) == (9, 0, 9)
    finally:
        server.stop()


def test_a_remembered_token_still_expires_and_still_keeps_tenants_apart(data_dir):
    server = start(data_dir, expiry_leeway_seconds=0)
    try:
        short = bearer(server.token(ttl=2))
        thread = server.post("/v1/threads", json={}, headers=short).json()["thread_id"]
        assert server.get(f"/v1/threads/{thread}/events", headers=short).status_code == 200
        # A remembered token of another tenant sees none of this tenant's thread.
        beta = bearer(server.token(tenant="t_beta"))
        for _ in range(2):
            assert server.get(f"/v1/threads/{thread}/events", headers=beta).status_code == 404
        time.sleep(3)
        expired = server.get(f"/v1/threads/{thread}/events", headers=short)
        assert expired.status_code == 401 and expired.json()["error"]["code"] == "unauthorized"
        verify, hits, _ = counts(server)
        assert verify == 2 and hits >= 3
    finally:
        server.stop()


def test_seconds_zero_asks_the_plugin_every_time(data_dir):
    server = start(data_dir, cache={"seconds": 0})
    try:
        headers = bearer(server.token())
        for _ in range(3):
            assert server.post("/v1/threads", json={}, headers=headers).status_code == 201
        assert counts(server) == (3, 0, 0)
    finally:
        server.stop()


def test_entries_bound_the_cache_oldest_first(data_dir):
    server = start(data_dir, cache={"seconds": 600, "entries": 2})
    try:
        tokens = [bearer(server.token(user=f"u{index}")) for index in range(3)]
        for headers in tokens:  # three misses: the first token is pushed out by the third
            assert server.post("/v1/threads", json={}, headers=headers).status_code == 201
        assert server.post("/v1/threads", json={}, headers=tokens[2]).status_code == 201  # hit
        assert server.post("/v1/threads", json={}, headers=tokens[0]).status_code == 201  # miss again
        assert counts(server) == (4, 1, 4)
    finally:
        server.stop()


def test_bad_cache_settings_are_refused_with_their_key(data_dir):
    for cache, key in [({"seconds": -1}, "auth.cache.seconds"), ({"seconds": 3601}, "auth.cache.seconds"),
                       ({"entries": 0}, "auth.cache.entries"), ({"ttl": 5}, "auth.cache.ttl"),
                       ("30", "auth.cache")]:
        config = data_dir / "bad.json"
        config.write_text(json.dumps({"auth": {"cache": cache}}))
        result = northstar("config", "check", "--config", config, "--data-dir", data_dir)
        assert result.returncode != 0 and key in result.stderr, (cache, result.stderr)
