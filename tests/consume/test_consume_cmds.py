"""``envctl create / envs / run / info / export`` through the real CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from envctl.runs import RunRecord, register_run

from .conftest import Resolved, envctl, python_says

pytestmark = pytest.mark.slow



def one_error_line(result) -> str:
    """An error is exit 1 and one line on stderr."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_create_by_name_then_info_and_envs(resolved_catalog: Resolved, tmp_path: Path) -> None:
    result = envctl("-C", resolved_catalog.root, "create", "team/app:stable", "--name", "app-v1")
    assert result.exit_code == 0, result.output
    env_id = resolved_catalog.ids["v1"]["linux-64"]
    assert "created: team/app:v1 (linux-64)" in result.stdout
    assert f"id       {env_id}" in result.stdout
    assert f"pin this environment with {env_id}" in result.stdout  # stable is mutable

    info = envctl("info", "--name", "app-v1", "--json")
    data = json.loads(info.stdout)
    assert (data["alias"], data["asked"], data["id"]) == ("team/app:v1", "team/app:stable", env_id)

    listed = json.loads(envctl("envs", "--json").stdout)
    assert [(e["name"], e["kind"], e["id"]) for e in listed] == [("app-v1", "named", env_id)]

    again = envctl("-C", resolved_catalog.root, "create", "team/app:v1", "--name", "app-v1")
    assert again.exit_code == 0 and "already present" in again.stdout


def test_create_by_id_into_a_prefix(resolved_catalog: Resolved, tmp_path: Path) -> None:
    env_id = resolved_catalog.ids["v2"]["linux-64"]
    prefix = tmp_path / "env"
    result = envctl("-C", resolved_catalog.root, "create", env_id, "--prefix", prefix, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["alias"], data["id"], data["prefix"]) == ("team/app:v2", env_id, str(prefix))
    assert python_says(prefix, "import tinynum, itsdangerous; "
                       "print(tinynum.__version__, itsdangerous.__version__)") == "2.0 2.2.0"
    info = envctl("info", "--prefix", prefix)
    assert f"alias       team/app:v2\nasked       {env_id}\nid          {env_id}" in info.stdout


def test_create_by_pathspec(resolved_catalog: Resolved, tmp_path: Path) -> None:
    req_id, full_id = resolved_catalog.ids["v1"]["linux-64"].split(":")
    register_run(RunRecord(pathspec="TrainFlow/456/train", alias="team/app:v1", req_id=req_id,
                           full_id=full_id, platform="linux-64"))
    result = envctl("-C", resolved_catalog.root, "create", "--pathspec", "TrainFlow/456/train",
                    "--prefix", tmp_path / "env")
    assert result.exit_code == 0, result.output
    assert "created: team/app:v1" in result.stdout
    info = json.loads(envctl("info", "--pathspec", "TrainFlow/456/train", "--json").stdout)
    assert info["id"] == f"{req_id}:{full_id}"
    assert json.loads(envctl("info", "--prefix", tmp_path / "env", "--json").stdout)[
        "pathspec"] == "TrainFlow/456/train"


def test_run_prints_the_locked_version_from_inside(
    resolved_catalog: Resolved, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = envctl("-C", resolved_catalog.root, "run", "team/app:v1", "--", "python", "-c",
                    "import itsdangerous, os; print(itsdangerous.__version__, "
                    "os.environ['CONDA_PREFIX'])")
    assert result.exit_code == 0, result.output
    version, prefix = capfd.readouterr().out.split()
    assert version == "2.1.2"
    assert prefix.endswith(resolved_catalog.ids["v1"]["linux-64"].split(":")[1])
    # The command's exit code is envctl's; activate.d scripts are sourced.
    activate = Path(prefix) / "etc/conda/activate.d"
    activate.mkdir(parents=True, exist_ok=True)
    (activate / "x.sh").write_text("export ENVCTL_TEST_ACTIVATED=yes\n")
    result = envctl("-C", resolved_catalog.root, "run", "team/app:v1", "--", "python", "-c",
                    "import os, sys; sys.exit(3 if os.environ['ENVCTL_TEST_ACTIVATED'] else 0)")
    assert result.exit_code == 3


def test_run_in_a_named_env(resolved_catalog: Resolved, capfd: pytest.CaptureFixture[str]) -> None:
    assert envctl("-C", resolved_catalog.root, "create", "team/app:v2", "-n", "two").exit_code == 0
    capfd.readouterr()
    result = envctl("run", "--name", "two", "--", "python", "-c",
                    "import tinynum; print(tinynum.__version__)")
    assert result.exit_code == 0, result.output
    assert capfd.readouterr().out.strip() == "2.0"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["create", "team/app:v3", "--prefix", "x"], "team/app:v3 is not locked yet"),
        (["create", "team/app:v1", "--platform", "win-64", "--prefix", "x"],
         "team/app:v1 is not resolved for win-64"),
        (["create", "Team/App:v1", "--prefix", "x"], "upper case"),
        (["create", "team/app:v1", "--prefix", "x", "--name", "y"], "give --prefix or --name"),
        (["create", "team/app:v1", "--name", "no/slash"], "cannot name a local environment"),
        (["run", "team/app:v1", "--"], "no command to run"),
        (["run", "team/app:v1", "--fetch", "--", "true"], "unexpected arguments before '--'"),
        (["run", "--name", "missing", "--", "true"], "no local environment named 'missing'"),
        (["info", "--prefix", "."], "is not an environment envctl created"),
        (["info", "--pathspec", "Flow/1"], "is not a run pathspec"),
        (["export", "team/app:v1", "--format", "nope"], "unknown export format 'nope'"),
    ],
)
def test_errors_are_one_clear_line(
    resolved_catalog: Resolved, args: list[str], expected: str
) -> None:
    line = one_error_line(envctl("-C", resolved_catalog.root, *args))
    assert expected in line


def test_every_export_parses(resolved_catalog: Resolved, tmp_path: Path) -> None:
    root = resolved_catalog.root
    lock = resolved_catalog.lock("v1")
    conda = {p.name: p for p in lock.conda("linux-64")}

    env_yml = yaml.safe_load(envctl("-C", root, "export", "team/app:v1", "-f",
                                    "environment.yml").stdout)
    deps = env_yml["dependencies"]
    assert f"tinynum=1.1={conda['tinynum'].build}" in deps
    assert {"pip": ["itsdangerous==2.1.2"]} in deps

    req = envctl("-C", root, "export", "team/app:v1", "-f", "requirements.txt").stdout
    wheel = lock.pypi("linux-64")[0]
    assert f"itsdangerous==2.1.2 --hash=sha256:{wheel.sha256}" in req.splitlines()

    pixi = tomllib.loads(envctl("-C", root, "export", "team/app:v1", "-f", "pixi.toml").stdout)
    assert pixi["workspace"]["platforms"] == ["linux-64", "osx-arm64"]
    assert pixi["target"]["linux-64"]["dependencies"]["tinynum"]["version"] == "==1.1"
    assert pixi["target"]["osx-arm64"]["pypi-dependencies"]["itsdangerous"] == "==2.1.2"

    out = tmp_path / "v1.conda-lock.yml"
    assert envctl("-C", root, "export", "team/app:v1", "-o", out).exit_code == 0
    assert out.read_bytes() == (root / "locks/team/app/v1.conda-lock.yml").read_bytes()

    # explicit holds conda packages only: refused for a mixed env, with the way out.
    assert "format holds conda packages only" in one_error_line(
        envctl("-C", root, "export", "team/app:v1", "-f", "explicit"))


def test_explicit_export_of_a_conda_only_lock(resolved_catalog: Resolved) -> None:
    from envctl.export import explicit

    lock = resolved_catalog.lock("v1")
    conda_only = type(lock)(platforms=lock.platforms, channels=lock.channels,
                            packages=tuple(p for p in lock.packages if p.manager == "conda"))
    text = explicit(conda_only, "linux-64")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "@EXPLICIT"
    entries = dict(line.split("#") for line in lines[1:])
    assert entries == {p.url: p.md5 for p in conda_only.conda("linux-64")}
