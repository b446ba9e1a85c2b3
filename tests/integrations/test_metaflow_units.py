"""The pieces of the Metaflow ``@named_env`` that need no Metaflow run (fast)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from envctl.errors import EnvctlError
from envctl.integrations.metaflow import (
    ExecVariables,
    exec_hint,
    missing_for_tasks,
    param_variable,
    task_launch,
)
from envctl.names import interpolate

# -- @{VAR} in a Metaflow runtime ----------------------------------------------------------


def test_runtime_values_win_and_lazy_ones_are_read_only_when_used() -> None:
    reads: list[str] = []

    def param() -> str:
        reads.append("alpha")
        return "stable"

    env = ExecVariables(
        {"TEAM": "ranking", "METAFLOW_RUN_ID": "outer"},
        {"METAFLOW_RUN_ID": "12", "METAFLOW_STEP_NAME": "train", "METAFLOW_TASK_ID": None},  # type: ignore[dict-item]
        {"METAFLOW_INIT_ALPHA": param},
    )
    assert interpolate("@{TEAM}/@{METAFLOW_STEP_NAME}:r@{METAFLOW_RUN_ID}", env) == (
        "ranking/train:r12")
    assert reads == []  # no name used the parameter: the datastore is never read
    assert interpolate("@{TEAM}/env:@{METAFLOW_INIT_ALPHA}", env) == "ranking/env:stable"
    assert interpolate("@{TEAM}/env:@{METAFLOW_INIT_ALPHA}", env) == "ranking/env:stable"
    assert reads == ["alpha"]  # once
    assert "METAFLOW_TASK_ID" not in env  # None means "not known here"
    assert set(env) == {"TEAM", "METAFLOW_RUN_ID", "METAFLOW_STEP_NAME", "METAFLOW_INIT_ALPHA"}
    assert len(env) == 4


def test_param_variables_are_spelled_as_metaflow_does() -> None:
    assert param_variable("learning-rate") == "METAFLOW_INIT_LEARNING_RATE"
    assert param_variable("envtag") == "METAFLOW_INIT_ENVTAG"


@pytest.mark.parametrize(
    ("template", "fetch_at_exec", "hint"),
    [
        ("team/env:@{METAFLOW_INIT_TAG}", False, "METAFLOW_INIT_<PARAM> is only known"),
        ("team/env:t@{METAFLOW_TASK_ID}", False, "METAFLOW_TASK_ID is only known"),
        ("team/env:@{METAFLOW_INIT_TAG}", True, None),  # then it is simply not set
        ("@{ENVCTL_TEST_UNSET}/env:@{METAFLOW_INIT_TAG}", False, None),  # another variable
    ],
)
def test_a_task_time_variable_at_deploy_time_hints_at_fetch_at_exec(
    template: str, fetch_at_exec: bool, hint: str | None
) -> None:
    with pytest.raises(EnvctlError) as info:
        interpolate(template, {})
    error = exec_hint(info.value, fetch_at_exec=fetch_at_exec)
    if hint is None:
        assert error is info.value
    else:
        assert error.fix is not None and error.fix.startswith(hint)
        assert error.fix.endswith("add fetch_at_exec=True")
        assert (error.rule, error.message, type(error)) == (
            info.value.rule, info.value.message, type(info.value))


# -- launching a task in an environment -------------------------------------------------------


def test_task_launch_activates_the_environment_for_the_task(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    base = {"PATH": "/usr/bin", "PYTHONHOME": "/elsewhere", "VIRTUAL_ENV": "/venv", "KEEP": "1"}
    head, env = task_launch(prefix, {"PYTHONPATH": "/code"}, base)
    assert head == [str(prefix / "bin" / "python")]
    assert env["PATH"].split(":")[0] == str(prefix / "bin")
    assert env["CONDA_PREFIX"] == str(prefix)
    # Only changes: the launcher adds them to the runtime's environment.
    assert "KEEP" not in env
    assert (env["PYTHONHOME"], env["VIRTUAL_ENV"]) == ("", "")  # empty is unset for Python
    assert (env["PYTHONNOUSERSITE"], env["PYTHONPATH"]) == ("1", "/code")


def test_an_environment_must_provide_what_a_metaflow_task_imports() -> None:
    assert missing_for_tasks(["python", "Requests", "urllib3"]) == []
    assert missing_for_tasks(["python", "tinynum"]) == ["requests"]
    assert missing_for_tasks([]) == ["python", "requests"]


def test_task_launch_sources_activate_scripts(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    (prefix / "etc/conda/activate.d").mkdir(parents=True)
    (prefix / "etc/conda/activate.d/java.sh").write_text("export JAVA_HOME=$CONDA_PREFIX\n")
    head, _ = task_launch(prefix, base={"PATH": "/usr/bin"})
    assert head[0] == "bash" and head[-1] == str(prefix / "bin" / "python")


# -- the step decorator's checks ------------------------------------------------------------

# From the repository root until envctl is installed with metaflow_extensions among its
# packages (an editable install then finds it too). Metaflow itself comes with the test extra.
if importlib.util.find_spec("metaflow_extensions") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# Metaflow first, as in a flow: importing metaflow loads its plugins, this one among them.
importlib.import_module("metaflow")
plugin = importlib.import_module("metaflow_extensions.envctl.plugins.envctl_named_env")


def make(**attributes: Any) -> Any:
    return plugin.NamedEnvStepDecorator(attributes=attributes)


def step_init(deco: Any, *others: str) -> None:
    decorators = [deco, *(SimpleNamespace(name=o) for o in others)]
    flow = SimpleNamespace(name="TrainFlow")
    deco.step_init(flow, None, "train", decorators, None, None, print)


@pytest.mark.parametrize(("value", "expected"), [
    (False, False), (True, True), ("False", False), ("false", False), ("True", True),
    ("1", True), ("0", False), (None, False),
])
def test_fetch_at_exec_from_with_is_text(value: Any, expected: bool) -> None:
    assert plugin._as_bool(value) is expected


def test_step_init_refuses_unclear_or_conflicting_uses() -> None:
    with pytest.raises(plugin.NamedEnvException, match="exactly one of name= and pathspec="):
        step_init(make(name="team/env:v1", pathspec="F/1/s"))
    with pytest.raises(plugin.NamedEnvException, match="exactly one of name= and pathspec="):
        step_init(make())
    with pytest.raises(plugin.NamedEnvException, match="@kubernetes"):
        step_init(make(name="team/env:v1"), "kubernetes")
    with pytest.raises(plugin.NamedEnvException, match="@conda"):
        step_init(make(name="team/env:v1"), "conda")
    deco = make(name="team/env:v1", fetch_at_exec="False")
    step_init(deco, "retry")
    assert deco.attributes["fetch_at_exec"] is False  # passed on to tasks as a real bool


def test_a_task_not_launched_by_the_runtime_refuses_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deco = make(name="team/env:v1")
    step_init(deco)
    metadata = SimpleNamespace(register_metadata=lambda *a: pytest.fail("registered"))

    def pre_step() -> None:
        deco.task_pre_step("train", None, metadata, "12", "3", None, None, 0, 0, None, [])

    monkeypatch.delenv(plugin.HANDOFF_ENV, raising=False)
    with pytest.raises(plugin.NamedEnvException, match="was not started in its environment"):
        pre_step()
    handoff = {"pathspec": "TrainFlow/12/train", "env_id": "a:b", "alias": "team/env:v1",
               "asked": "team/env:v1", "platform": "linux-64", "prefix": "/nowhere"}
    monkeypatch.setenv(plugin.HANDOFF_ENV, json.dumps({**handoff, "pathspec": "TrainFlow/11/x"}))
    with pytest.raises(plugin.NamedEnvException, match="was not started in its environment"):
        pre_step()
    monkeypatch.setenv(plugin.HANDOFF_ENV, json.dumps(handoff))
    with pytest.raises(plugin.NamedEnvException, match="should run in /nowhere"):
        pre_step()

    registered: list[Any] = []
    metadata.register_metadata = lambda *args: registered.append(args)
    monkeypatch.setenv(plugin.HANDOFF_ENV, json.dumps({**handoff, "prefix": sys.prefix}))
    pre_step()
    (run_id, step, task_id, data), = registered
    assert (run_id, step, task_id) == ("12", "train", "3")
    assert {d.field: d.value for d in data} == {
        "envctl_env_id": "a:b", "envctl_alias": "team/env:v1", "envctl_asked": "team/env:v1",
        "envctl_platform": "linux-64"}
