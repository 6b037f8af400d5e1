"""A PostgreSQL server for the tests: Debian's binaries (scripts/bootstrap
test installs them), a new cluster in a temporary folder, run as an
unprivileged user (`nobody` when the tests run as root), listening on
127.0.0.1 only. A missing PostgreSQL is a failure, never a skip."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


def _binaries():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    assert found, "PostgreSQL is required (scripts/bootstrap test installs Debian's postgresql)"
    return os.path.dirname(found[-1])


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One cluster; `url(database)` gives a connection URL for the server."""

    user = "northstar"

    def __init__(self):
        self.bin = _binaries()
        self.folder = tempfile.mkdtemp(prefix="northstar-pg-")
        self.data = os.path.join(self.folder, "data")
        self.port = _free_port()
        # PostgreSQL refuses to run as root.
        self.run_as = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            self.run_as = nobody
        self._run("initdb", "-D", self.data, "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-instructions")
        self._start()
        self.databases = 0

    def _start(self):
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.folder, "log"), "-w", "-t", "60", "start", "-o",
                  f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder} "
                  "-c max_connections=200 -c fsync=on -c synchronous_commit=on")

    def _run(self, program, *args):
        command = [os.path.join(self.bin, program), *args]
        kwargs = {}
        if self.run_as:
            uid, gid = self.run_as.pw_uid, self.run_as.pw_gid
            kwargs["preexec_fn"] = lambda: (os.setgid(gid), os.setuid(uid))
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.folder, timeout=120, **kwargs)
        assert result.returncode == 0, f"{program} failed: {result.stderr or result.stdout}"
        return result.stdout

    def create_database(self):
        """A new, empty database; returns its URL."""
        self.databases += 1
        name = f"northstar_{self.databases}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, database):
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def psql(self, database, sql):
        return self._run("psql" if os.path.exists(os.path.join(self.bin, "psql")) else shutil.which("psql"),
                         "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
                         "-v", "ON_ERROR_STOP=1", "-At", "-c", sql)

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except AssertionError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def stop_only(self):
        """Stops the server and keeps its data (`start_again` brings it back)."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def start_again(self):
        self._start()
