"""The GitHub workflows: valid by GitHub's schema, and the resolve workflow's commands work.

Schema: check-jsonschema's vendored ``vendor.github-workflows`` (offline), on this
repository's workflows and on the ones ``envctl init`` writes. Then the ``envctl``
steps of the rendered ``resolve.yml`` are run as written (bash, GitHub's expressions
filled in) against a real server: plan -> one job per shard -> commit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from envctl import yamlio
from envctl.scaffold import init_catalog

REPO = Path(__file__).resolve().parents[2]
OWN = sorted((REPO / ".github" / "workflows").glob("*.yml"))
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = init_catalog(tmp_path_factory.mktemp("init") / "cat")
    return root / ".github" / "workflows"


def check_schema(paths: list[Path]) -> tuple[int, str]:
    """check-jsonschema's own CLI, in process (a subprocess would import it again each time)."""
    from check_jsonschema import main
    from click.testing import CliRunner

    result = CliRunner().invoke(
        main, ["--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    )
    return result.exit_code, result.output


def test_workflows_match_githubs_schema(rendered: Path) -> None:
    names = {p.name for p in OWN}
    assert {"tests.yml", "catalog-validate.yml", "catalog-resolve.yml",
            "catalog-refresh.yml"} <= names
    templates = sorted(rendered.glob("*.yml"))
    assert [p.name for p in templates] == ["refresh.yml", "resolve.yml", "validate.yml"]
    code, output = check_schema([*OWN, *templates])
    assert code == 0, output


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    code, output = check_schema([bad])
    assert code == 1 and "stepz" in output


def test_rendered_workflows_do_what_they_say(rendered: Path) -> None:
    validate = yamlio.load_path(rendered / "validate.yml")
    runs = " ".join(s.get("run", "") for s in validate["jobs"]["validate"]["steps"])
    for command in ("envctl lint", "envctl check --base", "envctl resolve --changed-since",
                    "envctl pr-summary", "$GITHUB_STEP_SUMMARY"):
        assert command in runs
    resolve = yamlio.load_path(rendered / "resolve.yml")
    refresh = yamlio.load_path(rendered / "refresh.yml")
    assert resolve["concurrency"] == refresh["concurrency"] == {
        "group": "envctl-catalog-main", "cancel-in-progress": "false"}
    assert list(resolve["jobs"]) == ["plan", "resolve", "commit"]
    assert resolve["jobs"]["commit"]["needs"] == ["plan", "resolve"]
    assert resolve["jobs"]["commit"]["permissions"] == {"contents": "write"}
    assert "schedule" in refresh["on"]
    assert "envctl ci refresh" in json.dumps(refresh)


# -- running the resolve workflow's commands ---------------------------------------------


def run_step(step: dict[str, Any], cwd: Path, values: dict[str, str],
             env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    def fill(text: str) -> str:
        return EXPR.sub(lambda m: values[m.group(1)], text)

    step_env = {k: fill(str(v)) for k, v in (step.get("env") or {}).items()}
    return subprocess.run(["bash", "-eo", "pipefail", "-c", fill(step["run"])], cwd=cwd,
                          env={**env, **step_env}, capture_output=True, text=True)


def step_running(job: dict[str, Any], command: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if command in s.get("run", ""))


@pytest.mark.slow
def test_resolve_workflow_commands_run_as_written(world, rendered: Path, tmp_path: Path) -> None:
    workflow = yamlio.load_path(rendered / "resolve.yml")
    jobs = workflow["jobs"]
    a = world.clone("a")
    world.add_env(a, "team/one", {"v1": {"dependencies": ["python=3.11"]}},
                  author="Alice Doe <alice@example.org>")
    world.add_env(a, "team/two", {"v1": {"dependencies": ["python=3.11", "tinynum"]}},
                  author="Alice Doe <alice@example.org>")
    output = tmp_path / "github_output"
    output.write_text("")
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ENVCTL_STORE": str(world.store.root),
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(runner_temp),
    }
    values = {"secrets.ENVCTL_CI_SIGNING_KEY": world.keys.ci.private.read_text()}

    plan_job = world.clone("plan")
    proc = run_step(step_running(jobs["plan"], "envctl ci plan"), plan_job.path, values, env)
    assert proc.returncode == 0, proc.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert outputs["count"] == "2"
    matrix = json.loads(outputs["matrix"])

    commit_job = world.clone("commit")
    for entry in matrix["include"]:
        shard = world.clone(f"shard-{entry['shard']}")
        values.update({"matrix.only": entry["only"], "matrix.shard": str(entry["shard"])})
        proc = run_step(step_running(jobs["resolve"], "envctl ci run"), shard.path, values, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # actions/download-artifact with a pattern: one folder per artifact.
        shutil.copytree(shard.path / "results",
                        commit_job.path / "results" / f"results-{entry['shard']}")
    assert len(matrix["include"]) == 2

    proc = run_step(step_running(jobs["commit"], "envctl ci commit"), commit_job.path, values,
                    env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((commit_job.path / "report.json").read_text())
    assert report["landed"] and sorted(report["locked"]) == ["team/one:v1", "team/two:v1"]
    assert world.head() == report["commit"]
