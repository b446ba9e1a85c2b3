"""Creating environments from a lock: verified files, the package cache, no half-built prefix."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from envctl import api
from envctl.errors import EnvctlError
from envctl.materialize import (
    RECORD_FILE,
    IntegrityError,
    PrefixRecord,
    materialize,
    package_cache,
    read_record,
)
from envctl.store import LocalStore

from .conftest import Resolved, python_says

pytestmark = pytest.mark.slow


def record_for(resolved: Resolved, tag: str, platform: str = "linux-64") -> PrefixRecord:
    req_id, full_id = resolved.ids[tag][platform].split(":")
    return PrefixRecord(alias=f"team/app:{tag}", req_id=req_id, full_id=full_id,
                        platform=platform)


def leftovers(parent: Path) -> list[str]:
    """Temp directories a create leaves behind in the target's folder (none, ever)."""
    return sorted(p.name for p in parent.iterdir() if ".envctl-" in p.name)


def test_create_installs_conda_and_pypi_and_records_ids(
    resolved_catalog: Resolved, tmp_path: Path
) -> None:
    prefix = tmp_path / "env"
    ref = api.resolve_ref("team/app:v1", catalog=resolved_catalog.root)
    result = api.install(ref, prefix=prefix)
    assert not result.reused
    conda, pypi = len(ref.lock.conda("linux-64")), len(ref.lock.pypi("linux-64"))
    assert result.sources == {"url": conda + pypi}  # a fresh cache: all fetched and verified
    out = python_says(prefix, "import tinynum, requests, itsdangerous, sys; "
                      "print(tinynum.__version__, itsdangerous.__version__, sys.prefix)")
    assert out == f"1.1 2.1.2 {prefix}"
    record = read_record(prefix)
    assert record is not None
    assert record.alias == "team/app:v1"
    assert record.env_id == resolved_catalog.ids["v1"]["linux-64"]
    assert (record.conda_packages, record.pypi_packages) == (conda, 1)
    # The PyPI package was installed by envctl from the verified wheel, not by a resolver.
    installer = next(prefix.glob("lib/python3.11/site-packages/itsdangerous-*.dist-info/INSTALLER"))
    assert installer.read_text() == "envctl\n"
    assert leftovers(tmp_path) == []


def test_second_create_uses_the_package_cache(resolved_catalog: Resolved, tmp_path: Path) -> None:
    ref = api.resolve_ref("team/app:v1", catalog=resolved_catalog.root)
    first = api.install(ref, prefix=tmp_path / "one")
    second = api.install(ref, prefix=tmp_path / "two")
    files = len(ref.lock.for_platform("linux-64"))
    assert first.downloaded == files
    assert second.downloaded == 0 and second.sources == {"cache": files}
    assert python_says(tmp_path / "two", "import tinynum; print(tinynum.__version__)") == "1.1"
    # The same prefix again is found complete and left as it is.
    again = api.install(ref, prefix=tmp_path / "two")
    assert again.reused and again.sources == {}


def test_tampered_store_package_aborts_and_leaves_nothing(
    resolved_catalog: Resolved, tmp_path: Path
) -> None:
    lock = resolved_catalog.lock("v1")
    store = LocalStore(tmp_path / "store")
    for package in lock.for_platform("linux-64"):
        source = Path(package.url.removeprefix("file://")) if package.url.startswith("file:") \
            else None
        if source is not None:
            store.put_package(source, package.sha256, package.filename)
    victim = next(p for p in lock.conda("linux-64") if p.name == "tinynum")
    stored = tmp_path / "store" / "pkgs" / victim.sha256 / victim.filename
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.chmod(0o644)
    stored.write_bytes(bytes(data))

    prefix = tmp_path / "env"
    with pytest.raises(IntegrityError) as info:
        materialize(lock, "linux-64", prefix, record=record_for(resolved_catalog, "v1"),
                    store=store)
    assert "tinynum-1.1" in info.value.message and "corrupt" in info.value.message
    assert "nothing was installed" in info.value.message
    assert not prefix.exists()
    assert leftovers(tmp_path) == []


def test_tampered_url_package_aborts_and_leaves_nothing(
    resolved_catalog: Resolved, tmp_path: Path
) -> None:
    lock = resolved_catalog.lock("v1")
    victim = next(p for p in lock.conda("linux-64") if p.name == "requests")
    copy = tmp_path / "mirror" / victim.filename
    copy.parent.mkdir()
    data = bytearray(Path(victim.url.removeprefix("file://")).read_bytes())
    data[-10] ^= 0x01
    copy.write_bytes(bytes(data))
    moved = dataclasses.replace(victim, url=copy.as_uri())
    tampered = dataclasses.replace(
        lock, packages=tuple(moved if p is victim else p for p in lock.packages)
    )
    prefix = tmp_path / "env"
    with pytest.raises(IntegrityError) as info:
        materialize(tampered, "linux-64", prefix, record=record_for(resolved_catalog, "v1"))
    assert info.value.rule == "sha256-mismatch"
    assert victim.sha256 in info.value.message
    assert not prefix.exists()
    assert leftovers(tmp_path) == []
    # Nothing unverified reached the cache either.
    assert not (package_cache() / victim.sha256 / victim.filename).exists()


def test_corrupt_cache_entry_is_fetched_again(resolved_catalog: Resolved, tmp_path: Path) -> None:
    ref = api.resolve_ref("team/app:v1", catalog=resolved_catalog.root)
    api.install(ref, prefix=tmp_path / "one")
    victim = next(p for p in ref.lock.conda("linux-64") if p.name == "tinynum")
    cached = package_cache() / victim.sha256 / victim.filename
    cached.write_bytes(b"not a package")
    events = []
    result = api.install(ref, prefix=tmp_path / "two", reporter=events.append)
    files = len(ref.lock.for_platform("linux-64"))
    assert result.sources == {"cache": files - 1, "url": 1}
    assert any(e.stage == "refetch" and victim.filename in e.detail for e in events)
    assert python_says(tmp_path / "two", "import tinynum; print(tinynum.__version__)") == "1.1"


def test_store_is_used_before_urls(resolved_catalog: Resolved, tmp_path: Path) -> None:
    ref = api.resolve_ref("team/app:v1", catalog=resolved_catalog.root)
    store = LocalStore(tmp_path / "store")
    conda = ref.lock.conda("linux-64")
    for package in conda:
        store.put_package(Path(package.url.removeprefix("file://")), package.sha256)
    result = api.install(ref, prefix=tmp_path / "env", store=store)
    # Conda packages from the store; the wheel (not uploaded here) from its URL.
    assert result.sources == {"store": len(conda), "url": 1}


def test_lock_that_does_not_match_the_id_is_refused(
    resolved_catalog: Resolved, tmp_path: Path
) -> None:
    with pytest.raises(EnvctlError) as info:
        materialize(resolved_catalog.lock("v2"), "linux-64", tmp_path / "env",
                    record=record_for(resolved_catalog, "v1"))
    assert info.value.rule == "lock-mismatch"
    assert not (tmp_path / "env").exists()


def test_refuses_a_foreign_directory_and_another_env_without_force(
    resolved_catalog: Resolved, tmp_path: Path
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    ref = api.resolve_ref("team/app:v1", catalog=resolved_catalog.root)
    with pytest.raises(EnvctlError) as info:
        api.install(ref, prefix=foreign)
    assert info.value.rule == "prefix-exists"
    assert (foreign / "keep.txt").read_text() == "mine"

    env = tmp_path / "env"
    api.install(ref, prefix=env)
    other = api.resolve_ref("team/app:v2", catalog=resolved_catalog.root)
    with pytest.raises(EnvctlError) as info:
        api.install(other, prefix=env)
    assert "--force" in (info.value.fix or "")
    replaced = api.install(other, prefix=env, force=True)
    assert not replaced.reused
    assert python_says(env, "import tinynum; print(tinynum.__version__)") == "2.0"
    assert json.loads((env / RECORD_FILE).read_text())["alias"] == "team/app:v2"
    assert leftovers(tmp_path) == []


def test_cross_platform_create_lays_out_files(resolved_catalog: Resolved, tmp_path: Path) -> None:
    prefix = tmp_path / "osx"
    ref = api.resolve_ref("team/app:v1", catalog=resolved_catalog.root, platform="osx-arm64")
    result = api.install(ref, prefix=prefix)
    assert result.record.platform == "osx-arm64"
    assert result.record.env_id == resolved_catalog.ids["v1"]["osx-arm64"]
    site = prefix / "lib/python3.11/site-packages"
    assert (site / "tinynum/__init__.py").is_file()  # noarch: python, placed for the target
    assert (site / "itsdangerous/__init__.py").is_file()  # the wheel, by installer
    metas = sorted(p.name for p in (prefix / "conda-meta").glob("*.json"))
    assert "envctl.json" in metas and any(m.startswith("tinynum-1.1-") for m in metas)
    assert not (prefix / "bin/python").exists()  # no post-link script ran for another platform


def test_unknown_platform_and_pending_tag_are_clear(resolved_catalog: Resolved) -> None:
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref("team/app:v1", catalog=resolved_catalog.root, platform="win-64")
    assert info.value.rule == "unknown-platform"
    assert "linux-64, osx-arm64" in (info.value.fix or "")
    with pytest.raises(EnvctlError) as info:
        api.resolve_ref("team/app:v3", catalog=resolved_catalog.root)
    assert info.value.rule == "pending"


def test_run_executes_inside_the_env(resolved_catalog: Resolved, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    code = api.run(
        "team/app:v1",
        ["python", "-c", "import itsdangerous, os, sys; "
         f"open({str(out)!r}, 'w').write(itsdangerous.__version__ + ' ' + "
         "os.environ['CONDA_PREFIX'] + ' ' + sys.prefix)"],
        catalog=resolved_catalog.root,
    )
    assert code == 0
    version, conda_prefix, sys_prefix = out.read_text().split()
    assert version == "2.1.2"
    assert conda_prefix == sys_prefix
    assert Path(conda_prefix).parent.name == "by-id"
    assert os.path.basename(conda_prefix) == resolved_catalog.ids["v1"]["linux-64"].split(":")[1]
