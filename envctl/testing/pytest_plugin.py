"""pytest fixtures for envctl's tests: offline channel and index, sandboxed git.

Register with ``pytest_plugins = ["envctl.testing.pytest_plugin"]`` in the
top-level conftest.

Fixtures:

- ``git_env`` (session, autouse): HOME, XDG dirs and git's global config in a
  temp dir, no system config, fixed author/committer, only the ``file``
  transport, no prompts, no inherited GIT_DIR. Also points
  ``ENVCTL_HOST_PYTHON`` at the running interpreter for the channel's python.
  Returns the temp HOME.
- ``channel`` (session): the test conda channel, built once; a ``LocalChannel``
  with ``.path`` and ``.url`` (``file://...``).
- ``pypi_index`` (session): URL of the local simple index (``http://127.0.0.1:PORT/simple/``).
- ``bare_server`` (function): path of a bare repo made with ``git init --bare -b main``.
- ``catalog_repo`` (function): path of a git work tree on ``main`` with one commit
  holding ``catalog.yaml`` (channel ``local`` -> ``channel.url``, the index URL,
  both platforms) and empty ``envs/`` and ``locks/`` (kept by ``.gitkeep``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from envctl.testing.channel import LocalChannel, build_channel
from envctl.testing.hostpython import HOST_PYTHON_ENV
from envctl.testing.pypi_index import serve_pypi_index

GIT_NAME = "envctl tests"
GIT_EMAIL = "tests@envctl.invalid"
CATALOG_PLATFORMS = ("linux-64", "osx-arm64")
CATALOG_MUTABLE_TAGS = ("latest", "candidate", "stable")

# Variables that would point git at another repository or object store, e.g.
# when pytest runs from inside a git hook.
_GIT_LEAKS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; returns stdout; raises with git's stderr on failure."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="session", autouse=True)
def git_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n"
        f"\tname = {GIT_NAME}\n"
        f"\temail = {GIT_EMAIL}\n"
        "[init]\n\tdefaultBranch = main\n"
        "[commit]\n\tgpgsign = false\n"
        "[tag]\n\tgpgsign = false\n"
        # git >= 2.38.1 refuses file:// submodules unless told otherwise.
        '[protocol "file"]\n\tallow = always\n'
    )
    mp = pytest.MonkeyPatch()
    for name in _GIT_LEAKS:
        mp.delenv(name, raising=False)
    mp.setenv("HOME", str(home))
    mp.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    mp.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
    mp.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    mp.setenv("GIT_AUTHOR_NAME", GIT_NAME)
    mp.setenv("GIT_AUTHOR_EMAIL", GIT_EMAIL)
    mp.setenv("GIT_COMMITTER_NAME", GIT_NAME)
    mp.setenv("GIT_COMMITTER_EMAIL", GIT_EMAIL)
    # Only local transports: a test that tries ssh/https fails fast instead of
    # reaching out. A test that needs another transport sets it with monkeypatch.
    mp.setenv("GIT_ALLOW_PROTOCOL", "file")
    mp.setenv("GIT_TERMINAL_PROMPT", "0")
    mp.setenv(HOST_PYTHON_ENV, sys.executable)
    try:
        yield home
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def channel(tmp_path_factory: pytest.TempPathFactory) -> LocalChannel:
    path = build_channel(tmp_path_factory.mktemp("channel"))
    return LocalChannel(path=path)


@pytest.fixture(scope="session")
def pypi_index() -> Iterator[str]:
    with serve_pypi_index() as url:
        yield url


@pytest.fixture
def bare_server(git_env: Path, tmp_path: Path) -> Path:
    path = tmp_path / "server.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(path))
    return path


def catalog_yaml(channel_url: str, pypi_index: str) -> str:
    """The catalog.yaml ``catalog_repo`` commits. JSON strings are valid YAML scalars."""
    return (
        "channels:\n"
        f"  local: {json.dumps(channel_url)}\n"
        f"platforms: [{', '.join(CATALOG_PLATFORMS)}]\n"
        f"pypi_index: {json.dumps(pypi_index)}\n"
        f"mutable_tags: [{', '.join(CATALOG_MUTABLE_TAGS)}]\n"
        "branch: main\n"
    )


@pytest.fixture
def catalog_repo(git_env: Path, tmp_path: Path, channel: LocalChannel, pypi_index: str) -> Path:
    path = tmp_path / "catalog"
    path.mkdir()
    git(path, "init", "--quiet", "-b", "main")
    (path / "catalog.yaml").write_text(catalog_yaml(channel.url, pypi_index))
    for sub in ("envs", "locks"):
        (path / sub).mkdir()
        (path / sub / ".gitkeep").write_text("")
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", "Create catalog")
    return path
