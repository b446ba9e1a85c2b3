"""The README's first command: ``envctl demo`` walks the loop end to end, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envctl.cli.demo_cmd import DEMO_ENV


@pytest.mark.slow
def test_demo_walks_the_loop_in_a_fresh_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "envctl", "demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    root = tmp_path / "demo" / "work"
    lock_dir = root / "locks" / DEMO_ENV
    assert sorted(p.name for p in lock_dir.iterdir()) == [
        "v1.conda-lock.yml",
        "v1.meta.yaml",
        "v2.conda-lock.yml",
        "v2.meta.yaml",
    ]
    # The server's hook refused the in-place edit of the frozen tag, naming the fix.
    assert "[frozen-tag]" in proc.stdout
    assert "add tag v3 instead" in proc.stdout
    assert "pre-receive hook declined" in proc.stdout
    # CI's signed commit landed on the server: the clone pulled it.
    log = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%G?%n%B"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "Envctl-CI:" in log
    # The environment 'stable' points to really runs its python with the locked packages.
    assert "tinyframe 1.0 tinynum 2.0" in proc.stdout
    assert "1 environment, 3 tags: ok" in proc.stdout
