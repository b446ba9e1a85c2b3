"""``python -m envctl.testing.channel DEST``: the command the example catalog tells users to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envctl.testing.channel import REPODATA_SHA256, channel_url, main, repodata_sha256

REPO = Path(__file__).resolve().parents[2]


def test_main_builds_the_channel_and_prints_its_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "channel"
    assert main([str(dest)]) == 0
    assert capsys.readouterr().out == channel_url(dest) + "\n"
    assert repodata_sha256(dest) == REPODATA_SHA256

    assert main([str(dest)]) == 1  # never silently replaces a folder
    assert "is not empty; pass --overwrite" in capsys.readouterr().err
    assert main([str(dest), "--overwrite"]) == 0
    assert repodata_sha256(dest) == REPODATA_SHA256


def test_main_needs_a_destination(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2
    assert "DEST" in capsys.readouterr().err


@pytest.mark.slow
def test_example_catalog_resolves_as_its_catalog_yaml_says(tmp_path: Path) -> None:
    """catalog/catalog.yaml's two commands, run from a repository root: every tag locks
    except ranking/train:v1, whose 'pypi:' part needs an index the example does not name."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "catalog", repo / "catalog",
                    ignore=shutil.ignore_patterns(".channel", ".store"))
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "example"]):
        subprocess.run(["git", *args], cwd=repo, env=git_env, check=True)

    build = subprocess.run([sys.executable, "-m", "envctl.testing.channel", "catalog/.channel"],
                           cwd=repo, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert build.stdout.strip() == channel_url(repo / "catalog" / ".channel")

    envctl = Path(sys.executable).parent / "envctl"
    proc = subprocess.run(
        [str(envctl), "--catalog", "catalog", "resolve", "--all", "--exclude-newer", "now"],
        cwd=repo, capture_output=True, text=True, env={**git_env, "ENVCTL_HOME": str(tmp_path)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The example's index is a placeholder on loopback's discard port: that tag fails, offline.
    assert "envs/ranking/train.yaml [v1]" in proc.stderr
    assert "[pypi-failed]" in proc.stderr and "127.0.0.1:9" in proc.stderr
    locks = repo / "catalog" / "locks"
    for tag in ("ranking/base/v1", "ranking/base/v2", "ranking/base/nightly", "vision/gpu/v1",
                "vision/tools/web/1.10"):
        assert (locks / f"{tag}.conda-lock.yml").is_file(), tag
    assert not (locks / "ranking" / "train").exists()
