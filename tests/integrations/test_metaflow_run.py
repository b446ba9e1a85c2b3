"""A real local Metaflow run with ``@named_env`` steps (metaflow_extensions/envctl).

The flow (written below) has four steps:

- ``start`` runs in the runtime's interpreter and moves the mutable tag
  ``team/rolling:stable`` from v1 (itsdangerous 2.1.2) to v2 (2.2.0), committing the
  catalog — i.e. *after* the run started and *before* the next steps are launched;
- ``pinned`` uses the immutable ``team/rolling:v1``: 2.1.2;
- ``frozen`` uses ``team/rolling:stable`` without fetch_at_exec: resolved when the run
  started, so still v1 — 2.1.2;
- ``rolling`` uses ``@{ENVCTL_TEST_TEAM}/@{METAFLOW_STEP_NAME}:@{METAFLOW_INIT_ENVTAG}``
  (an environment variable, the step name and a flow parameter) with fetch_at_exec:
  resolved when the step is launched, after the move — 2.2.0. Without fetch_at_exec
  the name could not even be resolved at start (the parameter is a task-time value),
  and with a plain ``:stable`` it would give 2.1.2 like ``frozen``.

Each step stores the itsdangerous version it imports, ``sys.executable`` and
``sys.prefix``; the test reads them back with Metaflow's client, with the task metadata
the decorator registers, and checks envctl's run registry (``info``/``show``/``create
--pathspec``) names the same environments. Also: ``--with named_env:...``, and two
mistakes refused when the run starts (a task-time variable without fetch_at_exec; tag
v0, an environment without ``requests``, which ``import metaflow`` needs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.materialize import host_platform
from envctl.resolve.api import resolve_tag
from envctl.testing.channel import LocalChannel
from envctl.testing.pytest_plugin import catalog_yaml, git

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FLOW_NAME = "EnvctlFlow"
RESOLVED_AT = datetime(2025, 1, 2, tzinfo=UTC)
EXCLUDE_NEWER = datetime(2026, 1, 1, tzinfo=UTC)  # both itsdangerous versions are older

ROLLING = """\
description: The Metaflow test's environment
owners: [team]
tags:
  v0:
    platforms: [{platform}]
    dependencies: [python=3.11, itsdangerous=2.1.2]
  v1:
    platforms: [{platform}]
    dependencies: [python=3.11, requests, itsdangerous=2.1.2]
  v2:
    platforms: [{platform}]
    dependencies: [python=3.11, requests, itsdangerous=2.2.0]
  stable: {{points_to: v1}}
"""

FLOW = '''\
import os
import subprocess
import sys

from metaflow import FlowSpec, Parameter, named_env, step


def seen():
    """What this step's interpreter is and which itsdangerous it imports."""
    from importlib.metadata import version

    import itsdangerous  # noqa: F401 -- the import itself must work in the env

    return {"version": version("itsdangerous"), "executable": sys.executable,
            "prefix": sys.prefix, "conda_prefix": os.environ.get("CONDA_PREFIX", "")}


class EnvctlFlow(FlowSpec):
    envtag = Parameter("envtag", default="stable")

    @step
    def start(self):
        # The run has started (deploy time is over): move the mutable tag now.
        catalog = os.environ["ENVCTL_CATALOG"]
        path = os.path.join(catalog, "envs", "team", "rolling.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("points_to: v1", "points_to: v2"))
        subprocess.run(["git", "-C", catalog, "commit", "-q", "-am", "stable -> v2"],
                       check=True)
        self.next(self.pinned)

    @named_env(name="team/rolling:v1")
    @step
    def pinned(self):
        self.seen = seen()
        self.next(self.frozen)

    @named_env(name="team/rolling:stable")
    @step
    def frozen(self):
        self.seen = seen()
        self.next(self.rolling)

    @named_env(name="@{ENVCTL_TEST_TEAM}/@{METAFLOW_STEP_NAME}:@{METAFLOW_INIT_ENVTAG}",
               fetch_at_exec=True)
    @step
    def rolling(self):
        self.seen = seen()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    EnvctlFlow()
'''

# Run inside the test's Metaflow sandbox: artifacts and task metadata of one run as JSON.
READ_RUN = """\
import json, sys
from metaflow import Run, namespace
namespace(None)
run = Run(sys.argv[1])
out = {"successful": run.successful}
for step in run:
    task = step.task
    out[step.id] = {
        "seen": task.data.seen if "seen" in task else None,
        "metadata": {k: v for k, v in task.metadata_dict.items() if k.startswith("envctl_")},
    }
print(json.dumps(out))
"""

runner = CliRunner()


def envctl(*args: str | Path) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@dataclass(frozen=True)
class Catalog:
    root: Path
    ids: dict[str, str]  # tag -> req_id:full_id on this platform


@pytest.fixture(scope="module")
def resolved(
    git_env: Path, channel: LocalChannel, pypi_index: str, tmp_path_factory: pytest.TempPathFactory
) -> Catalog:
    """A catalog with ``team/rolling`` v0, v1 and v2 resolved, ``stable`` -> v1, committed."""
    root = tmp_path_factory.mktemp("metaflow") / "catalog"
    (root / "envs/team").mkdir(parents=True)
    (root / "locks").mkdir()
    (root / "catalog.yaml").write_text(catalog_yaml(channel.url, pypi_index))
    (root / "envs/team/rolling.yaml").write_text(ROLLING.format(platform=host_platform()))
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "team/rolling")
    ids = {}
    for tag in ("v0", "v1", "v2"):
        result = resolve_tag(root, f"team/rolling:{tag}", resolved_at=RESOLVED_AT,
                             resolved_by="ci@envctl.invalid", exclude_newer=EXCLUDE_NEWER)
        ids[tag] = next(p.env_id for p in result.platforms if p.platform == host_platform())
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "lock team/rolling")
    return Catalog(root, ids)


@pytest.fixture
def catalog(resolved: Catalog, tmp_path: Path) -> Catalog:
    """A private copy (with its git history): the flow's ``start`` step moves a tag."""
    shutil.copytree(resolved.root, tmp_path / "catalog", symlinks=True)
    return Catalog(tmp_path / "catalog", resolved.ids)


@pytest.fixture
def metaflow_env(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The variables of a sandboxed local Metaflow: datastore, metadata and config in
    tmp_path, no network, the extension found from the repository root."""
    home = tmp_path / "envctl-home"
    monkeypatch.setenv("ENVCTL_HOME", str(home))  # the in-process CLI reads the same registry
    monkeypatch.delenv("ENVCTL_STORE", raising=False)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("METAFLOW_", "ENVCTL_", "CONDA_")) and k != "PYTHONPATH"}
    env.update({
        "ENVCTL_HOME": str(home),
        "ENVCTL_CATALOG": str(catalog.root),
        "ENVCTL_HOST_PYTHON": os.environ.get("ENVCTL_HOST_PYTHON", sys.executable),
        "ENVCTL_TEST_TEAM": "team",
        "METAFLOW_HOME": str(tmp_path / "mf-config"),
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp_path / "mf-datastore"),
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "USERNAME": "envctl-tests",
        # Development layout: metaflow_extensions/ is found from the repository root, as
        # it is from an installed envctl.
        "PYTHONPATH": str(REPO),
    })
    return env


def test_named_env_steps_run_in_their_environments(
    tmp_path: Path, catalog: Catalog, metaflow_env: dict[str, str]
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    run_id_file = tmp_path / "run-id"
    proc = subprocess.run(
        [sys.executable, str(flow), "--no-pylint", "run", "--run-id-file", str(run_id_file)],
        cwd=tmp_path, env=metaflow_env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = run_id_file.read_text().strip()
    assert "@named_env: step rolling runs in team/rolling:v2" in proc.stdout + proc.stderr

    read = subprocess.run([sys.executable, "-c", READ_RUN, f"{FLOW_NAME}/{run_id}"],
                          cwd=tmp_path, env=metaflow_env, capture_output=True, text=True,
                          timeout=60)
    assert read.returncode == 0, read.stderr
    run = json.loads(read.stdout)
    assert run["successful"]

    # What each step saw: the immutable tag, the tag as it was when the run started, and
    # the tag as it is when the step runs (moved by `start` in between).
    versions = {s: run[s]["seen"]["version"] for s in ("pinned", "frozen", "rolling")}
    assert versions == {"pinned": "2.1.2", "frozen": "2.1.2", "rolling": "2.2.0"}

    expected = {"pinned": ("v1", "team/rolling:v1"), "frozen": ("v1", "team/rolling:stable"),
                "rolling": ("v2", "team/rolling:stable")}
    for step, (tag, asked) in expected.items():
        seen = run[step]["seen"]
        env_id = catalog.ids[tag]
        prefix = Path(seen["prefix"])
        # The step's interpreter is the environment's, not the runtime's.
        assert Path(seen["executable"]).parent == prefix / "bin"
        assert seen["conda_prefix"] == str(prefix)
        assert prefix.is_relative_to(metaflow_env["ENVCTL_HOME"])
        assert run[step]["metadata"] == {
            "envctl_env_id": env_id, "envctl_alias": f"team/rolling:{tag}",
            "envctl_asked": asked, "envctl_platform": host_platform(),
        }
        pathspec = f"{FLOW_NAME}/{run_id}/{step}"
        info = envctl("info", "--pathspec", pathspec, "--json")
        assert (info["id"], info["alias"], info["asked"]) == (env_id, f"team/rolling:{tag}",
                                                              asked)
        shown = envctl("-C", catalog.root, "show", "--pathspec", pathspec, "--json")
        assert shown["pathspec"] == pathspec and shown["id"] == env_id
    assert run["rolling"]["seen"]["prefix"] != run["pinned"]["seen"]["prefix"]

    # ...and the pathspec reproduces the environment elsewhere.
    rolling = f"{FLOW_NAME}/{run_id}/rolling"
    created = envctl("-C", catalog.root, "create", "--pathspec", rolling, "--prefix",
                     tmp_path / "again", "--json")
    assert created["id"] == catalog.ids["v2"]
    assert envctl("info", "--prefix", tmp_path / "again", "--json")["id"] == catalog.ids["v2"]


def test_with_option_attaches_named_env_to_every_step(
    tmp_path: Path, metaflow_env: dict[str, str]
) -> None:
    flow = tmp_path / "plain.py"
    flow.write_text(textwrap.dedent('''\
        import sys
        from importlib.metadata import version
        from metaflow import FlowSpec, step

        class PlainFlow(FlowSpec):
            @step
            def start(self):
                self.seen = (version("itsdangerous"), sys.executable)
                self.next(self.end)

            @step
            def end(self):
                print("end-prefix=" + sys.prefix)

        if __name__ == "__main__":
            PlainFlow()
        '''))
    proc = subprocess.run(
        [sys.executable, str(flow), "--no-pylint", "run", "--with",
         "named_env:name=team/rolling:v2,fetch_at_exec=False"],
        cwd=tmp_path, env=metaflow_env, capture_output=True, text=True, timeout=240,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "@named_env: step start runs in team/rolling:v2" in output
    assert "@named_env: step end runs in team/rolling:v2" in output
    prefix = next(line.split("end-prefix=", 1)[1].strip() for line in output.splitlines()
                  if "end-prefix=" in line)
    assert Path(prefix).is_relative_to(metaflow_env["ENVCTL_HOME"])



@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # A parameter is only known once the run's tasks exist.
        (("fetch_at_exec=True", "fetch_at_exec=False"),
         "@{METAFLOW_INIT_ENVTAG} in \"@{ENVCTL_TEST_TEAM}/@{METAFLOW_STEP_NAME}:"
         "@{METAFLOW_INIT_ENVTAG}\": variable METAFLOW_INIT_ENVTAG is not set [unset-variable]"
         " — METAFLOW_INIT_<PARAM> is only known when the step runs: add fetch_at_exec=True"),
        # An environment in which `import metaflow` cannot work.
        (('name="team/rolling:v1"', 'name="team/rolling:v0"'),
         "step 'pinned': team/rolling:v0 ({v0}) has no requests, which Metaflow needs to run a "
         "step in it: add them to the environment (a new tag)"),
    ],
    ids=["task-time-variable", "no-requests"],
)
def test_a_bad_named_env_stops_the_run_before_any_step(
    tmp_path: Path, catalog: Catalog, metaflow_env: dict[str, str], change: tuple[str, str],
    expected: str,
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW.replace(*change))
    proc = subprocess.run([sys.executable, str(flow), "--no-pylint", "run"], cwd=tmp_path,
                          env=metaflow_env, capture_output=True, text=True, timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in output
    assert "@named_env" in output
    assert expected.replace("{v0}", catalog.ids["v0"]) in output, output
    assert "Task is starting" not in output  # refused when the run starts, before any step
