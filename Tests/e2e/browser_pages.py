"""Pages for headless Chromium: a small site on 127.0.0.1 (another origin
than the server) that serves test pages importing the browser client from the
server, mints dev tokens for them, and collects what they report."""
import atexit
import json
import os
import queue
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from conftest import QuietHandler, dev_claims, dev_secret, local_http, sign_hs

# Every page gets these: `report(kind, body)`, the params from its URL, and a
# token function that asks the site for a fresh dev token (counted per page).
PAGE = """<!doctype html><meta charset="utf-8"><title>%(name)s</title>
<body style="margin:0"><div id="pad" style="width:400px;height:300px;touch-action:none"></div>
<script type="module">
import * as ns from %(module)s;
const params = %(params)s;
const name = %(name_json)s;
const report = (kind, body = {}) => fetch('/report', {method: 'POST', body: JSON.stringify({page: name, kind, ...body})});
let tokens = 0;
const flag = async name => { while (!(await fetch('/flag/' + name)).ok) await new Promise(r => setTimeout(r, 30)); };
const token = async () => { tokens += 1; return (await fetch('/token?' + new URLSearchParams(params.token ?? {}))).text(); };
window.onerror = (message, source, line) => report('page-error', {message: String(message), line});
window.onunhandledrejection = event => report('page-error', {message: String(event.reason?.stack ?? event.reason)});
try {
%(script)s
} catch (error) {
  report('page-error', {message: String(error?.stack ?? error), code: error?.code});
}
</script>"""


class PageSite:
    """Serves `/<name>` pages, `/token` (dev tokens for the server's secret)
    and `/report` (collected per page and kind)."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.pages = {}
        self.reports = queue.Queue()
        self.flags = set()
        outer = self

        class Handler(QuietHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/token":
                    query = dict(urllib.parse.parse_qsl(url.query))
                    claims = dev_claims(tenant=query.get("tenant", "t_alpha"), user=query.get("user", "alice"),
                                        ttl=int(query.get("ttl", 3600)), env=query.get("env", "dev"))
                    secret = b"not the server's secret" if query.get("forged") else dev_secret(outer.data_dir)
                    body = sign_hs(secret, claims).encode()
                    content_type = "text/plain"
                elif url.path.startswith("/flag/"):
                    # A page waits for the test: 200 once the flag is raised.
                    self.send_response(200 if url.path[6:] in outer.flags else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                elif url.path in outer.pages:
                    body, content_type = outer.pages[url.path].encode(), "text/html"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                outer.reports.put(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

        self.httpd, self.origin = local_http(Handler)
        self.seen = []
        self.browsers = []

    def add(self, name, server_url, script, **params):
        """A page that imports the client from the server and runs `script`."""
        self.pages["/" + name] = PAGE % {
            "name": name, "name_json": json.dumps(name), "module": json.dumps(server_url + "/client/northstar.js"),
            "params": json.dumps({"server": server_url, **params}), "script": script}
        return self.origin + "/" + name

    def open(self, name):
        self.browsers.append(chromium(self.origin + "/" + name))

    def next_report(self, timeout=30):
        """The next report, whatever it is (for pages that report plain objects)."""
        return self.reports.get(timeout=timeout)

    def wait(self, page, kind, timeout=30):
        """The next report of `kind` from `page`; a page error fails at once."""
        deadline = time.monotonic() + timeout
        for report in self.seen:
            if report["page"] == page and report["kind"] == kind:
                self.seen.remove(report)
                return report
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind!r} report from {page!r} in {timeout} s; saw {self.seen}"
            try:
                report = self.reports.get(timeout=left)
            except queue.Empty:
                continue
            assert report["kind"] != "page-error", f"{report['page']}: {report}"
            if report["page"] == page and report["kind"] == kind:
                return report
            self.seen.append(report)

    def close(self):
        for browser in self.browsers:
            browser.kill()
            browser.wait(timeout=10)
        self.httpd.shutdown()


# Each browser's profile (a few MB) is removed when the tests end, by then
# every browser was killed; left behind, they filled /tmp run after run.
PROFILES = []
atexit.register(lambda: [shutil.rmtree(profile, ignore_errors=True) for profile in PROFILES])


def chromium(url, *extra):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is required (scripts/bootstrap installs Debian's chromium)"
    profile = tempfile.mkdtemp(prefix="northstar-chromium-")
    PROFILES.append(profile)
    # Its scratch files too (it leaves them when it is ended), removed with the profile.
    scratch = os.path.join(profile, "tmp")
    os.mkdir(scratch)
    return subprocess.Popen([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             # A hidden page must keep its timers: the tests and benchmarks time them.
                             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                             f"--user-data-dir={profile}", *extra, url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": scratch})
