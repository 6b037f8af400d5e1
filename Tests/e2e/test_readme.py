"""The README as a newcomer runs it: a fresh clone, the run command exactly as
printed, then every command of the five-minute tour, read from the README
itself, each checked against what its comment says it answers.

How a tour comment is read (the README's convention, kept plain for people):
- a comment that starts with a JSON object (`# {"status":"ok"}`) means the
  answer is JSON holding at least those members; `...` stands for the rest;
- every `backticked` fragment in a comment must appear in the output;
- a command that watches a stream for a bounded time (`--max-time`) may end
  with curl's timeout status (28); every other command must succeed.

The clone is built from scratch (a few minutes on two cores): that is the
point, since a warm tree hides a missing step. Under CI the checkout is
itself a fresh clone, which this test run has just built from scratch with
the same flags, so the tour runs in it and that build is not paid twice
(see `tour_checkout`).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import ROOT

README = ROOT / "README.md"
MARKER = "@@northstar-tour-command-done"


def code_blocks(markdown):
    """(info string, body) for every fenced block, in order."""
    return re.findall(r"^ {0,3}```([^\n]*)\n(.*?)^ {0,3}```", markdown, flags=re.S | re.M)


def section(markdown, heading):
    """The text under a `## heading`, up to the next `## `."""
    start = markdown.index(f"## {heading}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end >= 0 else len(markdown)]


def split_commands(block):
    """Shell commands of a block: lines joined until bash reads them as complete."""
    commands, pending = [], []
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        text = "\n".join(pending)
        if line.rstrip().endswith("\\"):
            continue
        if subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True).returncode == 0:
            commands.append(text)
            pending = []
    assert not pending, f"an unfinished command in the README: {pending}"
    return commands


def trailing_comment(command):
    """The comment after the command on its last line, if any."""
    last = command.splitlines()[-1]
    # A `#` after white space starts a comment; `#` inside quotes does not appear in the tour.
    match = re.search(r"\s#\s(.*)$", last)
    return match.group(1).strip() if match else ""


def json_prefix(comment):
    """The JSON object a comment starts with, with `...` dropped, or None."""
    if not comment.startswith("{"):
        return None
    depth = 0
    for index, char in enumerate(comment):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            text = comment[:index + 1]
            text = re.sub(r",\s*\.\.\.", "", text).replace("...", "")
            return json.loads(text)
    raise AssertionError(f"unbalanced JSON in the README comment: {comment}")


def contains(actual, expected):
    """True when `actual` holds every member of `expected` (recursively for objects)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    return actual == expected


def check(command, output, status):
    comment = trailing_comment(command)
    bounded = "--max-time" in command
    assert status == 0 or (bounded and status == 28), f"`{command}` exited {status}:\n{output}"
    expected = json_prefix(comment)
    if expected is not None:
        answer = json.loads(output.strip().splitlines()[-1])
        assert contains(answer, expected), f"`{command}` answered {answer}, the README says {comment}"
    for fragment in re.findall(r"`([^`]+)`", comment):
        assert fragment in output, f"`{command}`: the README promises `{fragment}`, got:\n{output}"


def test_readme_starts_with_two_commands_run_and_test():
    """The README's first block holds exactly the run and the test command."""
    blocks = code_blocks(README.read_text())
    commands = split_commands(blocks[0][1])
    assert [c.split("#")[0].strip() for c in commands] == ["./scripts/run", "./scripts/test"]
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec scripts/test")


def test_the_readme_tour_works_on_a_fresh_clone():
    """Clone, run the first command as printed, paste the tour: every answer is the documented one."""
    markdown = README.read_text()
    run_command = split_commands(code_blocks(markdown)[0][1])[0].split("#")[0].strip()
    tour = split_commands(code_blocks(section(markdown, "Five-minute tour"))[0][1])
    assert len(tour) >= 15, "the tour lost its commands"

    workdir = Path(tempfile.mkdtemp(prefix="northstar-readme-"))
    clone = tour_checkout(workdir)
    server = None
    try:
        log = open(workdir / "run.log", "w")
        # The run command exactly as printed; the port goes through the extra
        # arguments it passes on to `northstar serve`.
        server = subprocess.Popen(f"{run_command} --listen 127.0.0.1:0", shell=True, cwd=clone,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        port = wait_for_port(workdir / "run.log", server, timeout=1500)

        script = ["set -u"]
        for command in tour:
            script += [command.replace("localhost:8080", f"localhost:{port}"), f'printf "\\n{MARKER} %d\\n" $?']
        result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=clone, capture_output=True, text=True,
                                timeout=300, env={**os.environ, "NO_COLOR": "1"})
        outputs = re.split(rf"^{MARKER} (\d+)$\n?", result.stdout, flags=re.M)
        assert len(outputs) == 2 * len(tour) + 1, f"the tour stopped early:\n{result.stdout}\n{result.stderr}"
        for index, command in enumerate(tour):
            check(command, outputs[2 * index], int(outputs[2 * index + 1]))

        # The data directory is the relative default, resolved where the server started.
        assert (clone / ".northstar" / "northstar.sqlite").exists()
        assert (clone / ".northstar" / "objects").is_dir()
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, 15)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
        if clone == ROOT:
            shutil.rmtree(ROOT / ".northstar", ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def tour_checkout(workdir):
    """Where the tour runs: a fresh clone of this repository, or, under CI,
    this checkout itself when it is exactly what a fresh clone holds.

    CI runs the test command on a fresh clone, and `swift build --build-tests`
    has just built it from scratch; the run command's `swift build` shares that
    build (same configuration and flags), so it takes a second instead of the
    minutes a second clone takes to build on two cores. A tree with changes or
    untracked files is not a fresh clone, and a tree with a data directory
    (`.northstar`, a developer's own, or an earlier run's) would hide the run
    command's first start: both get the clone.
    """
    if os.environ.get("CI") == "true" and not (ROOT / ".northstar").exists():
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout
        if not changed.strip():
            return ROOT
    clone = workdir / "northstar"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    return clone


def wait_for_port(log_path, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"port=(\d+) .*listening", log_path.read_text())
        if match:
            port = int(match.group(1))
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
            return port
        if process.poll() is not None:
            raise AssertionError(f"the run command exited {process.returncode}:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"the run command did not start a server in {timeout} s:\n{log_path.read_text()[-4000:]}")


def test_every_runnable_doc_block_is_run_or_marked_as_an_illustration():
    """A shell block in the docs is run by a test (named in its info string) or says it is an illustration."""
    documents = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "Benchmarks" / "README.md",
                 ROOT / "clients" / "js" / "README.md"]
    unmarked = []
    for document in documents:
        for info, body in code_blocks(document.read_text()):
            words = info.split()
            if not words or words[0] not in ("sh", "bash", "shell", "console"):
                continue
            if "illustration" in words:
                continue
            tested = [w.split("=", 1)[1] for w in words if w.startswith("tested-by=")]
            if tested:
                for name in tested:
                    path = ROOT / name.split("::")[0]
                    assert path.exists(), f"{document.name}: tested-by={name} names no file"
                    if "::" in name:
                        assert f"def {name.split('::')[1]}(" in path.read_text(), f"{document.name}: no test {name}"
                continue
            unmarked.append(f"{document.relative_to(ROOT)}: {body.splitlines()[0]}")
    assert not unmarked, "shell blocks neither run by a test nor marked `illustration`:\n" + "\n".join(unmarked)


def test_every_error_code_the_host_answers_is_in_the_api_error_table():
    """Codes are stable and docs/api.md lists them: every code the host's
    sources give an error (`code: "..."`, and the head guard's
    `(.status, "code", "message")`) is in its error table."""
    text = (ROOT / "docs" / "api.md").read_text()
    table = text[text.index('Always `{"error"'):text.index("## Events and resume")]
    documented = set(re.findall(r"`([a-z_]+)`", table))
    pattern = re.compile(r'code: "([a-z_]+)"|\(\.[a-zA-Z]+, "([a-z_]+)", "|code: [^\n]*\? "([a-z_]+)" : "([a-z_]+)"')
    found = {}
    for source in sorted((ROOT / "Sources" / "Host").rglob("*.swift")):
        for match in pattern.finditer(source.read_text()):
            for code in filter(None, match.groups()):
                found.setdefault(code, source.relative_to(ROOT))
    assert len(found) >= 40, f"the sources were not read: {found}"
    missing = {code: str(where) for code, where in found.items() if code not in documented}
    assert not missing, f"codes the host answers that docs/api.md's error table does not list: {missing}"


def test_every_metric_the_node_records_is_named_in_the_api_docs():
    """Operators read /metrics from docs/api.md: every series name the host
    and the plugins record (`"northstar_..."` in their sources) is there."""
    text = (ROOT / "docs" / "api.md").read_text()
    found = {}
    for source in sorted([*(ROOT / "Sources").rglob("*.swift"), *(ROOT / "Plugins").rglob("*.swift")]):
        for name in re.findall(r'"(northstar_[a-z_]+)"', source.read_text()):
            found.setdefault(name, source.relative_to(ROOT))
    assert len(found) >= 30, f"the sources were not read: {found}"
    missing = {name: str(where) for name, where in found.items() if name not in text}
    assert not missing, f"metrics the node records that docs/api.md does not name: {missing}"
