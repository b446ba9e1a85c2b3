"""retire: a round-trip edit the check accepts; create of a retired tag warns or refuses."""

from __future__ import annotations

import subprocess
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import api
from envctl.check import check_range
from envctl.cli.main import app
from envctl.errors import EnvctlError, PolicyError
from envctl.lifecycle.retire import RetiredTagWarning, retire
from envctl.testing.lifecyclekit import CatalogRepo, init_catalog, pkg

runner = CliRunner()

ENV = """\
# Ranking team's base environment.
description: Base
tags:
  v1:
    dependencies: [python, "lib1"]   # the first one

  v2:
    dependencies:
      - python
      - lib2
  v3:
    dependencies: [python]
  stable: {points_to: v2}
"""


@pytest.fixture
def catalog(tmp_path: Path, git_env: Path) -> CatalogRepo:
    repo = init_catalog(tmp_path / "catalog")
    repo.write("envs/team/app.yaml", ENV)
    repo.lock("team/app:v1", [pkg("python"), pkg("lib1")])
    repo.lock("team/app:v2", [pkg("python"), pkg("lib2")])
    repo.commit("team/app v1 v2", datetime(2024, 1, 1, tzinfo=UTC))
    return repo


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_retire_edits_only_the_tag_and_the_check_accepts_it(catalog: CatalogRepo) -> None:
    root = catalog.root
    result = retire(root, "team/app:v1", "CVE-2024-0001: use v2", branch="retire-v1")
    assert result.changed and result.previous is None and result.branch == "retire-v1"
    text = (root / "envs/team/app.yaml").read_text()
    # Every other line is as it was; the reason (it has ': ') is quoted.
    assert text == ENV.replace(
        "  v1:\n", '  v1:\n    retired: "CVE-2024-0001: use v2"\n')
    assert git(root, "rev-parse", "--abbrev-ref", "HEAD") == "retire-v1"
    assert git(root, "log", "-1", "--format=%s") == "Retire team/app:v1: CVE-2024-0001: use v2"
    assert result.commit == git(root, "rev-parse", "HEAD")
    assert check_range(root, "main", "retire-v1") == []
    # Retiring again with the same reason changes nothing.
    again = retire(root, "team/app:v1", "CVE-2024-0001: use v2")
    assert not again.changed


@pytest.mark.parametrize(
    ("alias", "rule"),
    [
        ("team/app:stable", "retire-pointer"),
        ("team/app:v3", "retire-pending"),
        ("team/app:v2", "pointer-to-retired"),
        ("team/app:latest", "not-found"),
    ],
)
def test_what_cannot_be_retired(catalog: CatalogRepo, alias: str, rule: str) -> None:
    before = (catalog.root / "envs/team/app.yaml").read_text()
    with pytest.raises(EnvctlError) as info:
        retire(catalog.root, alias, "because")
    assert info.value.rule == rule
    assert (catalog.root / "envs/team/app.yaml").read_text() == before


def test_retire_cli(catalog: CatalogRepo) -> None:
    result = runner.invoke(app, ["--catalog", str(catalog.root), "retire", "team/app:v1",
                                 "--reason", "superseded by v2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "retired team/app:v1 in envs/team/app.yaml: superseded by v2",
        "next: commit it and open a pull request (or rerun with --branch NAME)",
    ]
    empty = runner.invoke(app, ["--catalog", str(catalog.root), "retire", "team/app:v1",
                                "--reason", " "])
    assert empty.exit_code == 1
    assert "a retirement needs a one-line reason" in empty.output


def test_create_of_a_retired_tag_warns_or_refuses(catalog: CatalogRepo,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = catalog.root
    monkeypatch.delenv("ENVCTL_CATALOG", raising=False)
    monkeypatch.delenv("ENVCTL_STORE", raising=False)
    retire(root, "team/app:v1", "CVE-2024-0001")
    with pytest.warns(RetiredTagWarning, match=r"team/app:v1 is retired: CVE-2024-0001"):
        resolved = api.resolve_ref("team/app:v1", catalog=root, platform="linux-64")
    assert resolved.alias == "team/app:v1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        api.resolve_ref("team/app:v2", catalog=root, platform="linux-64")  # not retired
    # The CLI shows the warning as one line (export goes through the same lookup). pytest
    # records warnings itself, so install the CLI's display inside this block.
    from envctl.cli.lifecycle_cmds import show_envctl_warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        show_envctl_warnings()
        exported = runner.invoke(app, ["--catalog", str(root), "export", "team/app:v1",
                                       "--platform", "linux-64"])
    assert exported.exit_code == 0, exported.output
    assert "warning: team/app:v1 is retired: CVE-2024-0001" in exported.stderr

    config = root / "catalog.yaml"
    config.write_text(config.read_text() + "retired_policy: refuse\n")
    with pytest.raises(PolicyError) as info:
        api.resolve_ref("team/app:v1", catalog=root, platform="linux-64")
    assert info.value.rule == "retired-tag"
    created = runner.invoke(app, ["--catalog", str(root), "create", "team/app:v1",
                                  "--platform", "linux-64", "--prefix", str(root / "env")])
    assert created.exit_code == 1
    assert "team/app:v1 is retired: CVE-2024-0001 [retired-tag]" in created.output
    assert not (root / "env").exists()
