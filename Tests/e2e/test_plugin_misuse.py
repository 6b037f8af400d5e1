"""What the host does about plugins that break their contract, and about
plugin files it cannot or should not load: every case gets a clear account
(the plugin, the route, the rule, what to do), and none hangs, crashes or
silently misleads the host.

The transport under test is Tests/e2e/plugins/misbehaving.c, one misuse per
route; variants of it are built with a sanitizer, an extra export, a
storage vtable declared as a transport, and a symbol no library provides.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, ROOT, Server, gauge, northstar, wait_for

HEADER = ROOT / "Sources" / "PluginAPI" / "include"
SOURCE = ROOT / "Tests" / "e2e" / "plugins" / "misbehaving.c"
EXPORTS = ROOT / "Plugins" / "exports.map"


def build(folder, name, *flags, source=SOURCE, version_script=True):
    """Builds the misbehaving transport (or `source`) with `flags`; returns the .so."""
    library = folder / f"lib{name}.so"
    command = ["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wno-unused-variable", "-shared", "-fPIC",
               "-I", str(HEADER), *flags, "-o", str(library), str(source)]
    if version_script:
        command.insert(-3, f"-Wl,--version-script={EXPORTS}")
    subprocess.run(command, check=True)
    return library


def config(folder, *entries, drain_deadline_seconds=None):
    """The dev jwt auth plus `entries` ({"name", "path"}), as a config file."""
    node = {"drain_deadline_seconds": drain_deadline_seconds} if drain_deadline_seconds else {}
    plugins = [{"name": "jwt", "path": "libNorthstarJWT.so", "config": {
        "dev_secret_file": "${data_dir}/jwt-dev-secret", "issuer": "northstar-dev", "audience": "northstar"}}]
    path = folder / "config.json"
    path.write_text(json.dumps({"node": node, "plugins": plugins + [{**e, "config": {}} for e in entries]}))
    return path


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    return build(tmp_path_factory.mktemp("misbehaving"), "Misbehaving")


def raw_get(port, path):
    """A GET on a fresh socket, left open; the caller closes it."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return connection


def test_a_client_that_leaves_before_any_answer_is_reported_to_the_plugin_at_once(data_dir, plugin):
    server = Server(data_dir, config(data_dir, {"name": "mis", "path": str(plugin)})).start()
    try:
        for count in (1, 2):
            waiting = raw_get(server.port, "/mis/silent")
            time.sleep(0.2)  # the plugin has the request and gives no answer
            waiting.close()
            deadline = time.monotonic() + 3  # far below the 30 s the host would wait for an answer
            while server.get("/mis/closed").json()["closed"] < count and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.get("/mis/closed").json()["closed"] == count
        # Told once, not again at the answer timeout: the plugin ended both exchanges when told.
        assert "did not answer within" not in server.log_text()
    finally:
        server.stop()


@pytest.mark.parametrize("route, says", [
    ("/mis/bad-status", "response_start with status 42; a response's status is 200 to 599"),
    ("/mis/write-first", "response_write before response_start"),
    ("/mis/end-first", "response_end without response_start"),
])
def test_an_exchange_misused_by_its_plugin_is_named_in_the_log(data_dir, plugin, route, says):
    server = Server(data_dir, config(data_dir, {"name": "mis", "path": str(plugin)})).start()
    try:
        answer = server.get(route)
        assert answer.status_code == 504 and answer.json()["error"]["code"] == "transport_no_answer"
        assert server.get(route).status_code == 504
        lines = [line for line in server.log_text().splitlines() if "plugin misused an exchange" in line]
        # Once per exchange, with the plugin and the route it came in on.
        assert len(lines) == 2, lines
        assert all("plugin=mis" in line and f"route=GET {route}" in line and says in line for line in lines)
    finally:
        server.stop()


def test_sigterm_ends_an_exchange_its_plugin_never_ends_at_the_drain_deadline(data_dir, plugin):
    server = Server(data_dir, config(data_dir, {"name": "mis", "path": str(plugin)}, drain_deadline_seconds=2)).start()
    client = raw_get(server.port, "/mis/deaf")
    assert b"200 OK" in client.recv(4096)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0
    took = time.monotonic() - signalled
    assert 1.5 < took < 12, took  # the deadline, then the host ends the request and stops
    client.settimeout(5)
    rest = b""
    while chunk := client.recv(4096):  # the host closed the connection
        rest += chunk
    client.close()
    log = server.log_text()
    assert re.search(r"plugin=mis route=GET /mis/deaf .*never ended its exchange; the host ended it at the drain deadline", log), log
    assert "plugin=mis [NorthstarHost] plugin stopped" in log and "stopped" in log.splitlines()[-1]


def test_a_sigterm_with_nothing_open_stops_at_once(data_dir, plugin):
    server = Server(data_dir, config(data_dir, {"name": "mis", "path": str(plugin)}, drain_deadline_seconds=30)).start()
    assert server.get("/mis/closed").status_code == 200
    signalled = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - signalled < 10  # not the 30 s deadline: nothing was open


def test_config_refuses_a_bad_drain_deadline(data_dir):
    for value in (0, 301, "ten"):
        path = data_dir / "config.json"
        path.write_text(json.dumps({"node": {"drain_deadline_seconds": value}}))
        result = northstar("config", "check", "--config", path, "--data-dir", data_dir)
        assert result.returncode != 0 and "node.drain_deadline_seconds" in result.stderr, result.stderr


def inspect(*paths):
    result = northstar("plugins", "inspect", "--json", *paths)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def test_a_plugin_built_with_a_sanitizer_is_refused_without_ending_the_process(tmp_path):
    library = build(tmp_path, "Sanitized", "-fsanitize=address")
    result, reports = inspect(library, BIN / "libNorthstarSSE.so")
    assert reports is not None, result.stderr  # the host lived to report both files
    assert reports[0]["status"] == "refused" and reports[0]["rule"] == "sanitizer-runtime"
    assert "libasan" in reports[0]["message"] and "LD_PRELOAD" in reports[0]["remedy"]
    assert reports[1]["status"] == "ok"


def test_a_missing_symbol_is_explained_as_a_missing_library(tmp_path):
    source = tmp_path / "needs_symbol.c"
    source.write_text(f'#include "{SOURCE}"\nextern int sha256_from_a_library_not_linked(void);\n'
                      "int use_it(void) { return sha256_from_a_library_not_linked(); }\n")
    library = build(tmp_path, "NeedsSymbol", source=source)
    result, reports = inspect(library)
    assert result.returncode == 1
    report = reports[0]
    assert report["rule"] == "dlopen-failed" and "sha256_from_a_library_not_linked" in report["message"]
    assert "link the library that defines it" in report["remedy"] and "ldd -r" in report["remedy"]
    assert "truncated or foreign" not in report["remedy"]


def test_a_missing_file_is_not_blamed_on_the_build(tmp_path):
    result, reports = inspect(tmp_path / "libThirdParty.so")
    assert reports[0]["rule"] == "file-missing"
    assert "correct the path" in reports[0]["remedy"] and "node.plugin_dir" in reports[0]["remedy"]
    assert not reports[0]["remedy"].startswith("build the plugins")


def test_a_storage_vtable_declared_as_a_transport_is_refused(tmp_path):
    result, reports = inspect(build(tmp_path, "WrongKind", "-DWRONG_KIND"))
    assert result.returncode == 1
    assert reports[0]["rule"] == "vtable-mismatch"
    assert "a storage vtable is" in reports[0]["message"] and "ns_plugin_info.kind" in reports[0]["message"]


def test_every_shipped_plugin_passes_the_vtable_and_export_checks():
    shipped = sorted(BIN.glob("libNorthstar*.so"))
    assert len(shipped) >= 7
    result, reports = inspect(*shipped)
    assert result.returncode == 0, result.stdout
    assert all(r["status"] == "ok" and r["warnings"] == [] for r in reports), reports


def test_extra_exports_are_reported_by_inspect_config_check_and_serve(tmp_path):
    library = build(tmp_path, "ExtraExport", "-DEXPORT_EXTRA", version_script=False)
    result, reports = inspect(library)
    assert result.returncode == 0 and reports[0]["status"] == "ok"
    assert any("misbehaving_helper" in w and "version script" in w for w in reports[0]["warnings"]), reports
    data = tmp_path / "data"
    data.mkdir()
    path = config(data, {"name": "mis", "path": str(library)})
    checked = northstar("config", "check", "--config", path, "--data-dir", data)
    assert checked.returncode == 0 and "warning: plugin mis" in checked.stdout and "misbehaving_helper" in checked.stdout
    server = Server(data, path).start()
    try:
        assert re.search(r"warning .*plugin=mis .*plugin loaded with a problem: it exports 1 symbol", server.log_text())
    finally:
        server.stop()


def test_token_runs_no_code_of_plugins_other_than_auth(data_dir, tmp_path):
    sanitized = build(tmp_path, "Sanitized", "-fsanitize=address")
    path = config(data_dir, {"name": "mis", "path": str(sanitized)}, {"name": "gone", "path": str(tmp_path / "libGone.so")})
    minted = northstar("token", "--tenant", "t_alpha", "--user", "alice", "--config", path, "--data-dir", data_dir)
    assert minted.returncode == 0, minted.stderr
    assert minted.stdout.count(".") == 2  # a JWT
    # The node itself still refuses the set, with the reason.
    checked = northstar("config", "check", "--config", path, "--data-dir", data_dir)
    assert checked.returncode != 0 and "sanitizer-runtime" in checked.stderr + checked.stdout


def test_the_request_helpers_read_decode_and_refuse_a_request_kept_past_on_request(data_dir, plugin):
    server = Server(data_dir, config(data_dir, {"name": "mis", "path": str(plugin)})).start()
    try:
        seen = server.get("/mis/helpers?q=a%20b+c%2Bd&access_token=tok", headers={"x-test": "yes"}).json()
        assert seen["q_status"] == 0 and seen["q"] == "a b c+d"           # percent- and form-decoded
        assert seen["h_status"] == 0 and seen["h"] == "yes"               # any case
        assert seen["missing"] == 4                                       # NS_ERR_NOT_FOUND
        assert seen["cred"] == 0 and seen["source"] == 2 and seen["scheme"] == "Bearer" and seen["value"] == "tok"
        assert seen["late"] == 1                                          # after on_request: NS_ERR_INVALID_ARGUMENT
        header = server.get("/mis/helpers?access_token=tok", headers={"Authorization": "ApiKey  k1 "}).json()
        assert header["cred"] == 0 and header["source"] == 1 and header["scheme"] == "ApiKey" and header["value"] == "k1"
        assert server.get("/mis/helpers", headers={"Authorization": "Bearer"}).json()["cred"] == 1   # no value
        assert server.get("/mis/helpers").json()["cred"] == 4                                       # none at all
        # A broken escape, sent as is (requests would re-quote it).
        raw = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        raw.request("GET", "/mis/helpers?q=%zz")
        assert json.loads(raw.getresponse().read())["q_status"] == 1
        raw.close()
    finally:
        server.stop()


def test_response_error_with_a_status_that_is_no_error_is_logged_and_the_exchange_still_ends(data_dir, plugin):
    server = Server(data_dir, config(data_dir, {"name": "mis", "path": str(plugin)})).start()
    try:
        answer = server.get("/mis/error-200")
        assert answer.status_code == 504 and answer.json()["error"]["code"] == "transport_no_answer"
        assert "response_error with status 200; an error's status is 400 to 599" in server.log_text()
        # The exchange is counted until its last reference goes, just after the answer.
        assert wait_for(lambda: gauge(server, "northstar_transport_exchanges_open") == 0, seconds=5)
    finally:
        server.stop()
