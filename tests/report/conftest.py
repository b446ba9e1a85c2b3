"""One resolved catalog with a real git history, shared by the report tests (read only).

``team/app`` (linux-64 and osx-arm64), every tag resolved against the local channel
and PyPI index with a fixed cut-off, so the package differences are known:

- ``v1``: tinynum 1.0, libalpha 1.0, torchlet (cpu build everywhere), itsdangerous 2.1.2
- ``v2``: tinynum 1.1, libalpha 1.1, tinydata, itsdangerous 2.2.0 and ``__cuda`` on
  linux-64, so torchlet is the cuda build there (a build change on one platform only)
- ``v3``: like v2 with tinynum 1.0 again and no tinydata (a downgrade and a removal)
- ``v4``: like v3 plus tinydata on linux-64 only (a change on one platform)
- ``stable``: created -> v1 (alice), moved -> v2 (bob), an unrelated edit (carol),
  moved -> v3 (carol); each commit with its own author and date.

``vision/train:v1`` is declared and never resolved (pending). Branches ``pr-good``
(adds v5 and team/new, moves stable back to v2) and ``pr-bad`` (edits frozen v1) start
from ``main``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from envctl.resolve.api import resolve_tag
from envctl.testing.channel import LocalChannel

RESOLVED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)

CONFIG = """\
name: Test catalog
description: Environments of the report tests
channels:
  local: {channel}
platforms: [linux-64, osx-arm64]
pypi_index: {index}
mutable_tags: [latest, candidate, stable, nightly]
branch: main
"""

V1 = """\
  v1:
    dependencies: [python=3.11, tinynum 1.0.*, libalpha 1.0.*, torchlet]
    pypi: [itsdangerous==2.1.2]
"""
V2 = """\
  v2:
    dependencies: [python=3.11, tinynum 1.1.*, libalpha 1.1.*, torchlet, tinydata]
    pypi: [itsdangerous==2.2.0]
    virtual_packages:
      linux-64: {__cuda: "12.0"}
"""
V3 = """\
  v3:
    dependencies: [python=3.11, tinynum 1.0.*, libalpha 1.1.*, torchlet]
    pypi: [itsdangerous==2.2.0]
    virtual_packages:
      linux-64: {__cuda: "12.0"}
"""
V4 = """\
  v4:
    dependencies: [python=3.11, tinynum 1.0.*, libalpha 1.1.*, torchlet]
    pypi: [itsdangerous==2.2.0]
    virtual_packages:
      linux-64: {__cuda: "12.0"}
    target:
      linux-64: {dependencies: [tinydata]}
"""
V5 = """\
  v5:
    description: tinyframe on top of v4
    extends: v4
    dependencies: [tinyframe 0.9.*]
"""


def app_yaml(stable: str, description: str = "The report tests' environment",
             extra: str = "") -> str:
    return (f"description: {description}\nowners: [team]\ntags:\n"
            f"{V1}{V2}{V3}{V4}{extra}  stable: {{points_to: {stable}}}\n")


VISION = """\
description: GPU training <b>for</b> vision & "friends"
owners: [vision]
tags:
  v1:
    dependencies: [python=3.11, torchlet]
"""

NEW = """\
description: A new environment
owners: [newteam]
tags:
  v1:
    dependencies: [python=3.11, tinycli]
"""

#: (name, e-mail, date) of each commit's author and committer.
ALICE = ("Alice Admin", "alice@example.org", "2024-01-01T10:00:00Z")
CI = ("envctl CI", "ci@example.org", "2024-01-01T11:00:00Z")
BOB = ("Bob Builder", "bob@example.org", "2024-02-01T09:30:00Z")
CAROL_EDIT = ("Carol Coder", "carol@example.org", "2024-02-15T08:00:00Z")
CAROL = ("Carol Coder", "carol@example.org", "2024-03-01T12:00:00Z")
DAVE = ("Dave Dev", "dave@example.org", "2024-04-01T12:00:00Z")


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def commit(root: Path, message: str, who: tuple[str, str, str]) -> str:
    name, email, date = who
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
           "GIT_COMMITTER_DATE": date}
    git(root, "add", "-A", env=env)
    git(root, "commit", "--quiet", "-m", message, env=env)
    return git(root, "rev-parse", "HEAD").strip()


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@dataclass(frozen=True)
class ReportRepo:
    root: Path
    commits: dict[str, str]  # label -> sha

    def lock(self, tag: str) -> Path:
        return self.root / "locks" / "team" / "app" / f"{tag}.conda-lock.yml"


@pytest.fixture(scope="session")
def report_repo(tmp_path_factory: pytest.TempPathFactory, git_env: Path,
                channel: LocalChannel, pypi_index: str) -> ReportRepo:
    root = tmp_path_factory.mktemp("report") / "catalog"
    root.mkdir()
    git(root, "init", "--quiet", "-b", "main")
    write(root, "catalog.yaml", CONFIG.format(channel=json.dumps(channel.url),
                                              index=json.dumps(pypi_index)))
    write(root, "envs/team/app.yaml", app_yaml("v1"))
    write(root, "envs/vision/train.yaml", VISION)
    commits = {"add": commit(root, "Add team/app v1-v4, stable -> v1", ALICE)}
    for tag in ("v1", "v2", "v3", "v4"):
        resolve_tag(root, f"team/app:{tag}", resolved_at=RESOLVED_AT,
                    resolved_by="ci@example.org", exclude_newer=CUTOFF)
    commits["lock"] = commit(root, "Lock team/app v1-v4", CI)
    write(root, "envs/team/app.yaml", app_yaml("v2"))
    commits["stable-v2"] = commit(root, "Move stable to v2", BOB)
    write(root, "envs/team/app.yaml", app_yaml("v2", "The report tests' main environment"))
    commits["describe"] = commit(root, "Describe team/app better", CAROL_EDIT)
    write(root, "envs/team/app.yaml", app_yaml("v3", "The report tests' main environment"))
    commits["stable-v3"] = commit(root, "Move stable to v3", CAROL)

    git(root, "checkout", "--quiet", "-b", "pr-good")
    write(root, "envs/team/app.yaml",
          app_yaml("v2", "The report tests' main environment", extra=V5))
    write(root, "envs/team/new.yaml", NEW)
    commits["pr-good"] = commit(root, "Add v5 and team/new; stable back to v2", DAVE)

    git(root, "checkout", "--quiet", "-b", "pr-bad", "main")
    text = app_yaml("v3", "The report tests' main environment").replace(
        "tinynum 1.0.*, libalpha 1.0.*", "tinynum 1.1.*, libalpha 1.0.*", 1)
    write(root, "envs/team/app.yaml", text)
    commits["pr-bad"] = commit(root, "Quietly change v1", DAVE)
    git(root, "checkout", "--quiet", "main")
    return ReportRepo(root, commits)


@pytest.fixture
def in_catalog(report_repo: ReportRepo, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd in the shared catalog, with no ENVCTL_CATALOG from outside."""
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    monkeypatch.chdir(report_repo.root)
    yield report_repo.root
