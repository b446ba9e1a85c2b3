"""``envctl list`` says each tag's state in words when colour is off (piped, NO_COLOR),
and only shows the colour legend when there is colour."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

runner = CliRunner()

ENV = """\
description: States
tags:
  v1: {dependencies: [python], retired: "superseded by v2"}
  v2: {dependencies: [python]}
  stable: {points_to: v2}
  nightly: {dependencies: [python]}
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "envs/team").mkdir(parents=True)
    (tmp_path / "catalog.yaml").write_text(
        "channels: {main: https://conda.example.org/main}\nplatforms: [linux-64]\n"
        "mutable_tags: [latest, stable, nightly]\n")
    (tmp_path / "envs/team/app.yaml").write_text(ENV)
    monkeypatch.chdir(tmp_path)
    for var in ("NO_COLOR", "FORCE_COLOR", "ENVCTL_CATALOG", "TERM"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def list_output(**env: str) -> str:
    from envctl.cli.main import app

    result = runner.invoke(app, ["list"], env={"COLUMNS": "120", **env})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_piped_the_state_is_words_and_there_is_no_colour_legend(root: Path) -> None:
    out = list_output()
    assert "\x1b[" not in out
    assert "│ team/app │ v1 v2 stable*→v2 nightly* │ retired v1 · pending v2 · rolling nightly │" \
        in out
    assert "green frozen" not in out
    assert out.rstrip().endswith("* mutable · a→b: pointer a points to b")


def test_no_color_on_a_terminal_is_the_same(root: Path) -> None:
    out = list_output(FORCE_COLOR="1", NO_COLOR="1")
    assert "retired v1 · pending v2 · rolling nightly" in out
    assert "green frozen" not in out


def test_with_colour_the_legend_explains_it(root: Path) -> None:
    out = list_output(FORCE_COLOR="1")
    assert "\x1b[" in out
    assert "green frozen · yellow pending · cyan rolling · dim retired" in out
    assert "rolling nightly" not in out
