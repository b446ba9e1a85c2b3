"""``envctl show --pathspec``: the catalog's view of the environment a run's step used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.runs import RunRecord, register_run

from .conftest import Resolved

pytestmark = pytest.mark.slow

runner = CliRunner()


def envctl(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_show_pathspec_names_the_recorded_environment(resolved_catalog: Resolved) -> None:
    env_id = resolved_catalog.ids["v1"]["linux-64"]
    req_id, full_id = env_id.split(":")
    register_run(RunRecord(pathspec="TrainFlow/456/train", asked="team/app:stable",
                           alias="team/app:v1", req_id=req_id, full_id=full_id,
                           platform="linux-64"))
    shown = envctl("-C", resolved_catalog.root, "show", "--pathspec", "TrainFlow/456/train",
                   "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert (data["pathspec"], data["id"], data["alias"]) == ("TrainFlow/456/train", env_id,
                                                            "team/app:v1")
    text = envctl("-C", resolved_catalog.root, "show", "--pathspec", "TrainFlow/456/train/7")
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith(f"TrainFlow/456/train/7 ran in {env_id}\n")
    assert "team/app:v1" in text.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "give exactly one of NAME and --pathspec"),
        (("team/app:v1", "--pathspec", "F/1/s"), "give exactly one of NAME and --pathspec"),
        (("--pathspec", "F/1/s"), "no environment is recorded for F/1/s"),
        (("--pathspec", "F/1"), "is not a run pathspec"),
    ],
)
def test_show_pathspec_errors_are_one_line(
    resolved_catalog: Resolved, args: tuple[str, ...], words: str
) -> None:
    result = envctl("-C", resolved_catalog.root, "show", *args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
