"""lint's large-catalog paths give exactly what the plain path gives: metas checked in
worker processes (forced here on a small catalog), from a work tree and from a git
revision, and line maps loaded only when a finding needs a line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from envctl import lint as lint_module
from envctl import yamlio
from envctl.catalog import Catalog, GitSource, WorkTreeSource
from envctl.lint import lint_catalog

CONFIG = """\
channels:
  main: https://conda.example.org/main
platforms: [linux-64, osx-arm64]
mutable_tags: [latest, stable, nightly]
"""


def meta(alias: str) -> str:
    request = {"version": "1", "channels": ["main"], "dependencies": ["numpy"], "pypi": [],
               "virtual_packages": {}, "base_full_id": None, "exclude_newer": None}
    return yamlio.dump({
        "version": "1", "alias": alias, "resolved_at": "2024-01-02T00:00:00Z",
        "resolved_by": "ci", "envctl_version": "0.1.0", "lock_sha256": "0" * 64,
        "platforms": {p: {"req_id": "a" * 40, "full_id": "b" * 40,
                          "request": {**request, "platform": p}}
                      for p in ("linux-64", "osx-arm64")},
    })


def catalog_files() -> dict[str, str]:
    files = {"catalog.yaml": CONFIG}
    for i in range(30):
        name = f"team{i % 3}/env-{i}"
        files[f"envs/{name}.yaml"] = (
            "tags:\n  v1:\n    dependencies: [python=3.11, numpy]\n"
            "  v2:\n    extends: v1\n    dependencies: [pandas]\n"
            "  stable: {points_to: v1}\n"
        )
        for tag in ("v1", "v2"):
            files[f"locks/{name}/{tag}.conda-lock.yml"] = "version: 1\n"
            files[f"locks/{name}/{tag}.meta.yaml"] = meta(f"{name}:{tag}")
    # Problems of every kind a meta can have, among many good ones.
    files["locks/team0/env-0/v1.meta.yaml"] = meta("team0/env-3:v1")  # wrong alias
    files["locks/team1/env-1/v2.meta.yaml"] = "version: '1'\nalias: [\n"  # not YAML
    files["locks/team2/env-2/v1.meta.yaml"] = "version: '1'\nalias: team2/env-2:v1\n"  # schema
    files["locks/team0/env-3/v2.meta.yaml"] = "a: 1\na: 2\n"  # duplicate key
    files["locks/gone/env/v1.meta.yaml"] = meta("gone/env:v1")  # orphan: never checked
    # Problems in environment files whose lines are loaded only for the finding.
    files["envs/team0/env-6.yaml"] = (
        "tags:\n  v1:\n    dependencies: [python=3.11]\n  stable: {points_to: v9}\n"
        "  v1_0:\n    dependencies: ['numpy[']\n"
    )
    return files


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text)


def findings(catalog: Catalog) -> list[tuple[str | None, int | None, str, str]]:
    return [(f.file, f.line, f.rule, f.message) for f in lint_catalog(catalog).findings]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, catalog_files())
    return tmp_path


def test_metas_in_workers_find_what_the_plain_path_finds(tree: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    plain = findings(Catalog(WorkTreeSource(tree)))
    rules = {rule for _, _, rule, _ in plain}
    assert {"meta-alias-mismatch", "yaml-syntax", "schema", "duplicate-key",
            "orphan-lock", "pointer-target-missing", "invalid-requirement"} <= rules, plain
    monkeypatch.setattr(lint_module, "PARALLEL_ENVS", 1)
    monkeypatch.setattr(lint_module, "_worker_count", lambda: 2)
    assert findings(Catalog(WorkTreeSource(tree))) == plain


def test_metas_in_workers_from_a_git_revision(tree: Path, git_env: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker reads through its own ``git cat-file`` (the parent's pipe is not shared)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tree), "commit", "-q", "-m", "catalog"], check=True)
    rev = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    plain = findings(Catalog(WorkTreeSource(tree)))
    monkeypatch.setattr(lint_module, "PARALLEL_ENVS", 1)
    monkeypatch.setattr(lint_module, "_worker_count", lambda: 2)
    source = GitSource(tree, rev)
    assert findings(Catalog(source)) == plain
    source.read("catalog.yaml")  # the parent's reader still works after the workers
