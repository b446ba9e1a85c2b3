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


SPEC = "git+https://github.com/acme/envctl@v0.1.0"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = init_catalog(tmp_path_factory.mktemp("init") / "cat")
    return root / ".github" / "workflows"


@pytest.fixture(scope="module")
def rendered_with_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = init_catalog(tmp_path_factory.mktemp("init") / "cat", envctl_spec=SPEC)
    return root / ".github" / "workflows"


def check_schema(paths: list[Path]) -> tuple[int, str]:
    """check-jsonschema's own CLI, in process (a subprocess would import it again each time)."""
    from check_jsonschema import main
    from click.testing import CliRunner

    result = CliRunner().invoke(
        main, ["--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    )
    return result.exit_code, result.output


def test_workflows_match_githubs_schema(rendered: Path, rendered_with_spec: Path) -> None:
    names = {p.name for p in OWN}
    assert {"tests.yml", "catalog-validate.yml", "catalog-resolve.yml",
            "catalog-refresh.yml"} <= names
    templates = sorted(rendered.glob("*.yml"))
    assert [p.name for p in templates] == ["refresh.yml", "resolve.yml", "validate.yml"]
    code, output = check_schema([*OWN, *templates, *sorted(rendered_with_spec.glob("*.yml"))])
    assert code == 0, output


# -- what the workflows install -------------------------------------------------------------

# A requirement pip looks up on an index by the name 'envctl' (PyPI's is an unrelated
# project): envctl, envctl==0.1, envctl[extra]>=1, ...
BARE_ENVCTL = re.compile(r"envctl\s*(\[[^\]]*\])?\s*([<>=!~;].*)?", re.IGNORECASE)
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b([^\n;&|]*)")


def pip_install_args(workflow: dict[str, Any]) -> list[str]:
    """Every argument of every 'pip install' in a workflow's run steps, unquoted."""
    import shlex

    args = []
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            for match in PIP_INSTALL.finditer(step.get("run", "")):
                args += [a for a in shlex.split(match.group(1)) if not a.startswith("-")]
    return args


def test_no_workflow_installs_envctl_from_pypi(rendered: Path, rendered_with_spec: Path) -> None:
    paths = [*OWN, *rendered.glob("*.yml"), *rendered_with_spec.glob("*.yml")]
    for path in paths:
        args = pip_install_args(yamlio.load_path(path))
        bare = [a for a in args if BARE_ENVCTL.fullmatch(a.strip())]
        assert not bare, f"{path.name} installs {bare} from an index"
    # The catalog's own workflows install this checkout; init's install the owner's spec.
    for path in OWN:
        if path.name.startswith("catalog-"):
            assert set(pip_install_args(yamlio.load_path(path))) == {"."}, path.name
    for path in [*rendered.glob("*.yml"), *rendered_with_spec.glob("*.yml")]:
        assert set(pip_install_args(yamlio.load_path(path))) == {"$ENVCTL_PIP_SPEC"}, path.name
    assert BARE_ENVCTL.fullmatch("envctl==0.1.0") and BARE_ENVCTL.fullmatch("envctl")


def install_steps(path: Path) -> list[dict[str, Any]]:
    workflow = yamlio.load_path(path)
    return [step for job in workflow["jobs"].values() for step in job["steps"]
            if step.get("name") == "Install envctl"]


def run_install(path: Path, tmp_path: Path,
                variable: str | None) -> subprocess.CompletedProcess[str]:
    """Every 'Install envctl' step of a workflow, as GitHub runs it: the workflow's env with
    ``vars.ENVCTL_PIP_SPEC`` filled in (empty when unset), a stub python that records its
    arguments. Returns the first failure, or the last run."""
    workflow = yamlio.load_path(path)
    values = {"vars.ENVCTL_PIP_SPEC": variable or ""}
    env_values = {k: EXPR.sub(lambda m: values[m.group(1)], v)
                  for k, v in (workflow.get("env") or {}).items()}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "python"
    stub.write_text('#!/bin/sh\nprintf \'%s\\n\' "$@" >> "$CALLS"\n')
    stub.chmod(0o755)
    calls = tmp_path / "calls"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
           **env_values}
    steps = install_steps(path)
    assert steps, path.name
    proc = None
    for step in steps:
        assert "${{" not in step["run"]  # the spec reaches the shell as a variable only
        proc = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return proc
    assert proc is not None
    return proc


@pytest.mark.parametrize("name", ["validate.yml", "resolve.yml", "refresh.yml"])
def test_install_step_needs_the_owners_spec(rendered: Path, name: str, tmp_path: Path) -> None:
    for variable in (None, "envctl", "envctl==0.1.0"):
        proc = run_install(rendered / name, tmp_path, variable)
        assert proc.returncode == 1, (variable, proc.stdout)
        assert proc.stdout.startswith("::error title=envctl is not configured::")
        assert "Set the repository variable ENVCTL_PIP_SPEC" in proc.stdout
        assert "unrelated project" in proc.stdout
        assert not (tmp_path / "calls").exists()  # pip never ran
    proc = run_install(rendered / name, tmp_path, SPEC)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["-m", "pip", "install", "--quiet", SPEC] * len(install_steps(rendered / name))


@pytest.mark.parametrize("name", ["validate.yml", "resolve.yml", "refresh.yml"])
def test_install_step_uses_the_spec_init_was_given(rendered_with_spec: Path, name: str,
                                                  tmp_path: Path) -> None:
    workflow = yamlio.load_path(rendered_with_spec / name)
    assert workflow["env"]["ENVCTL_PIP_SPEC"] == SPEC
    proc = run_install(rendered_with_spec / name, tmp_path, None)  # no repository variable
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "calls").read_text().splitlines()[-1] == SPEC


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
