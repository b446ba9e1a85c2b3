"""One resolved catalog for the whole session: the consume tests only read it.

``team/app`` (linux-64 and osx-arm64, conda + PyPI):

- ``v1``: resolved with a 2025-01-01 cut-off (tinynum 1.1, itsdangerous 2.1.2);
- ``v2``: resolved with a 2026 cut-off (tinynum 2.0, itsdangerous 2.2.0);
- ``stable`` points to v1; ``v3`` is declared but never resolved (pending).

Tests that edit the catalog copy it first (:func:`catalog_copy`). Each test gets its
own ``ENVCTL_HOME`` unless it asks for the session's warm one (``warm_home``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.resolve.api import resolve_tag
from envctl.resolve.lockfile import LockData, read_lock
from envctl.testing.channel import LocalChannel
from envctl.testing.pytest_plugin import catalog_yaml, git

RESOLVED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
RESOLVED_BY = "ci@envctl.invalid"
JAN_2025 = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 1, 1, tzinfo=UTC)

APP = """\
description: The consume tests' environment
owners: [team]
tags:
  v1:
    platforms: [linux-64, osx-arm64]
    dependencies: [python=3.11, tinynum, requests]
    pypi: [itsdangerous==2.1.2]
  v2:
    platforms: [linux-64, osx-arm64]
    dependencies: [python=3.11, tinynum, requests]
    pypi: [itsdangerous==2.2.0]
  v3:
    platforms: [linux-64]
    dependencies: [python=3.11, tinynum]
  stable: {points_to: v1}
"""


@dataclass(frozen=True)
class Resolved:
    root: Path
    ids: dict[str, dict[str, str]]  # tag -> platform -> "req_id:full_id"

    def lock(self, tag: str) -> LockData:
        return read_lock((self.root / f"locks/team/app/{tag}.conda-lock.yml").read_bytes())


@pytest.fixture(scope="session")
def resolved_catalog(
    tmp_path_factory: pytest.TempPathFactory, git_env: Path, channel: LocalChannel, pypi_index: str
) -> Resolved:
    root = tmp_path_factory.mktemp("consume") / "catalog"
    (root / "envs/team").mkdir(parents=True)
    (root / "locks").mkdir()
    (root / "catalog.yaml").write_text(catalog_yaml(channel.url, pypi_index))
    (root / "envs/team/app.yaml").write_text(APP)
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "team/app")
    ids: dict[str, dict[str, str]] = {}
    for tag, cutoff in (("v1", JAN_2025), ("v2", LATER)):
        result = resolve_tag(root, f"team/app:{tag}", resolved_at=RESOLVED_AT,
                             resolved_by=RESOLVED_BY, exclude_newer=cutoff)
        ids[tag] = {p.platform: p.env_id for p in result.platforms}
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "lock team/app v1 v2")
    return Resolved(root, ids)


@pytest.fixture
def catalog_copy(resolved_catalog: Resolved, tmp_path: Path) -> Path:
    """A private copy (with its git history) that a test may edit."""
    dest = tmp_path / "catalog"
    shutil.copytree(resolved_catalog.root, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envctl-home")


@pytest.fixture(autouse=True)
def envctl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ENVCTL_HOME, no inherited catalog or store, and a cwd outside any catalog."""
    home = tmp_path / "envctl-home"
    monkeypatch.setenv("ENVCTL_HOME", str(home))
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    monkeypatch.delenv("ENVCTL_STORE", raising=False)
    for var in ("METAFLOW_RUN_ID", "METAFLOW_STEP_NAME", "METAFLOW_FLOW_NAME", "CONDA_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    yield home


@pytest.fixture
def warm_home(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's ENVCTL_HOME, whose package cache earlier tests have filled."""
    monkeypatch.setenv("ENVCTL_HOME", str(session_home))
    return session_home


def python_says(prefix: Path, code: str) -> str:
    """What the environment's own python prints for ``code``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([str(prefix / "bin" / "python"), "-c", code], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# -- the CLI as tests call it -------------------------------------------------------------

runner = CliRunner()


def envctl(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
