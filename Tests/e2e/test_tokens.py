"""Every malformed or hostile token is a 401, none crashes the server, and
none appears in its log. Also: each supported algorithm verifies."""
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from conftest import Server, b64url, bearer, dev_claims, dev_secret, sign_hs

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def signing_input(header, claims):
    return (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()


def sign_rs(key, claims, kid="rsa1", alg="RS256"):
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    data = signing_input(header, claims)
    pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return data.decode() + "." + b64url(key.sign(data, pad, hashes.SHA256()))


def sign_es(key, claims, kid="ec1"):
    data = signing_input({"alg": "ES256", "typ": "JWT", "kid": kid}, claims)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return data.decode() + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def sign_ed(key, claims, kid="ed1"):
    data = signing_input({"alg": "EdDSA", "typ": "JWT", "kid": kid}, claims)
    return data.decode() + "." + b64url(key.sign(data))


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """A server whose jwt plugin has a dev secret, RSA, RSA-PSS and EC keys, and an EdDSA JWKS."""
    data_dir = tmp_path_factory.mktemp("keyed")
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "alg": "EdDSA", "use": "sig",
                      "x": b64url(ED_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))}]}
    (data_dir / "jwks.json").write_text(json.dumps(jwks))
    config = {
        "node": {"env": "dev"},
        "plugins": [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
            "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar",
            "keys": [{"kid": "rsa1", "alg": "RS256", "pem": pem(RSA_KEY)},
                     {"kid": "pss1", "alg": "PS256", "pem": pem(RSA_KEY)},
                     {"kid": "ec1", "alg": "ES256", "pem": pem(EC_KEY)}],
            "jwks_file": str(data_dir / "jwks.json"), "jwks_algorithms": ["EdDSA"]}}],
    }
    (data_dir / "config.json").write_text(json.dumps(config))
    instance = Server(data_dir, config=data_dir / "config.json", extra_args=["--log-level", "trace"]).start()
    yield instance
    instance.kill()


def status(server, token):
    return server.get("/v1/threads/th_" + "a" * 26, headers=bearer(token)).status_code


def test_each_algorithm_verifies(keyed_server):
    claims = dev_claims()
    for token in (sign_rs(RSA_KEY, claims), sign_rs(RSA_KEY, claims, kid="pss1", alg="PS256"),
                  sign_es(EC_KEY, claims), sign_ed(ED_KEY, claims), keyed_server.token()):
        assert status(keyed_server, token) == 404, token[:40]  # authenticated: the id just does not exist


def hostile_tokens(server):
    secret = dev_secret(server.data_dir)
    good = sign_hs(secret, dev_claims())
    header, payload, signature = good.split(".")
    public_pem = pem(RSA_KEY).encode()
    return {
        "alg_none": b64url(json.dumps({"alg": "none", "kid": "dev"}).encode()) + "." + payload + ".",
        "alg_none_no_sig": b64url(json.dumps({"alg": "none"}).encode()) + "." + payload,
        "hs256_with_rsa_public_key": sign_hs(public_pem, dev_claims(), header={"alg": "HS256", "kid": "rsa1"}),
        "unknown_kid": sign_hs(secret, dev_claims(), header={"alg": "HS256", "kid": "nope"}),
        "kid_path": sign_hs(secret, dev_claims(), header={"alg": "HS256", "kid": "../../etc/passwd"}),
        "expired": sign_hs(secret, dev_claims(exp=1_600_000_000, iat=1_599_990_000)),
        "not_yet_valid": sign_hs(secret, dev_claims(nbf=4_000_000_000)),
        "wrong_issuer": sign_hs(secret, dev_claims(iss="someone-else")),
        "wrong_audience": sign_hs(secret, dev_claims(aud="other-app")),
        "bad_signature": header + "." + payload + "." + b64url(b"\0" * 32),
        "truncated": good[: len(good) // 2],
        "header_not_json": b64url(b"{not json") + "." + payload + "." + signature,
        "bad_tenant": sign_hs(secret, dev_claims(tenant="acme")),
        "tenant_uppercase": sign_hs(secret, dev_claims(tenant="t_ACME")),
        "no_exp": sign_hs(secret, {k: v for k, v in dev_claims().items() if k != "exp"}),
        "other_env": sign_hs(secret, dev_claims(env="prod")),
        "no_env": sign_hs(secret, {k: v for k, v in dev_claims().items() if k != "env"}),
        "rs256_alg_on_hmac_key": sign_rs(RSA_KEY, dev_claims(), kid="dev"),
        # Signed by a trusted key, so only the claims' checks stand between them and the kernel.
        "exp_past_int64": sign_hs(secret, dev_claims(exp=1e19)),
        "exp_huge_integer": sign_hs(secret, dev_claims(exp=2 ** 64)),
        "exp_negative_huge": sign_hs(secret, dev_claims(exp=-1e300)),
        "exp_string": sign_hs(secret, dev_claims(exp="4000000000")),
        "nbf_string": sign_hs(secret, dev_claims(nbf="4000000000")),
        "iat_string": sign_hs(secret, dev_claims(iat="now")),
        "iat_object": sign_hs(secret, dev_claims(iat={"t": 1})),
        "crit_unknown": sign_hs(secret, dev_claims(), header={"alg": "HS256", "kid": "dev", "crit": ["exp-x"], "exp-x": 1}),
        "crit_empty": sign_hs(secret, dev_claims(), header={"alg": "HS256", "kid": "dev", "crit": []}),
        "empty": "",
        "garbage": "a.b.c",
        "many_dots": "....",
    }


def test_hostile_tokens_are_401_and_never_logged(keyed_server):
    tokens = hostile_tokens(keyed_server)
    for name, token in tokens.items():
        response = keyed_server.get("/v1/threads/th_" + "a" * 26, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (name, response.status_code, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
    assert keyed_server.get("/healthz").status_code == 200  # still up
    log = keyed_server.log_text()
    for name, token in tokens.items():
        if len(token) > 12:
            assert token not in log, name
            assert token.split(".")[-1] not in log or len(token.split(".")[-1]) < 12, name


def test_token_in_query_string_is_not_logged(keyed_server):
    token = keyed_server.token()
    keyed_server.get(f"/v1/threads/th_{'a' * 26}?token={token}")
    assert token not in keyed_server.log_text()


def test_malformed_authorization_headers(keyed_server):
    for header in ("Bearer", "Bearer ", "Basic", "token-without-scheme", "Bearer  a b"):
        response = keyed_server.get("/v1/threads/th_" + "a" * 26, headers={"Authorization": header})
        assert response.status_code == 401, header


def test_unknown_scheme_is_401(keyed_server):
    response = keyed_server.get("/v1/threads/th_" + "a" * 26, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401


@pytest.mark.parametrize("section, mention", [
    ({}, "no keys"),
    ({"keys": [{"kid": "a", "alg": "HS256", "secret": "short"}]}, "keys[0].secret"),
    ({"keys": [{"kid": "../x", "alg": "HS256", "secret": "s" * 40}]}, "keys[0].kid"),
    ({"keys": [{"kid": "a", "alg": "none", "secret": "s" * 40}]}, "keys[0].alg"),
    ({"keys": [{"kid": "a", "alg": "RS256"}]}, "keys[0].pem"),
    ({"jwks_url": "ftp://example/jwks", "jwks_algorithms": ["RS256"]}, "jwks_url"),
    ({"jwks_url": "http://127.0.0.1:9/jwks"}, "jwks_algorithms"),
    ({"dev_secret_file": "/tmp/x", "leeway_seconds": 9999}, "leeway_seconds"),
    ({"dev_secret_file": "/tmp/x", "jwks_min_refresh_seconds": True}, "jwks_min_refresh_seconds"),
    ({"dev_secret_file": "/tmp/x", "claims": {"tenant": 5}}, "claims.tenant"),
    ({"dev_secret_file": "/tmp/x", "colour": "red"}, "colour"),
    ({"dev_secret_file": "/tmp/x", "require_exp": 1}, "require_exp"),
    ({"dev_secret_file": "jwt-dev-secret"}, 'dev_secret_file: "jwt-dev-secret" is relative'),
    ({"jwks_file": "keys/jwks.json", "jwks_algorithms": ["RS256"]}, 'jwks_file: "keys/jwks.json" is relative'),
])
def test_bad_jwt_config_is_refused_naming_the_key(data_dir, section, mention):
    config = data_dir / "config.json"
    config.write_text(json.dumps({"plugins": [{"path": "libNorthstarJWT.so", "config": section}]}))
    result = subprocess.run([str(__import__("conftest").NORTHSTAR), "config", "check", "--config", str(config),
                             "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "config-rejected" in result.stderr and mention in result.stderr, result.stderr
