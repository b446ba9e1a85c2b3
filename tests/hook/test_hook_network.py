"""End to end over a real network transport: ``git daemon`` on 127.0.0.1 runs receive-pack,
which runs the installed hook inside git's push quarantine."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envctl.testing.pushes import ENV, LOCK, Clone, Server, git

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daemon_url(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:git")
    port = _free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--enable=receive-pack", "--export-all", "--reuseaddr",
         f"--base-path={server.path.parent}", "--listen=127.0.0.1", f"--port={port}",
         str(server.path.parent)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"git daemon did not start: {proc.stderr!r}") from None
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/{server.path.name}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_push_over_git_daemon(server: Server, daemon_url: str, tmp_path: Path) -> None:
    path = tmp_path / "net-clone"
    git(tmp_path, "clone", "--quiet", daemon_url, str(path))
    clone = Clone(path, server.keys)
    clone.edit_tags(v3={"dependencies": ["numpy"]})
    good = clone.commit("Add v3")
    push = clone.push()
    assert push.accepted, push.stderr
    assert server.head() == good

    clone.edit_tags(v1={"dependencies": ["numpy"]})
    sha = clone.commit("Edit v1")
    push = clone.push()
    assert push.returncode != 0
    assert push.refusals == [
        f"envctl: refused refs/heads/main: {ENV} [v1]: frozen tag team/app:v1 cannot change: "
        f"its lock ({LOCK}) is committed (refused commit {sha[:12]}) [frozen-tag] — add tag v4 "
        "instead (only 'retired:' may change on a frozen tag)"
    ]
    assert server.head() == good
    # The refused objects stayed in the quarantine, which git removed.
    assert git(server.path, "cat-file", "-t", sha, check=False).returncode != 0
