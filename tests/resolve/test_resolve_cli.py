"""``envctl resolve`` through the real CLI (typer's CliRunner), on the fixture catalog."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.meta import load_meta

pytestmark = pytest.mark.slow

CUTOFF = "2024-06-01T00:00:00Z"


def envctl(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["--catalog", str(root), *args], env={"ENVCTL_RESOLVED_BY": "cli-test"}
    )
    return result.exit_code, result.stdout, result.stderr


def write_env(root: Path, name: str, text: str) -> None:
    path = root / "envs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def commit_all(root: Path, when: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    subprocess.run(["git", "add", "-A", "envs"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "envs"], cwd=root, check=True, env=env)


def test_resolve_prints_ids_and_then_says_frozen(catalog: Path) -> None:
    write_env(catalog, "team/cli", "tags:\n  v1:\n    dependencies: [python=3.11, tinynum]\n")
    commit_all(catalog, CUTOFF)
    code, out, err = envctl(catalog, "resolve", "team/cli:v1")
    assert code == 0, err
    meta = load_meta((catalog / "locks/team/cli/v1.meta.yaml").read_bytes(), file="m")
    assert meta.resolved_by == "cli-test"
    assert meta.exclude_newer == "2024-06-01T00:00:00Z"
    assert "resolved wrote locks/team/cli/v1.conda-lock.yml" in out
    lines = out.splitlines()
    assert lines[0].startswith("team/cli:v1  linux-64   ") and lines[1].lstrip().startswith("osx")
    for line in lines[:2]:
        (env_id,) = [word for word in line.split() if len(word) == 81 and word[40] == ":"]
        assert line.endswith(f"{env_id}  2 conda + 0 pypi")
    subprocess.run(["git", "add", "-A", "locks"], cwd=catalog, check=True)
    commit_all(catalog, CUTOFF)
    code, out, err = envctl(catalog, "resolve", "team/cli:v1")
    assert code == 0
    assert "frozen team/cli:v1 is frozen (immutable and locked); nothing to do" in out


def test_resolve_json(catalog: Path) -> None:
    write_env(catalog, "team/cli", "tags:\n  v1:\n    dependencies: [python=3.11]\n")
    code, out, err = envctl(catalog, "resolve", "team/cli:v1", "--json", "--exclude-newer", CUTOFF)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["errors"] == []
    (result,) = doc["results"]
    assert result["status"] == "resolved" and result["exclude_newer"] == CUTOFF
    assert [p["platform"] for p in result["platforms"]] == ["linux-64", "osx-arm64"]
    assert all(p["id"] == f"{p['req_id']}:{p['full_id']}" for p in result["platforms"])


def test_resolve_errors_exit_1_with_one_line_each(catalog: Path) -> None:
    write_env(
        catalog,
        "team/cli",
        "tags:\n  v1:\n    dependencies: [python=3.11, libalpah]\n"
        "  v2:\n    dependencies: [python=3.11]\n",
    )
    code, out, err = envctl(
        catalog, "resolve", "team/cli:v1", "team/cli:v2", "--exclude-newer", "now"
    )
    assert code == 1
    assert "resolved wrote locks/team/cli/v2.conda-lock.yml" in out  # one failure stops nothing
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: envs/team/cli.yaml [v1]: no package named 'libalpah'")
    assert "[unknown-package] — did you mean libalpha" in line


def test_resolve_needs_a_target_and_a_committed_tag(catalog: Path) -> None:
    code, _, err = envctl(catalog, "resolve")
    assert code == 1 and "nothing to resolve" in err
    write_env(catalog, "team/cli", "tags:\n  v1:\n    dependencies: [python=3.11]\n")
    code, _, err = envctl(catalog, "resolve", "team/cli:v1")
    assert code == 1 and "[uncommitted-tag]" in err
    code, _, err = envctl(catalog, "resolve", "team/cli:v1", "--exclude-newer", "yesterday")
    assert code == 1 and "--exclude-newer 'yesterday' is not a time" in err


def test_changed_since_and_all(catalog: Path) -> None:
    write_env(catalog, "team/a", "tags:\n  v1:\n    dependencies: [python=3.11]\n")
    commit_all(catalog, CUTOFF)
    write_env(
        catalog,
        "team/a",
        "tags:\n  v1:\n    dependencies: [python=3.11]\n"
        "  v2:\n    dependencies: [python=3.11, tinydata]\n  stable: {points_to: v2}\n",
    )
    write_env(catalog, "team/b", "tags:\n  v1:\n    dependencies: [python=3.11]\n")
    code, out, err = envctl(
        catalog, "resolve", "--changed-since", "HEAD", "--json", "--exclude-newer", "now"
    )
    assert code == 0, err
    assert [r["alias"] for r in json.loads(out)["results"]] == ["team/a:v2", "team/b:v1"]
    code, out, err = envctl(catalog, "resolve", "--all", "--json", "--platform", "linux-64")
    assert code == 0, err
    statuses = {r["alias"]: r["status"] for r in json.loads(out)["results"]}
    assert statuses == {"team/a:v1": "solved-only", "team/a:v2": "frozen", "team/b:v1": "frozen"}


def test_progress_display_follows_events() -> None:
    from envctl.cli.resolve_cmds import _Progress
    from envctl.resolve.api import ResolveEvent

    with _Progress(True) as progress:
        for stage in ("start", "conda", "pypi", "solved"):
            progress(ResolveEvent("team/a:v1", "linux-64", stage, "x" * 81))  # type: ignore[arg-type]
        progress(ResolveEvent("team/a:v1", "osx-arm64", "start"))
        progress(ResolveEvent("team/a:v1", None, "failed", "boom"))
        progress(ResolveEvent("team/b:v1", None, "start", "resolving its base first"))
        tasks = progress.progress.tasks
        assert [t.finished for t in tasks] == [True, False]
        assert "failed" in tasks[1].description
