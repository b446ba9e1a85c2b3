"""Fixtures for envctl ci: a bare server with the hook, clones that push, a CI clone, a store.

The server's catalog solves against the offline test channel (and the loopback PyPI
index), lists the CI key in ``allowed_signers``, and has ``nightly`` as a rolling tag.
Each test gets its own copy of a server seeded once per session.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from envctl.ci.report import Report
from envctl.ci.results import JobResult
from envctl.ci.run import Hooks, RunOptions, run_ci
from envctl.hook import install_hook
from envctl.store import LocalStore, Store
from envctl.testing.channel import LocalChannel
from envctl.testing.handlocks import config_yaml, env_yaml
from envctl.testing.pushes import ALICE, CI, IDENTITY_VARS, Clone, Keys, git, make_keys
from envctl.testing.pytest_plugin import catalog_yaml

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def server_catalog_yaml(channel_url: str, pypi_index: str, keys: Keys) -> str:
    return (
        catalog_yaml(channel_url, pypi_index).replace(
            "mutable_tags: [latest, candidate, stable]", "mutable_tags: [latest, stable, nightly]"
        )
        + f"allowed_signers:\n  - principal: {CI}\n    key: {json.dumps(keys.ci.public)}\n"
    )


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


def seed_server(root: Path, keys: Keys, config: str) -> Path:
    bare = root / "server.git"
    git(root, "init", "--quiet", "--bare", "-b", "main", str(bare))
    install_hook(bare)
    work = root / "seed"
    git(root, "clone", "--quiet", str(bare), str(work))
    clone = Clone(work, keys)
    clone.write("catalog.yaml", config)
    clone.write("envs/.gitkeep", "")
    clone.write("locks/.gitkeep", "")
    clone.commit("Create catalog")
    push = clone.push()
    assert push.accepted, push.stderr
    shutil.rmtree(work)
    return bare


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory, keys: Keys, channel: LocalChannel,
           pypi_index: str, git_env: Path) -> Path:
    root = tmp_path_factory.mktemp("ci-seed")
    return seed_server(root, keys, server_catalog_yaml(channel.url, pypi_index, keys))


@pytest.fixture
def repo(tmp_path: Path, keys: Keys, git_env: Path) -> Clone:
    """A catalog work tree (no server, no solve) whose CI and alice may sign locks."""
    path = tmp_path / "catalog"
    git(tmp_path, "init", "--quiet", "-b", "main", str(path))
    clone = Clone(path, keys)
    clone.write("catalog.yaml", config_yaml(
        signers=[(CI, keys.ci.public), (ALICE, keys.alice.public)],
        mutable_tags=["latest", "stable", "nightly"],
    ))
    clone.commit("Create catalog")
    return clone


def env(clone: Clone, name: str, tags: dict, message: str | None = None,
        author: str = "Alice Doe") -> str:
    clone.write(f"envs/{name}.yaml", env_yaml(tags))
    clone.git("add", "-A")
    clone.git("commit", "-q", "-m", message or f"Edit {name}",
              env={"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": "a@example.org"})
    return clone.git("rev-parse", "HEAD").stdout.strip()


def ci_commit(clone: Clone, *aliases: str, pending: tuple[str, ...] = (),
              trailer: bool = True, key: str = "ci") -> str:
    for alias in aliases:
        clone.add_lock(alias)
    lines = ["envctl ci: lock", ""]
    if trailer:
        lines += ["Envctl-CI: 0.1.0", *(f"Envctl-Pending: {p}" for p in pending)]
    signer = {"ci": (clone.keys.ci, CI), "alice": (clone.keys.alice, ALICE)}[key]
    return clone.commit("\n".join(lines), key=signer[0], committer=signer[1])


@dataclass
class World:
    """A server, its clones, a local store, and the CI job as a function call."""

    root: Path
    server: Path
    keys: Keys
    store: Store

    def clone(self, name: str) -> Clone:
        path = self.root / name
        git(self.root, "clone", "--quiet", str(self.server), str(path))
        return Clone(path, self.keys)

    def head(self) -> str:
        return git(self.server, "rev-parse", "main").stdout.strip()

    def add_env(self, clone: Clone, name: str, tags: dict[str, Any], *, author: str) -> None:
        """Commit an env file as ``author`` (``Name <email>``) and push it through the hook."""
        clone.git("pull", "--quiet", "--ff-only")
        clone.write(f"envs/{name}.yaml", json.dumps({"tags": tags}) + "\n")
        who, _, email = author.partition(" <")
        clone.git("add", "-A")
        clone.git("commit", "--quiet", "-m", f"Add {name}",
                  env={"GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": email.rstrip(">")})
        push = clone.push()
        assert push.accepted, push.stderr

    def ci(self, clone: Clone, *, store: Store | None = None,
           before_push: Callable[..., None] | None = None,
           on_upload: Callable[..., None] | None = None, now: datetime = NOW,
           **options: Any,
           ) -> tuple[Report, JobResult | None]:
        """``envctl ci run`` in ``clone`` through the API (hooks make races deterministic)."""
        options.setdefault("sign_key", str(self.keys.ci.private))
        return run_ci(clone.path, store or self.store, now=now, options=RunOptions(**options),
                      hooks=Hooks(before_push=before_push, on_upload=on_upload))


@pytest.fixture
def world(seeded: Path, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for var in IDENTITY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ENVCTL_HOOK_DEADLINE", "60")  # slow machines must not trip it
    monkeypatch.setenv("ENVCTL_HOME", str(tmp_path / "home"))
    server = tmp_path / "server.git"
    shutil.copytree(seeded, server, symlinks=True)
    return World(tmp_path, server, keys, LocalStore(tmp_path / "store"))
