/// The embedded default configuration, used when `serve` gets no `--config`.
///
/// Its text is `Deploy/northstar.dev.json`, byte for byte; a test keeps the
/// two identical. It holds no secret: the JWT dev secret is generated into
/// the data directory on first start.
enum DevDefaultConfig {
    static let text = """
    {
      "node": {
        "env": "dev",
        "listen": "127.0.0.1:8080",
        "data_dir": ".northstar",
        "client_dir": "clients/js"
      },
      "store": {
        "sqlite_path": "northstar.sqlite",
        "retain_events_per_stream": 0
      },
      "limits": {
        "max_body_bytes": 1048576
      },
      "auth": {
        "chain": ["jwt"]
      },
      "plugins": [
        {
          "name": "jwt",
          "path": "libNorthstarJWT.so",
          "config": {
            "dev_secret_file": "${data_dir}/jwt-dev-secret",
            "issuer": "northstar-dev",
            "audience": "northstar"
          }
        },
        {
          "name": "sse",
          "path": "libNorthstarSSE.so",
          "config": {
            "heartbeat_seconds": 30,
            "allow_query_token": true
          }
        },
        {
          "name": "ws",
          "path": "libNorthstarWS.so",
          "config": {
            "allow_query_token": true
          }
        },
        {
          "name": "fs",
          "path": "libNorthstarFS.so",
          "config": {
            "root": "${data_dir}/objects",
            "bucket": "northstar"
          }
        }
      ]
    }

    """
}
