"""Real git for tests of the pre-receive hook and ``envctl check``: SSH signing keys, a
bare server with the hook installed, and clones that commit (signed or not) and push.

The fixtures using these live in ``tests/hook/conftest.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envctl import yamlio
from envctl.testing.handlocks import config_yaml, env_yaml, lock_files

CI = "ci@example.org"
ALICE = "alice@example.org"  # an allowed signer too (a human release manager)
ENV = "envs/team/app.yaml"
LOCK = "locks/team/app/v1.conda-lock.yml"
META = "locks/team/app/v1.meta.yaml"
IDENTITY_VARS = ("GL_USERNAME", "GITHUB_USER_LOGIN", "REMOTE_USER", "ENVCTL_PUSHER")


@dataclass(frozen=True)
class Key:
    private: Path
    public: str  # the key line


@dataclass(frozen=True)
class Keys:
    ci: Key
    alice: Key
    mallory: Key


def make_keys(folder: Path) -> Keys:
    made = {}
    for name in ("ci", "alice", "mallory"):
        path = folder / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
        )
        made[name] = Key(path, (folder / f"{name}.pub").read_text().strip())
    return Keys(**made)


def git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


class Clone:
    """A work tree cloned from the server: edit files, commit, push."""

    def __init__(self, path: Path, keys: Keys) -> None:
        self.path = path
        self.keys = keys

    def git(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return git(self.path, *args, **kwargs)  # type: ignore[arg-type]

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text()

    def write(self, rel: str, text: str | bytes) -> None:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    def remove(self, rel: str) -> None:
        (self.path / rel).unlink()

    def files(self) -> dict[str, str]:
        out = {}
        for path in self.path.rglob("*"):
            rel = path.relative_to(self.path).as_posix()
            if path.is_file() and not rel.startswith(".git/"):
                out[rel] = path.read_text()
        return out

    def edit_tags(self, rel: str = ENV, **tags: object) -> None:
        data = yamlio.load(self.read(rel))
        for tag, spec in tags.items():
            if spec is None:
                data["tags"].pop(tag, None)
            else:
                data["tags"][tag] = spec
        self.write(rel, yamlio.dump(data))

    def add_lock(self, alias: str, **kwargs: object) -> None:
        for rel, text in lock_files(self.files(), alias, **kwargs).items():  # type: ignore[arg-type]
            self.write(rel, text)

    def commit(
        self, message: str = "change", *, key: Key | None = None, committer: str | None = None
    ) -> str:
        self.git("add", "-A")
        args = ["commit", "--quiet", "--allow-empty", "-m", message]
        if key is not None:
            args = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}", *args, "-S"]
        env = {"GIT_COMMITTER_EMAIL": committer} if committer else None
        self.git(*args, env=env)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def ci_commit(self, message: str = "Lock") -> str:
        """A commit as the CI bot makes it: signed with its key, committed as its principal."""
        return self.commit(message, key=self.keys.ci, committer=CI)

    def push(
        self, *args: str, pusher: str | None = None, env: Mapping[str, str] | None = None
    ) -> Push:
        extra = dict(env or {})
        if pusher is not None:
            extra["ENVCTL_PUSHER"] = pusher
        proc = self.git(
            "push", "--porcelain", "origin", *(args or ("HEAD:main",)), env=extra, check=False
        )
        return Push(proc.returncode, proc.stderr)


@dataclass(frozen=True)
class Push:
    returncode: int
    stderr: str

    @property
    def refusals(self) -> list[str]:
        """The hook's lines, as the pusher sees them (``remote: envctl: refused ...``)."""
        # git pads sideband lines with spaces to clear the terminal line.
        return [
            line.removeprefix("remote: ").rstrip()
            for line in self.stderr.splitlines()
            if line.startswith("remote: envctl:")
        ]

    @property
    def rules(self) -> list[str]:
        return [
            m.group(1)
            for line in self.refusals
            if (m := re.search(r" \[([a-z0-9-]+)\](?: — |$)", line))
        ]

    @property
    def accepted(self) -> bool:
        return self.returncode == 0 and not self.refusals


@dataclass
class Server:
    path: Path
    keys: Keys
    root: Path

    def clone(self, name: str = "work") -> Clone:
        path = self.root / name
        git(self.root, "clone", "--quiet", str(self.path), str(path))
        return Clone(path, self.keys)

    def head(self, ref: str = "main") -> str:
        return git(self.path, "rev-parse", ref).stdout.strip()


def seed(clone: Clone, keys: Keys) -> None:
    """team/app with frozen v1, pending v2 and stable -> v1, owned by alice."""
    clone.write(
        "catalog.yaml",
        config_yaml(
            signers=[(CI, keys.ci.public), (ALICE, keys.alice.public)],
            mutable_tags=["latest", "stable", "nightly"],
        ),
    )
    clone.write(
        ENV,
        env_yaml(
            {
                "v1": {"dependencies": ["python=3.11"]},
                "v2": {"dependencies": ["python=3.12"]},
                "stable": {"points_to": "v1"},
            },
            owners=["alice"],
        ),
    )
    clone.commit("Add team/app")
    clone.add_lock("team/app:v1")
    clone.ci_commit("Lock team/app:v1")
