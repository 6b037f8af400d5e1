"""The gcs plugin's service-account authentication, end to end: it signs
an RS256 assertion with the key file's private key, exchanges it at the
key file's `token_uri` (a local token endpoint here, which checks the
signature and claims with the public key), caches the access token, and
sends it on every storage request (recorded by a proxy in front of the
GCS emulator)."""
import base64
import json
import time
from urllib.parse import parse_qs

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import QuietHandler, Server, bearer, local_http
from storage_backends import BUCKET, GCSBackend, write_config


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenEndpoint:
    """An OAuth 2.0 token endpoint that accepts only assertions signed by `public_key`."""

    def __init__(self, public_key):
        self.exchanges, self.problems = [], []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                assertion = form["assertion"][0]
                head, claims, signature = assertion.split(".")
                try:
                    public_key.verify(unb64(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
                except Exception as error:  # a bad signature is a refused exchange
                    outer.problems.append(f"signature: {error!r}")
                    self.send_response(401)
                    self.end_headers()
                    return
                outer.exchanges.append({"grant": form["grant_type"][0], "header": json.loads(unb64(head)),
                                        "claims": json.loads(unb64(claims))})
                self.send_json(200, {"access_token": "tok-123", "expires_in": 3600, "token_type": "Bearer"})

        self.httpd, base = local_http(Handler)
        self.url = f"{base}/token"


class RecordingProxy:
    """Forwards to the emulator and records each request's Authorization header."""

    def __init__(self, target):
        self.seen = []
        outer = self

        class Handler(QuietHandler):
            def forward(self):
                outer.seen.append(self.headers.get("Authorization"))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
                answer = requests.request(self.command, target + self.path, data=body, headers=headers, allow_redirects=False)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value.replace(target, outer.url))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.httpd, self.url = local_http(Handler)


def test_service_account_token_is_exchanged_cached_and_sent(data_dir):
    emulator = GCSBackend(data_dir)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = TokenEndpoint(key.public_key())
    proxy = RecordingProxy(emulator.url)
    credentials = data_dir / "service-account.json"
    credentials.write_text(json.dumps({
        "type": "service_account", "client_email": "northstar@example.iam.gserviceaccount.com", "token_uri": tokens.url,
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()}))
    plugin = {"name": "gcs", "path": "libNorthstarGCS.so",
              "config": {"bucket": BUCKET, "endpoint": proxy.url, "credentials_file": str(credentials)}}
    server = Server(data_dir, config=write_config(data_dir, [plugin]), env={"STORAGE_EMULATOR_HOST": ""}).start()
    try:
        headers = bearer(server.token())
        for index in range(3):
            asset = server.post(f"/v1/artifacts?filename=f{index}", data=b"data", headers=headers)
            assert asset.status_code == 201, asset.text
        assert server.get(f"/v1/artifacts/{asset.json()['asset_id']}/f2", headers=headers).content == b"data"
        assert tokens.problems == []
        assert len(tokens.exchanges) == 1  # cached for its lifetime
        exchange = tokens.exchanges[0]
        assert exchange["grant"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        assert exchange["header"]["alg"] == "RS256"
        claims = exchange["claims"]
        assert claims["iss"] == "northstar@example.iam.gserviceaccount.com" and claims["aud"] == tokens.url
        assert claims["scope"] == "https://www.googleapis.com/auth/devstorage.read_write"
        assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 60
        assert proxy.seen and all(value == "Bearer tok-123" for value in proxy.seen)
    finally:
        server.kill()
        emulator.stop()
        tokens.httpd.shutdown()
        proxy.httpd.shutdown()


def test_bad_gcs_config_is_refused_at_start(data_dir):
    emulated = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}  # no credentials needed, nothing contacted
    cases = [({"bucket": BUCKET}, {"STORAGE_EMULATOR_HOST": ""}, "credentials_file: required"),
             ({"bucket": BUCKET, "credentials_file": str(data_dir / "missing.json")}, {}, "cannot read"),
             ({"bucket": "Bad_Bucket!"}, emulated, "bucket:"),
             ({"bucket": BUCKET, "chunk_size_bytes": 1000}, emulated, "chunk_size_bytes"),
             ({"bucket": BUCKET, "chunk_size_bytes": 300000}, emulated, "multiple of 262144"),
             ({"bucket": BUCKET, "colour": "blue"}, emulated, "unknown key \"colour\"")]
    for index, (config, env, words) in enumerate(cases):
        directory = data_dir / f"case{index}"
        directory.mkdir()
        plugin = {"name": "gcs", "path": "libNorthstarGCS.so", "config": config}
        server = Server(directory, config=write_config(directory, [plugin]), env=env)
        try:
            server.start(timeout=15)
            raise AssertionError(f"started with {config}")
        except RuntimeError as refused:
            assert words in str(refused), (config, str(refused)[-400:])
