"""The README's first command: ``envctl demo`` walks the loop end to end, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envctl import yamlio
from envctl.cli import demo_cmd
from envctl.cli.demo_cmd import DEMO_ENV, EXAMPLE_SHOWN, Examples, demo_steps, example_catalog
from envctl.cli.main import app
from envctl.names import env_name_from_path
from envctl.spec import ConcreteTag, parse_env_file

REPO = Path(__file__).resolve().parents[2]


def example_tags() -> list[tuple[str, str]]:
    """(env, tag) of every concrete tag of the repository's example catalog."""
    catalog = REPO / "catalog"
    tags = []
    for path in sorted((catalog / "envs").rglob("*.yaml")):
        spec = parse_env_file(yamlio.load_path(path), file=str(path))
        name = str(env_name_from_path(path.relative_to(catalog).as_posix()))
        tags += [(name, tag) for tag, t in spec.tags.items() if isinstance(t, ConcreteTag)]
    return tags


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

    # The repository's example catalog went through the same push, hook and CI run:
    # every concrete tag of it is locked (cross-env extends, __cuda, the PyPI part).
    tags = example_tags()
    assert ("ranking/train", "v1") in tags and ("vision/gpu", "v1") in tags
    for env, tag in tags:
        assert (root / "locks" / env / f"{tag}.conda-lock.yml").is_file(), f"{env}:{tag}"
        assert (root / "locks" / env / f"{tag}.meta.yaml").is_file(), f"{env}:{tag}"
        assert f"{env}:{tag} " in log, log  # CI's commit message lists it
    train_lock = (root / "locks" / "ranking" / "train" / "v1.conda-lock.yml").read_text()
    assert "itsdangerous" in train_lock and "manager: pip" in train_lock
    gpu_lock = (root / "locks" / "vision" / "gpu" / "v1.conda-lock.yml").read_text()
    assert "torchlet-1.0-cuda_1" in gpu_lock and "torchlet-1.0-cpu_0" in gpu_lock
    assert f"{EXAMPLE_SHOWN}\n" in proc.stdout and "pypi::itsdangerous==2.1.2" in proc.stdout
    # The PyPI index served only on the loopback interface.
    assert "index at http://127.0.0.1:" in proc.stdout
    assert "envctl --catalog" in proc.stdout.splitlines()[-1]  # a kept DIR: explore it


def test_example_catalog_is_found_in_a_source_checkout() -> None:
    assert example_catalog() == REPO / "catalog"


def test_demo_steps_add_the_examples_only_when_there_are_some(tmp_path: Path) -> None:
    def argvs(steps: list[demo_cmd.Step]) -> list[str]:
        return [" ".join(step.argv) for step in steps]

    plain = argvs(demo_steps(tmp_path, "file:///channel"))
    assert not any(a.startswith("cp ") or "--pypi-index" in a for a in plain)
    examples = Examples(REPO / "catalog" / "envs", ("stable", "nightly"), "http://127.0.0.1:1/simple/")
    steps = demo_steps(tmp_path, "file:///channel", examples)
    full = argvs(steps)
    init = next(a for a in full if a.startswith("init "))
    assert "--mutable-tag stable --mutable-tag nightly" in init
    assert "--pypi-index http://127.0.0.1:1/simple/" in init
    copy = next(i for i, a in enumerate(full) if a.startswith("cp -R"))
    push = next(i for i, a in enumerate(full) if "push -q" in a and "commit" in a)
    assert copy == push - 1  # copied in the commit step: pushed, hooked and resolved with it
    assert f"show {EXAMPLE_SHOWN}" in " | ".join(full)


@pytest.mark.parametrize("keep", [True, False])
def test_closing_hint_never_names_a_removed_folder(
    keep: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The steps themselves are the slow test's job; here only what the demo says last.
    monkeypatch.setattr(demo_cmd, "demo_steps", lambda *args, **kwargs: [])
    monkeypatch.setattr(demo_cmd, "example_catalog", lambda: None)
    args = ["demo", str(tmp_path / "d")] if keep else ["demo"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "No example catalog beside this envctl" in result.output
    last = result.output.strip().splitlines()[-1]
    if keep:
        assert f"envctl --catalog {tmp_path / 'd' / 'work'} show" in last
    else:
        assert "envctl-demo-" not in result.output.split("Done")[-1]
        assert last == ("The demo's temporary folder is removed; run `envctl demo DIR` to "
                        "keep the catalog, server and store.")
