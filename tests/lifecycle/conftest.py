"""Lifecycle tests run against a local directory store and an S3 store (moto on
127.0.0.1): every test taking ``backend`` or ``store`` runs once for each.

The gc scenario (fixture ``scenario``): ``team/app`` over 40 days: immutable v1, v2, v3
sharing packages; ``stable`` moved v1 -> v2 -> v3; ``nightly`` re-resolved five times;
v1 retired two days ago. ``team/tool:candidate`` (a rolling tag) deleted 20 days ago.
Retention: keep_last 1, keep_days 7, grace 1 hour. Every state was published to the
store as CI would have. ``in_flight()`` uploads a CI run that has not committed back.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from envctl.store import Store
from envctl.store.base import alias_key
from envctl.testing.lifecyclekit import (
    CatalogRepo,
    init_catalog,
    lock_keys_of,
    pkg,
    pkg_key,
    publish,
)
from envctl.testing.storekit import Backend, local_backend, s3_backend


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path / "store")
    return s3_backend(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_store"))


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


# -- the gc scenario ---------------------------------------------------------------------

RETENTION = {"keep_last": "1", "keep_days": "7", "grace_hours": "1"}


@dataclass
class Scenario:
    repo: CatalogRepo
    now: datetime  # just after the last upload
    expected_garbage: set[str]
    kept: set[str]


def app_tags(stable: str, *, retired_v1: bool = False, upto: int = 1) -> dict[str, object]:
    tags: dict[str, object] = {}
    for n in range(1, upto + 1):
        spec: dict[str, object] = {"dependencies": ["python", f"lib{n}"]}
        if n == 1 and retired_v1:
            spec["retired"] = "CVE-2024-0001"
        tags[f"v{n}"] = spec
    tags["stable"] = {"points_to": stable}
    tags["nightly"] = {"dependencies": ["python", "tiny"]}
    return tags


V_PKGS = {
    "v1": [pkg("python"), pkg("libshared"), pkg("libold")],
    "v2": [pkg("python"), pkg("libshared"), pkg("libnew")],
    "v3": [pkg("python"), pkg("libshared", "2.0")],
}


def nightly(version: str) -> list[dict[str, object]]:
    return [pkg("python"), pkg("tiny", version)]


def build(root: Path, store: Store) -> Scenario:
    now = datetime.now(UTC).replace(microsecond=0)

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    repo = init_catalog(root, extra={"retention": RETENTION}, when=ago(50))
    history = [
        # (days ago, v-tags declared, stable target, nightly tiny version, retired v1)
        (40, 1, "v1", "1.0", False),
        (30, 2, "v2", "1.1", False),
        (20, 3, "v3", "1.2", False),
        (10, 3, "v3", "1.3", False),
        (2, 3, "v3", "1.4", True),
    ]
    v1: set[str] = set()
    tool: set[str] = set()
    expected_nightly: set[str] = set()
    for days, upto, stable, tiny, retired in history:
        repo.env("team/app", app_tags(stable, retired_v1=retired, upto=upto))
        for n in range(1, upto + 1):
            if not (root / f"locks/team/app/v{n}.meta.yaml").exists():
                repo.lock(f"team/app:v{n}", V_PKGS[f"v{n}"])
        repo.lock("team/app:nightly", nightly(tiny))
        if days == 40:
            repo.env("team/tool", {"candidate": {"dependencies": ["toolpkg"]}})
            repo.lock("team/tool:candidate", [pkg("toolpkg")])
        if days == 20:
            (root / "envs/team/tool.yaml").unlink()
            for path in (root / "locks/team/tool").iterdir():
                path.unlink()
        sha = repo.commit(f"state {days} days ago", ago(days))
        for n in range(1, upto + 1):
            publish(store, root, f"team/app:v{n}", commit=sha)
        publish(store, root, "team/app:stable", commit=sha)
        publish(store, root, "team/app:nightly", commit=sha)
        if days == 40:
            publish(store, root, "team/tool:candidate", commit=sha)
            tool = lock_keys_of(root, "team/tool:candidate")
            v1 = lock_keys_of(root, "team/app:v1")
        if days in (40, 30, 20):
            expected_nightly |= lock_keys_of(root, "team/app:nightly")
    expected = (
        {alias_key("team/app", "v1"), alias_key("team/tool", "candidate")}
        | v1 | tool | expected_nightly
        | {pkg_key("libold"), pkg_key("tiny", "1.0"), pkg_key("tiny", "1.1"),
           pkg_key("tiny", "1.2"), pkg_key("toolpkg")}
    )
    kept = (
        {pkg_key("python"), pkg_key("libshared"), pkg_key("libshared", "2.0"),
         pkg_key("libnew"), pkg_key("tiny", "1.3"), pkg_key("tiny", "1.4")}
        | lock_keys_of(root, "team/app:v2") | lock_keys_of(root, "team/app:v3")
        | lock_keys_of(root, "team/app:nightly")
        | {alias_key("team/app", t) for t in ("v2", "v3", "stable", "nightly")}
    )
    return Scenario(repo, datetime.now(UTC), expected, kept)


def upload_in_flight(root: Path, store: Store) -> set[str]:
    """A CI run between its upload and its commit back: v4's packages (one of them an old,
    collectable package it reuses), lock and environment record, uncommitted."""
    repo = CatalogRepo(root)
    repo.env("team/app", {**app_tags("v3", retired_v1=True, upto=3),
                          "v4": {"dependencies": ["python", "fresh"]}})
    repo.lock("team/app:v4", [pkg("python"), pkg("tiny", "1.0"), pkg("fresh")])
    publish(store, root, "team/app:v4", alias_record=False)
    return lock_keys_of(root, "team/app:v4") | {pkg_key("fresh")}


@pytest.fixture(scope="session")
def scenario_template(tmp_path_factory: pytest.TempPathFactory, git_env: Path) -> Scenario:
    """Built once per worker on a local store; each test gets a copy."""
    from envctl.store import LocalStore

    base = tmp_path_factory.mktemp("gc-scenario")
    return build(base / "catalog", LocalStore(base / "store"))


@pytest.fixture
def scenario(scenario_template: Scenario, backend: Backend, tmp_path: Path) -> Scenario:
    """A private copy of the scenario: its git repository, and its store objects written
    into this test's backend (raw writes, as fast as the backend allows)."""
    template_root = scenario_template.repo.root
    root = tmp_path / "catalog"
    shutil.copytree(template_root, root, symlinks=True)
    template_store = template_root.parent / "store"
    for path in sorted(template_store.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            backend.raw_put(path.relative_to(template_store).as_posix(), path.read_bytes())
    # "now" is after every write: a mark only ripens what was written before it.
    return replace(scenario_template, repo=CatalogRepo(root), now=datetime.now(UTC))


@pytest.fixture
def in_flight(scenario: Scenario, store: Store) -> Callable[[], set[str]]:
    return lambda: upload_in_flight(scenario.repo.root, store)


# -- a really resolved tag (SBOM and audit) -------------------------------------------------

RESOLVED_APP = """\
description: Lifecycle tests' resolved environment
tags:
  v1:
    platforms: [linux-64, osx-arm64]
    dependencies: [python=3.11, tinynum, requests]
    pypi: [itsdangerous==2.1.2]
  stable: {points_to: v1}
"""


@dataclass(frozen=True)
class ResolvedApp:
    root: Path
    files: dict[str, Path]  # package sha256 -> the fetched file


@pytest.fixture(scope="session")
def resolved_app(tmp_path_factory: pytest.TempPathFactory, git_env: Path, channel: Any,
                 pypi_index: str) -> ResolvedApp:
    """``team/app:v1`` solved against the test channel and index (2025-01-01 cut-off), its
    package files fetched once per worker."""
    from envctl.materialize import fetch_all
    from envctl.resolve.api import resolve_tag
    from envctl.resolve.lockfile import read_lock
    from envctl.testing.pytest_plugin import catalog_yaml, git

    base = tmp_path_factory.mktemp("lifecycle-resolved")
    root = base / "catalog"
    (root / "envs/team").mkdir(parents=True)
    (root / "locks").mkdir()
    (root / "catalog.yaml").write_text(catalog_yaml(channel.url, pypi_index))
    (root / "envs/team/app.yaml").write_text(RESOLVED_APP)
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "team/app")
    resolve_tag(root, "team/app:v1", resolved_at=datetime(2025, 1, 2, tzinfo=UTC),
                resolved_by="ci", exclude_newer=datetime(2025, 1, 1, tzinfo=UTC))
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "lock team/app:v1")
    lock = read_lock((root / "locks/team/app/v1.conda-lock.yml").read_bytes())
    fetched = fetch_all(list(lock.packages), cache=base / "cache")
    return ResolvedApp(root, {f.package.sha256 or "": f.path for f in fetched})


@pytest.fixture
def resolved_store(resolved_app: ResolvedApp, store: Store) -> Store:
    """The store with team/app:v1's real packages, lock and records, as CI publishes."""
    publish(store, resolved_app.root, "team/app:v1", files=resolved_app.files)
    return store
