"""lint's large-catalog paths give exactly what the plain path gives: metas checked in
worker processes (forced here on a small catalog), from a work tree and from a git
revision, and line maps loaded only when a finding needs a line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from envctl import forkpool, yamlio
from envctl.catalog import Catalog, GitSource, WorkTreeSource
from envctl.lint import lint_catalog
from envctl.meta import Meta, dump_meta

CONFIG = """\
channels:
  main: https://conda.example.org/main
platforms: [linux-64, osx-arm64]
mutable_tags: [latest, stable, nightly]
"""


def meta(alias: str, *, as_json: bool = False) -> str:
    """A meta as earlier envctl wrote it (block YAML), or as envctl writes it now (JSON)."""
    request = {"version": "1", "channels": ["main"], "dependencies": ["numpy"], "pypi": [],
               "virtual_packages": {}, "base_full_id": None, "exclude_newer": None}
    dump = (lambda d: dump_meta(Meta.model_validate(d)).decode()) if as_json else yamlio.dump
    return dump({
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
            files[f"locks/{name}/{tag}.meta.yaml"] = meta(f"{name}:{tag}", as_json=i % 2 == 0)
    # Problems of every kind a meta can have, among many good ones.
    files["locks/team0/env-0/v1.meta.yaml"] = meta("team0/env-3:v1")  # wrong alias
    files["locks/team1/env-1/v2.meta.yaml"] = "version: '1'\nalias: [\n"  # not YAML
    files["locks/team2/env-2/v1.meta.yaml"] = "version: '1'\nalias: team2/env-2:v1\n"  # schema
    files["locks/team0/env-3/v2.meta.yaml"] = "a: 1\na: 2\n"  # duplicate key
    files["locks/gone/env/v1.meta.yaml"] = meta("gone/env:v1")  # orphan: never checked
    files["locks/team2/env-8/v1.meta.yaml"] = meta("team2/env-5:v1", as_json=True)  # alias
    # JSON YAML refuses (a NUL in the comment): a finding, not a crash (found by review).
    files["locks/team1/env-7/v2.meta.yaml"] = "# x\0\n" + meta("team1/env-4:v2", as_json=True)
    # Environment files that fail in every way a worker must report as the plain path does.
    files["envs/team1/env-10.yaml"] = "tags:\n  v1: [\n"  # not YAML
    files["envs/team2/env-11.yaml"] = "tags:\n  v1: {dependencies: [a]}\n  v1: {}\n"
    files["envs/team0/env-12.yaml"] = "tags:\n  V1:\n    dependencies: [numpy]\n  v2:\n"
    files["envs/team1/env-13.yaml"] = "- just\n- a list\n"
    files["envs/team2/env-14.yaml"] = "tags:\n  v1:\n    dependencies: [numpy]\n    bogus: 1\n"
    files["envs/team0/env-15.yml"] = "tags: {}\n"
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


def findings(catalog: Catalog) -> list[tuple[object, ...]]:
    """Every field of every finding, and the report's counts."""
    report = lint_catalog(catalog)
    return [(f.file, f.line, f.tag, f.rule, f.message, f.fix) for f in report.findings] + [
        (report.environments, report.tags)]


def force_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes even for this small catalog, even on one CPU."""
    monkeypatch.setattr(forkpool, "PARALLEL_FILES", 1)
    monkeypatch.setattr(forkpool, "worker_count", lambda: 2)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, catalog_files())
    return tmp_path


def test_metas_in_workers_find_what_the_plain_path_finds(tree: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    plain = findings(Catalog(WorkTreeSource(tree)))
    rules = {finding[3] for finding in plain[:-1]}
    assert {"meta-alias-mismatch", "yaml-syntax", "schema", "duplicate-key", "not-text",
            "orphan-lock", "pointer-target-missing", "invalid-requirement", "not-yaml",
            "not-a-mapping", "invalid-tag"} <= rules, sorted(rules)
    force_workers(monkeypatch)
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
    force_workers(monkeypatch)
    source = GitSource(tree, rev)
    assert findings(Catalog(source)) == plain
    source.read("catalog.yaml")  # the parent's reader still works after the workers


def test_without_worker_processes_lint_parses_here(tree: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no pool can start (no /dev/shm, a process limit), lint reads every file itself."""
    import multiprocessing.context

    plain = findings(Catalog(WorkTreeSource(tree)))

    def no_semaphores(*args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing.context.ForkContext, "Lock", no_semaphores)
    force_workers(monkeypatch)
    assert findings(Catalog(WorkTreeSource(tree))) == plain
