"""``envctl extend``: a new tag on a pinned base; the base untouched; conflicts refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from envctl.resolve.lockfile import read_lock

from .conftest import envctl

pytestmark = pytest.mark.slow



def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted((root / "envs").rglob("*")) + sorted((root / "locks").rglob("*"))
            if p.is_file()}


def test_extend_pins_the_base_and_adds(catalog_copy: Path) -> None:
    before = snapshot(catalog_copy)
    result = envctl("-C", catalog_copy, "extend", "team/app:stable", "--add", "libalpha",
                    "--name", "team/app-alpha:v1", "--owner", "team")
    assert result.exit_code == 0, result.output
    assert "wrote team/app-alpha:v1 extending team/app:v1" in result.stdout
    assert "no lock written" in result.stdout
    text = (catalog_copy / "envs/team/app-alpha.yaml").read_text()
    assert "extends: team/app:v1" in text and "libalpha" in text
    # The trial resolve wrote no lock: the work tree gained the environment file only (CI
    # writes the locks), and the base's file, lock and meta are what they were.
    assert snapshot(catalog_copy) == {**before, "envs/team/app-alpha.yaml": text.encode()}

    # The lock CI will write (as 'envctl resolve' writes it) pins the base exactly.
    result = envctl("-C", catalog_copy, "resolve", "team/app-alpha:v1", "--exclude-newer", "now")
    assert result.exit_code == 0, result.output
    after = snapshot(catalog_copy)

    base = read_lock(before["locks/team/app/v1.conda-lock.yml"])
    new = read_lock(after["locks/team/app-alpha/v1.conda-lock.yml"])
    for platform in ("linux-64", "osx-arm64"):
        base_files = {(p.filename, p.sha256) for p in base.for_platform(platform)}
        new_files = {(p.filename, p.sha256) for p in new.for_platform(platform)}
        assert base_files < new_files  # every base package, exactly as locked
        assert {p.name for p in new.for_platform(platform)} >= {"libalpha", "itsdangerous"}


def test_extend_from_a_pending_base_writes_no_lock_at_all(catalog_copy: Path) -> None:
    """v3 is pending: the trial resolves it first, and keeps both locks out of the tree."""
    before = snapshot(catalog_copy)
    result = envctl("-C", catalog_copy, "extend", "team/app:v3", "--add", "libalpha",
                    "--name", "team/app:v9", "--json")
    assert result.exit_code == 0, result.output
    after = snapshot(catalog_copy)
    assert set(after) == set(before)
    assert [k for k in after if after[k] != before[k]] == ["envs/team/app.yaml"]
    assert not (catalog_copy / "locks/team/app/v3.conda-lock.yml").exists()


def test_extend_same_env_uses_a_short_extends(catalog_copy: Path) -> None:
    result = envctl("-C", catalog_copy, "extend", "team/app:v2", "--pypi", "six",
                    "--name", "team/app:v4", "--no-resolve")
    assert result.exit_code == 0, result.output
    assert "  v4:\n    extends: v2\n    pypi:\n      - six\n" in (
        catalog_copy / "envs/team/app.yaml").read_text()


def test_conflicting_addition_is_refused_and_nothing_is_written(catalog_copy: Path) -> None:
    before = snapshot(catalog_copy)
    result = envctl("-C", catalog_copy, "extend", "team/app:v1", "--add", "tinynum>=2",
                    "--name", "team/app:v5")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("error: ") and "tinynum" in line and "team/app:v1" in line
    assert snapshot(catalog_copy) == before


def test_extend_refuses_an_existing_tag_and_an_empty_addition(catalog_copy: Path) -> None:
    result = envctl("-C", catalog_copy, "extend", "team/app:v1", "--add", "six",
                    "--name", "team/app:v2")
    assert result.exit_code == 1 and "team/app:v2 already exists" in result.stderr
    result = envctl("-C", catalog_copy, "extend", "team/app:v1", "--name", "team/app:v9")
    assert result.exit_code == 1 and "nothing to add" in result.stderr
