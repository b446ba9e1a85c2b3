"""Fixtures for the hook tests: keys, a seeded bare server per test, a clone of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envctl.hook import install_hook
from envctl.testing.pushes import IDENTITY_VARS, Clone, Keys, Server, git, make_keys, seed


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def seeded_server(tmp_path_factory: pytest.TempPathFactory, keys: Keys,
                  git_env: Path) -> Path:
    """The template: a bare repo whose main was created by a real push through the hook."""
    root = tmp_path_factory.mktemp("seed")
    bare = root / "server.git"
    git(root, "init", "--quiet", "--bare", "-b", "main", str(bare))
    install_hook(bare)
    server = Server(bare, keys, root)
    clone = server.clone()
    seed(clone, keys)
    push = clone.push()
    assert push.accepted, push.stderr  # creating the protected branch in an empty repo
    return bare


@pytest.fixture
def server(seeded_server: Path, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           ) -> Server:
    for var in IDENTITY_VARS:
        monkeypatch.delenv(var, raising=False)
    # Slow CI machines must not trip the hook's deadline; one test sets its own.
    monkeypatch.setenv("ENVCTL_HOOK_DEADLINE", "60")
    path = tmp_path / "server.git"
    shutil.copytree(seeded_server, path, symlinks=True)
    return Server(path, keys, tmp_path)


@pytest.fixture
def clone(server: Server) -> Clone:
    return server.clone()
