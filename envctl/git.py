"""The one module that runs git. Plain ``git`` subprocesses: fast, and inside a pre-receive
hook they inherit the quarantine environment that makes pushed objects visible.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from envctl.errors import GitError

# Variables that would make a git call look at another repository than the one we name.
# Inside a hook they are how git passes the quarantine: ``scrub=False`` keeps them.
_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")


def git_env(*, scrub: bool = True, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if scrub:
        for var in _REPO_VARS:
            env.pop(var, None)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


def run_git(
    repo: str | os.PathLike[str],
    args: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    scrub: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 60,
) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(
            ["git", "-C", os.fspath(repo), *args],
            input=input,
            capture_output=True,
            env=git_env(scrub=scrub, extra=env),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed", fix="install git and try again") from None
    except subprocess.TimeoutExpired:
        raise GitError(
            f"git {' '.join(args[:2])} did not answer within {timeout} s", rule="git-timeout"
        ) from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(
            f"git {' '.join(args)} failed: {message[-1] if message else proc.returncode}",
            file=os.fspath(repo),
        )
    return proc


def git_text(repo: str | os.PathLike[str], args: Sequence[str], **kwargs: object) -> str:
    return run_git(repo, args, **kwargs).stdout.decode("utf-8", "replace")  # type: ignore[arg-type]


def rev_parse(repo: str | os.PathLike[str], rev: str, *, scrub: bool = True) -> str:
    proc = run_git(repo, ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], check=False,
                   scrub=scrub)
    if proc.returncode != 0:
        raise GitError(
            f"unknown git revision {rev!r}",
            file=os.fspath(repo),
            rule="unknown-revision",
            fix="give a commit, branch or tag that exists (git log --oneline)",
        )
    return proc.stdout.decode().strip()


def toplevel(path: Path) -> Path | None:
    proc = run_git(path, ["rev-parse", "--show-toplevel"], check=False)
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.decode().strip())


#: Requests written to ``git cat-file --batch`` before reading its answers: within any
#: pipe's buffer (64 kB on Linux, 16 kB at the least on macOS), about 40 paths a trip.
_BATCH_BYTES = 4 * 1024


def _request(object_name: str) -> bytes | None:
    """The request line for ``object_name``; None for a name git would read as another
    request (a newline in it; git also drops a trailing CR): every later answer would
    belong to the wrong request. Such a path names nothing envctl reads anyway."""
    if "\n" in object_name or object_name.endswith("\r"):
        return None
    # Paths from git arrive with undecodable bytes as surrogates: send git its own bytes.
    return object_name.encode("utf-8", "surrogateescape") + b"\n"


class BlobReader:
    """Reads many files of one revision through a single ``git cat-file --batch`` process.

    One process for the whole run keeps the hook's cost proportional to the files it
    reads, not to a process start per file.
    """

    def __init__(self, repo: str | os.PathLike[str], *, scrub: bool = True) -> None:
        self.repo = os.fspath(repo)
        self._proc: subprocess.Popen[bytes] | None = None
        self._scrub = scrub

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(
                ["git", "-C", self.repo, "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=git_env(scrub=self._scrub),
            )
        return self._proc

    def read(self, object_name: str) -> bytes | None:
        """Content of ``rev:path`` (or any object name), or None when missing."""
        request = _request(object_name)
        if request is None:
            return None
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(request)
        proc.stdin.flush()
        header = proc.stdout.readline().decode("utf-8", "replace").rstrip("\n")
        if header.endswith(" missing") or header.endswith(" ambiguous") or not header:
            return None
        _, kind, size = header.rsplit(" ", 2)
        data = proc.stdout.read(int(size))
        proc.stdout.read(1)  # the newline git writes after every object
        return data if kind == "blob" else None

    def read_many(self, object_names: Sequence[str]) -> list[bytes | None]:
        """:meth:`read` of each name, in order, many requests per round trip: reading
        67,000 metas of a revision one request at a time waited on the pipe more than it
        parsed. Requests go in batches small enough for the pipe's buffer, so writing them
        never waits on git, which may be blocked writing answers not yet read."""
        out: list[bytes | None] = [None] * len(object_names)
        batch: list[bytes] = []
        where: list[int] = []
        size = 0
        for index, name in enumerate(object_names):
            line = _request(name)
            if line is None:
                continue
            if batch and size + len(line) > _BATCH_BYTES:
                for at, data in zip(where, self._answer(batch), strict=True):
                    out[at] = data
                batch, where, size = [], [], 0
            batch.append(line)
            where.append(index)
            size += len(line)
        if batch:
            for at, data in zip(where, self._answer(batch), strict=True):
                out[at] = data
        return out

    def _answer(self, requests: list[bytes]) -> list[bytes | None]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"".join(requests))
        proc.stdin.flush()
        out: list[bytes | None] = []
        for _ in requests:
            header = proc.stdout.readline().decode("utf-8", "replace").rstrip("\n")
            if header.endswith(" missing") or header.endswith(" ambiguous") or not header:
                out.append(None)
                continue
            _, kind, size = header.rsplit(" ", 2)
            data = proc.stdout.read(int(size))
            proc.stdout.read(1)
            out.append(data if kind == "blob" else None)
        return out

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            self._proc.wait(timeout=10)
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
