"""Fan-out: ``ci plan`` as a matrix, ``ci run --only --no-commit`` per shard, ``ci commit``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.ci.run import Hooks, commit_results
from envctl.cli.main import app
from envctl.testing.pushes import git

from .conftest import NOW

pytestmark = pytest.mark.slow

ALICE = "Alice Doe <alice@example.org>"


def cli(world, clone, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["--catalog", str(clone.path), "ci", *args, "--json"],
                                env={"ENVCTL_STORE": str(world.store.root),
                                     "ENVCTL_CI_SIGNING_KEY": str(world.keys.ci.private)})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_matrix_shards_then_one_commit(world, tmp_path: Path) -> None:
    a = world.clone("a")
    world.add_env(a, "team/one", {"v1": {"dependencies": ["python=3.11"]}}, author=ALICE)
    world.add_env(a, "team/two", {"v1": {"dependencies": ["python=3.11", "tinynum"]},
                                  "v2": {"extends": "v1", "dependencies": ["tinydata"]}},
                  author=ALICE)
    ci = world.clone("ci")
    code, plan = cli(world, ci, "plan")
    assert code == 0 and plan["count"] == 3
    shards = [s["only"].split() for s in plan["matrix"]["include"]]
    assert sorted(shards) == [["team/one:v1"], ["team/two:v1", "team/two:v2"]]

    folders: list[Path] = []
    for i, only in enumerate(shards):
        folder = tmp_path / f"results-{i}"
        args = ["run", "--no-commit", "--results", str(folder)]
        for alias in only:
            args += ["--only", alias]
        code, report = cli(world, ci, *args)
        assert code == 0 and report["commit"] is None
        folders.append(folder)
    assert world.head() == plan["head"]  # the shards commit nothing

    # A push lands before the commit job runs, and another one while it pushes (a race):
    # their tags are named pending, not lost.
    world.add_env(a, "team/late", {"v1": {"dependencies": ["python=3.11"]}}, author=ALICE)
    committer = world.clone("committer")

    def race(attempt: int, candidate) -> None:
        if attempt == 1:
            world.add_env(a, "team/later", {"v1": {"dependencies": ["python=3.11"]}},
                          author=ALICE)

    result = commit_results(committer.path, world.store, folders,
                            now=NOW, sign_key=str(world.keys.ci.private),
                            hooks=Hooks(before_push=race))
    report = result.to_dict()
    assert result.exit_code == 0 and result.races == 1, report["errors"]
    assert sorted(report["locked"]) == ["team/one:v1", "team/two:v1", "team/two:v2"]
    assert report["pending"] == {
        "team/late:v1": "changed on the branch while this run was resolving",
        "team/later:v1": "changed on the branch while this run was resolving",
    }
    head = world.head()
    assert head == report["commit"]
    message = git(world.server, "log", "-1", "--format=%B", head).stdout
    assert message.startswith("envctl ci: lock team/one:v1, team/two:v1, team/two:v2\n")
    assert "Envctl-Pending: team/late:v1\nEnvctl-Pending: team/later:v1\n" in message
    assert world.store.get_alias("team/two", "v2").commit == head

    # The next run picks the late tags up from the trailer and locks them.
    code, report = cli(world, ci, "run")
    assert code == 0 and report["locked"] == ["team/late:v1", "team/later:v1"], report
    assert report["plan"]["tags"][0]["reason"] == "pending"


def test_commit_refuses_results_whose_artifacts_are_not_in_the_store(world,
                                                                     tmp_path: Path) -> None:
    a = world.clone("a")
    world.add_env(a, "team/one", {"v1": {"dependencies": ["python=3.11"]}}, author=ALICE)
    ci = world.clone("ci")
    other_store = tmp_path / "other-store"
    result = CliRunner().invoke(app, [
        "--catalog", str(ci.path), "ci", "run", "--no-commit", "--results",
        str(tmp_path / "r"), "--store", str(other_store), "--json"])
    assert result.exit_code == 0, result.output

    head = world.head()
    code, report = cli(world, ci, "commit", "--results", str(tmp_path / "r"))
    assert code == 1 and report["commit"] is None and world.head() == head
    [failed] = report["failed"]
    assert failed["alias"] == "team/one:v1" and failed["rule"] == "missing-artifact"
    assert "is not fully in the store" in failed["message"]
