"""Files read by forked workers are read exactly as in the calling process: same documents,
same order, the same None for what is missing or not YAML; and commands that preload every
environment (list, search) answer the same with and without workers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from envctl import forkpool
from envctl.catalog import Catalog, GitSource, WorkTreeSource
from envctl.describe import list_environments
from envctl.lint import lint_catalog
from envctl.report.search import search

FILES = {
    "catalog.yaml": "channels:\n  main: https://conda.example.org/main\n"
                    "platforms: [linux-64]\n",
    "envs/team/broken.yaml": "tags: [\n",
    "envs/team/not-text.yaml": "tags: {}\n\0",
    "envs/team/schema.yaml": "tags:\n  v1:\n    bogus: 1\n",
    **{f"envs/team/env-{i}.yaml": f"description: env {i}\ntags:\n"
       f"  v1:\n    dependencies: [python=3.11, numpy]\n  stable: {{points_to: v1}}\n"
       for i in range(12)},
}


def force_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkpool, "PARALLEL_FILES", 1)
    monkeypatch.setattr(forkpool, "worker_count", lambda: 2)
    monkeypatch.setattr(forkpool, "CHUNK", 3)  # several tasks, several chunks in flight


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for path, text in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def read_all(source: WorkTreeSource | GitSource, paths: list[str]) -> list[object]:
    with forkpool.reading(source, paths) as parsed:
        return list(parsed)


def test_workers_read_what_this_process_reads(tree: Path, git_env: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [*sorted(p for p in FILES if p.startswith("envs/")), "envs/team/missing.yaml"]
    here = read_all(WorkTreeSource(tree), paths)
    assert here[paths.index("envs/team/broken.yaml")] is None
    assert here[paths.index("envs/team/not-text.yaml")] is None
    assert here[-1] is None
    assert sum(p is not None for p in here) == 13
    subprocess.run(["git", "init", "-q", "-b", "main", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tree), "commit", "-q", "-m", "c"], check=True)
    force_workers(monkeypatch)
    assert read_all(WorkTreeSource(tree), paths) == here
    assert read_all(GitSource(tree, "HEAD"), paths) == here


def test_list_and_search_answer_the_same_with_workers(tree: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def answers() -> tuple[object, object]:
        catalog = Catalog(WorkTreeSource(tree))
        listed = [e.to_dict() for e in list_environments(catalog)]
        found = [h.name for h in search(Catalog(WorkTreeSource(tree)), "env 1")]
        return listed, found

    plain = answers()
    errors = [e["name"] for e in plain[0] if "error" in e]
    assert errors == ["team/broken", "team/not-text", "team/schema"]
    force_workers(monkeypatch)
    assert answers() == plain


def no_semaphores(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a system without /dev/shm does to a process pool's queues."""
    import multiprocessing.context

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing.context.ForkContext, "Lock", refuse)


def test_no_pool_no_problem(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no pool can start (no /dev/shm, a process limit), files are read here."""
    paths = sorted(p for p in FILES if p.startswith("envs/"))
    here = read_all(WorkTreeSource(tree), paths)
    force_workers(monkeypatch)
    no_semaphores(monkeypatch)
    assert forkpool.start_pool(WorkTreeSource(tree), len(paths)) is None
    assert read_all(WorkTreeSource(tree), paths) == here


class DyingInWorkers(WorkTreeSource):
    """Reads normally here; in a worker, reading env-7 kills the worker (as an OOM kill
    would)."""

    def fork(self) -> WorkTreeSource:
        return _Dies(self.root)


class _Dies(WorkTreeSource):
    def read(self, path: str) -> bytes | None:
        if path.endswith("env-7.yaml"):
            os._exit(9)
        return super().read(path)


def test_a_worker_that_dies_does_not_hang_the_command(tree: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """multiprocessing.Pool waited forever for a dead worker's task; now the rest is read
    here, and the answer is the same."""
    paths = sorted(p for p in FILES if p.startswith("envs/"))
    here = read_all(WorkTreeSource(tree), paths)
    force_workers(monkeypatch)
    assert read_all(DyingInWorkers(tree), paths) == here
    # Lint too: its metas and environments come out the same.
    plain = lint_catalog(Catalog(WorkTreeSource(tree))).findings
    assert [f.render() for f in lint_catalog(Catalog(DyingInWorkers(tree))).findings] == [
        f.render() for f in plain]


def test_tasks_are_queued_before_the_results_are_asked_for(tree: Path) -> None:
    """Lint lists locks/ while the workers parse the environments, then queues the metas
    behind them: the environment tasks must be queued when read_in is called (as a lazy
    generator they were queued behind every meta, and lint ran 15% slower)."""
    queued: list[int] = []

    class Pool:
        def map(self, fn: object, tasks: list[list[str]]) -> Iterator[list[None]]:
            queued.append(len(tasks))
            return iter([[None] * len(task) for task in tasks])

    results = forkpool.read_in(Pool(), WorkTreeSource(tree), ["a.yaml"] * 450)  # type: ignore[arg-type]
    assert queued == [3]
    assert list(results) == [None] * 450
