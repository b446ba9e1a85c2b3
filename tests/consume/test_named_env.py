"""``@named_env``: interpolation, resolve time, fetch_at_exec, and the pathspec record."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from envctl import api
from envctl.errors import EnvctlError
from envctl.integrations.metaflow import named_env
from envctl.runs import lookup_run
from envctl.store import LocalStore

from .conftest import Resolved

pytestmark = pytest.mark.slow

TINYNUM = ["python", "-c", "import tinynum; print(tinynum.__version__)"]


def versions_seen() -> str:
    """What ``python`` on PATH imports: inside the decorated call, the environment's."""
    return subprocess.run(TINYNUM, capture_output=True, text=True, check=True).stdout.strip()


def test_interpolated_name_is_resolved_at_decoration_and_activated_per_call(
    resolved_catalog: Resolved, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM", "team")
    monkeypatch.setenv("VERSION", "v2")

    @named_env(name="@{TEAM}/app:@{VERSION}", catalog=resolved_catalog.root)
    def job(x: int) -> tuple[int, str, str]:
        return x + 1, versions_seen(), os.environ["CONDA_PREFIX"]

    binding = job.envctl_env  # type: ignore[attr-defined]
    assert binding.resolved.alias == "team/app:v2"
    assert binding.env_id == resolved_catalog.ids["v2"]["linux-64"]
    monkeypatch.setenv("VERSION", "v1")  # too late: the name was resolved when decorated
    path_before = os.environ["PATH"]
    assert job(1) == (2, "2.0", str(binding.prefix))
    assert os.environ["PATH"] == path_before and "CONDA_PREFIX" not in os.environ
    assert binding.run(TINYNUM, capture_output=True, text=True).stdout.strip() == "2.0"


def test_unset_variable_is_a_clear_error(
    resolved_catalog: Resolved, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENVCTL_TEST_UNSET", raising=False)
    with pytest.raises(EnvctlError) as info:
        named_env(name="team/@{ENVCTL_TEST_UNSET}:v1", catalog=resolved_catalog.root)(lambda: 0)
    assert "ENVCTL_TEST_UNSET" in info.value.message and "not set" in info.value.message
    with pytest.raises(EnvctlError) as info:
        named_env(name="team/app:v1", pathspec="F/1/s")(lambda: 0)
    assert info.value.rule == "invalid-arguments"


def test_fetch_at_exec_follows_a_moved_tag(catalog_copy: Path) -> None:
    @named_env(name="team/app:stable", catalog=catalog_copy)
    def pinned() -> str:
        return versions_seen()

    @named_env(name="team/app:stable", catalog=catalog_copy, fetch_at_exec=True)
    def rolling() -> str:
        return versions_seen()

    assert rolling.envctl_env.resolved is None  # type: ignore[attr-defined]
    env_file = catalog_copy / "envs/team/app.yaml"
    env_file.write_text(env_file.read_text().replace("points_to: v1", "points_to: v2"))
    assert pinned() == "1.1"  # resolved when decorated (deploy time): stable was v1
    assert rolling() == "2.0"  # resolved when it runs: stable is v2 now
    assert rolling.envctl_env.resolved.alias == "team/app:v2"  # type: ignore[attr-defined]


def test_a_step_records_its_environment_under_its_pathspec(
    resolved_catalog: Resolved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")

    class TrainFlow:
        @named_env(name="team/app:stable", catalog=resolved_catalog.root, store=store)
        def train(self) -> str:
            return versions_seen()

    monkeypatch.setenv("METAFLOW_RUN_ID", "456")
    assert TrainFlow().train() == "1.1"
    env_id = resolved_catalog.ids["v1"]["linux-64"]
    record = lookup_run("TrainFlow/456/train")
    assert (record.alias, record.asked, record.env_id) == ("team/app:v1", "team/app:stable",
                                                          env_id)
    assert store.exists("runs/TrainFlow/456/train.json")  # another machine finds it there
    assert lookup_run("TrainFlow/456/train/7", home=tmp_path / "elsewhere",
                      store=store).env_id == env_id

    # ...and the pathspec reproduces it, by decorator or by create.
    @named_env(pathspec="TrainFlow/@{METAFLOW_RUN_ID}/train", catalog=resolved_catalog.root)
    def inference() -> str:
        return versions_seen()

    assert inference.envctl_env.env_id == env_id  # type: ignore[attr-defined]
    assert inference() == "1.1"
    prefix = api.create(pathspec="TrainFlow/456/train", catalog=resolved_catalog.root,
                        prefix=tmp_path / "env")
    assert api.info(prefix=prefix).env_id == env_id
