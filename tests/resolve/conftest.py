"""Fixtures for the resolve tests: a catalog whose every lock is checked by three readers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envctl.resolve.lockfile import dump_yaml, read_lock


def check_lock_readers(path: Path) -> None:
    """The lock loads unchanged with conda-lock's parser and rattler, and the fast reader agrees."""
    import yaml
    from conda_lock.lockfile import parse_conda_lock_file
    from rattler import LockFile

    text = path.read_text()
    body = text[text.index("\nversion: 1\n") + 1 :]
    # Same bytes from libyaml's emitter and from PyYAML's pure-Python one.
    assert dump_yaml(yaml.safe_load(body), pure=True) == body
    assert dump_yaml(yaml.safe_load(body)) == body

    data = read_lock(path.read_bytes(), file=str(path))
    ours = sorted(
        (
            p.manager,
            p.name,
            p.platform,
            p.version,
            p.build,
            p.url,
            p.md5,
            p.sha256,
            tuple(sorted(p.dependencies)),
        )
        for p in data.packages
    )
    theirs_lock = parse_conda_lock_file(path)
    theirs = sorted(
        (
            d.manager,
            d.name,
            d.platform,
            d.version,
            d.build,
            d.url,
            d.hash.md5,
            d.hash.sha256,
            tuple(sorted(d.dependencies.items())),
        )
        for d in theirs_lock.package
    )
    assert ours == theirs, path
    assert sorted(theirs_lock.metadata.platforms) == sorted(data.platforms)
    assert dict(theirs_lock.metadata.content_hash) == dict(data.content_hash)
    assert [c.url for c in theirs_lock.metadata.channels] == list(data.channels)

    for package in data.packages:
        assert package.sha256, f"{package.filename} has no sha256"
        if package.manager == "conda":
            assert package.md5, f"{package.filename} has no md5"
    for platform in data.platforms:
        assert data.full_id(platform) == data.recorded_full_id(platform)

    env = LockFile.from_path(path).default_environment()
    assert env is not None
    by_platform = {str(p): pkgs for p, pkgs in env.packages_by_platform().items()}
    assert sorted(by_platform) == sorted(data.platforms)
    for platform, packages in by_platform.items():
        assert len(packages) == len(data.for_platform(platform))
        got = sorted(
            (p.name, p.hashes.sha256.hex() if p.hashes and p.hashes.sha256 else None)
            for p in packages
        )
        want = sorted((p.name, p.sha256) for p in data.for_platform(platform))
        assert got == want


@pytest.fixture
def check_lock() -> Callable[[Path], None]:
    return check_lock_readers


@pytest.fixture
def catalog(catalog_repo: Path) -> Iterator[Path]:
    """The fixture catalog; after the test every lock it holds passes the reader checks."""
    yield catalog_repo
    for path in sorted((catalog_repo / "locks").rglob("*.conda-lock.yml")):
        check_lock_readers(path)
