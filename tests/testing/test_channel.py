"""The test channel: deterministic bytes, pinned repodata, offline solves and installs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from envctl.testing.channel import (
    REPODATA_SHA256,
    SUBDIRS,
    LocalChannel,
    build_channel,
    channel_url,
    read_tar_bz2,
    repodata_sha256,
)
from envctl.testing.hostpython import host_python_matches, link_host_python

# The pin: changing any package of the channel changes these, and with them
# every id computed from a solve against it.
PINNED_REPODATA_SHA256 = {
    "linux-64": "e19c59975f60292cb2acb1eb727027d1bae015e9f5246a8e02414ab7adc6d346",
    "osx-arm64": "6d264b193eb5016dfcc9e5ee1b712daf80bdb7c2135ea058bc51300e45e92d13",
    "noarch": "711afb8c6965221a3d38dea6e84496dee4139078a075c4e9887331244dd511cd",
}

needs_host_311 = pytest.mark.skipif(
    not host_python_matches(), reason="the channel's python stands in for a host CPython 3.11"
)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _repodata(channel: LocalChannel, subdir: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((channel.path / subdir / "repodata.json").read_bytes())
    return data


def test_build_twice_is_byte_identical(tmp_path: Path) -> None:
    start = time.perf_counter()
    first = build_channel(tmp_path / "a")
    elapsed = time.perf_counter() - start
    print(f"channel built in {elapsed:.3f} s")
    second = build_channel(tmp_path / "b")
    a, b = _tree(first), _tree(second)
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []
    assert {name.split("/")[0] for name in a} == set(SUBDIRS)


def test_repodata_sha256_is_pinned(channel: LocalChannel) -> None:
    assert repodata_sha256(channel.path) == PINNED_REPODATA_SHA256
    assert REPODATA_SHA256 == PINNED_REPODATA_SHA256


def test_build_refuses_non_empty_dest(tmp_path: Path) -> None:
    (tmp_path / "stale").write_text("x")
    with pytest.raises(FileExistsError):
        build_channel(tmp_path)
    build_channel(tmp_path, overwrite=True)
    assert not (tmp_path / "stale").exists()


def test_channel_url(channel: LocalChannel) -> None:
    assert channel.url == channel_url(channel.path)
    assert channel.url.startswith("file:///") and not channel.url.endswith("/")


def test_every_record_has_hashes_size_and_timestamp(channel: LocalChannel) -> None:
    names = set()
    for subdir in SUBDIRS:
        repodata = _repodata(channel, subdir)
        assert repodata["info"] == {"subdir": subdir}
        files = {p.name for p in (channel.path / subdir).glob("*.tar.bz2")}
        assert set(repodata["packages"]) == files
        for filename, record in repodata["packages"].items():
            data = (channel.path / subdir / filename).read_bytes()
            assert record["md5"] == hashlib.md5(data).hexdigest()
            assert record["sha256"] == hashlib.sha256(data).hexdigest()
            assert record["size"] == len(data)
            assert isinstance(record["timestamp"], int) and record["timestamp"] > 10**12
            assert record["subdir"] == subdir
            names.add(record["name"])
    assert {"python", "libalpha", "torchlet", "tinynum", "requests", "six", "itsdangerous"} <= names
    noarch = _repodata(channel, "noarch")["packages"]
    assert {r["version"] for r in noarch.values() if r["name"] == "itsdangerous"} == {
        "2.1.2",
        "2.2.0",
    }
    assert all(r.get("noarch") in {"python", "generic"} for r in noarch.values())


def test_packages_hold_no_host_path(channel: LocalChannel) -> None:
    host_paths = {
        sys.prefix,
        sys.base_prefix,
        str(channel.path),
        os.getcwd(),
        pwd.getpwuid(os.getuid()).pw_dir,
    }
    host_paths = {p.encode() for p in host_paths if len(p) > 1}
    for archive in sorted(channel.path.glob("*/*.tar.bz2")):
        for member, (data, _mode) in read_tar_bz2(archive.read_bytes()).items():
            leaked = [p for p in host_paths if p in data]
            assert leaked == [], f"{archive.name}:{member} holds {leaked}"


def test_rattler_indexer_agrees(channel: LocalChannel, tmp_path: Path) -> None:
    from rattler.index import index_fs

    copy = tmp_path / "copy"
    shutil.copytree(channel.path, copy, ignore=shutil.ignore_patterns("repodata.json"))
    asyncio.run(index_fs(copy, write_zst=False, write_shards=False))
    for subdir in SUBDIRS:
        ours = _repodata(channel, subdir)["packages"]
        theirs = json.loads((copy / subdir / "repodata.json").read_bytes())["packages"]
        # rattler stamps each record with the time it indexed it; that is
        # exactly what would make the bytes differ between runs.
        for record in theirs.values():
            record.pop("indexed_timestamp", None)
        assert theirs == ours


# -- solves -------------------------------------------------------------------


def _vp(name: str, version: str, build: str = "0") -> Any:
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    return GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))


def _linux(glibc: str = "2.28") -> list[Any]:
    return [_vp("__unix", "0"), _vp("__glibc", glibc), _vp("__archspec", "1", "x86_64")]


def _osx() -> list[Any]:
    return [_vp("__unix", "0"), _vp("__osx", "13.0"), _vp("__archspec", "1", "m1")]


def _solve(
    channel: LocalChannel,
    specs: list[str],
    platform: str,
    virtual_packages: list[Any],
    cache: Path,
    **kwargs: Any,
) -> list[Any]:
    from rattler import Channel, Gateway, solve

    return asyncio.run(
        solve(
            sources=[Channel(channel.url)],
            specs=specs,
            platforms=[platform, "noarch"],
            virtual_packages=virtual_packages,
            gateway=Gateway(cache_dir=cache),
            **kwargs,
        )
    )


def _names(records: list[Any]) -> dict[str, str]:
    return {str(r.name.normalized): r.file_name for r in records}


@pytest.mark.slow
def test_solve_linux_offline(channel: LocalChannel, tmp_path: Path) -> None:
    records = _solve(channel, ["tinyframe", "python", "libalpha"], "linux-64", _linux(), tmp_path)
    assert _names(records) == {
        "python": "python-3.11.99-0_envctl_host.tar.bz2",
        "tinyframe": "tinyframe-1.0-py_0.tar.bz2",
        "tinynum": "tinynum-2.0-py_0.tar.bz2",
        "libalpha": "libalpha-1.1-0.tar.bz2",
        "libbeta": "libbeta-1.0-0.tar.bz2",
        "libgamma": "libgamma-1.2-0.tar.bz2",
    }
    for record in records:
        assert record.url.startswith(channel.url + "/")
        assert record.sha256 is not None and record.md5 is not None


@pytest.mark.slow
def test_solve_osx_arm64_from_linux(channel: LocalChannel, tmp_path: Path) -> None:
    records = _solve(channel, ["tinyframe", "python", "torchlet"], "osx-arm64", _osx(), tmp_path)
    names = _names(records)
    assert names["python"] == "python-3.11.99-0_envctl_host.tar.bz2"
    assert names["torchlet"] == "torchlet-1.0-cpu_0.tar.bz2"
    assert {str(r.subdir) for r in records} == {"osx-arm64", "noarch"}


@pytest.mark.slow
def test_cuda_variant_needs_cuda(channel: LocalChannel, tmp_path: Path) -> None:
    cpu = _solve(channel, ["torchlet"], "linux-64", _linux(), tmp_path)
    assert _names(cpu)["torchlet"] == "torchlet-1.0-cpu_0.tar.bz2"
    cuda = _solve(channel, ["torchlet"], "linux-64", [*_linux(), _vp("__cuda", "12.2")], tmp_path)
    assert _names(cuda)["torchlet"] == "torchlet-1.0-cuda_1.tar.bz2"


@pytest.mark.slow
def test_newer_glibc_gets_newer_package(channel: LocalChannel, tmp_path: Path) -> None:
    old = _solve(channel, ["glibby"], "linux-64", _linux("2.28"), tmp_path)
    assert _names(old)["glibby"] == "glibby-1.0-0.tar.bz2"
    new = _solve(channel, ["glibby"], "linux-64", _linux("2.35"), tmp_path)
    assert _names(new)["glibby"] == "glibby-2.0-0.tar.bz2"


@pytest.mark.slow
def test_exclude_newer_hides_newer_packages(channel: LocalChannel, tmp_path: Path) -> None:
    specs = ["tinyframe", "python", "itsdangerous"]
    cut_2024 = datetime(2024, 12, 31, tzinfo=UTC)
    names = _names(_solve(channel, specs, "linux-64", _linux(), tmp_path, exclude_newer=cut_2024))
    assert names["tinynum"] == "tinynum-1.1-py_0.tar.bz2"
    assert names["tinyframe"] == "tinyframe-0.9-py_0.tar.bz2"
    assert names["itsdangerous"] == "itsdangerous-2.2.0-py_0.tar.bz2"
    cut_2023 = datetime(2023, 12, 31, tzinfo=UTC)
    names = _names(_solve(channel, specs, "linux-64", _linux(), tmp_path, exclude_newer=cut_2023))
    assert names["tinynum"] == "tinynum-1.0-py_0.tar.bz2"
    assert names["itsdangerous"] == "itsdangerous-2.1.2-py_0.tar.bz2"


# -- installs -----------------------------------------------------------------


def _install(records: list[Any], prefix: Path, cache: Path, *, link_scripts: bool) -> None:
    from rattler import install

    asyncio.run(
        install(
            records,
            target_prefix=prefix,
            cache_dir=cache,
            execute_link_scripts=link_scripts,
            show_progress=False,
        )
    )


_PROBE = (
    "import sys, requests, six, tinynum, tinyframe; "
    "print(sys.prefix, requests.__version__, six.__version__, "
    "tinynum.__version__, tinyframe.__version__, tinynum.__file__)"
)


@pytest.mark.slow
@needs_host_311
def test_install_and_import_in_created_env(channel: LocalChannel, tmp_path: Path) -> None:
    specs = ["python", "requests", "six", "tinycli", "libalpha"]
    records = _solve(channel, specs, "linux-64", _linux(), tmp_path / "gw")
    prefix = tmp_path / "env"
    start = time.perf_counter()
    _install(records, prefix, tmp_path / "pkgs", link_scripts=True)
    print(f"installed {len(records)} packages in {time.perf_counter() - start:.3f} s")

    out = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    site = prefix / "lib" / "python3.11" / "site-packages"
    assert out[:5] == [str(prefix), "2.32.3", "1.16.0", "2.0", "1.0"]
    assert out[5] == str(site / "tinynum" / "__init__.py")
    # Entry points and prefix replacement work too.
    cli = subprocess.run(
        [str(prefix / "bin" / "tinycli")], capture_output=True, text=True, check=True
    )
    assert cli.stdout.strip() == "tinycli 1.0 tinyframe 1.0 tinynum 2.0"
    config = subprocess.run(
        [str(prefix / "bin" / "libalpha-config")], capture_output=True, text=True
    )
    assert config.stdout.strip() == str(prefix)
    # The host's own site-packages stay out of the environment.
    isolated = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", "import pytest"], capture_output=True, text=True
    )
    assert isolated.returncode != 0


@pytest.mark.slow
@needs_host_311
def test_link_host_python_without_link_scripts(channel: LocalChannel, tmp_path: Path) -> None:
    records = _solve(channel, ["python", "itsdangerous"], "linux-64", _linux(), tmp_path / "gw")
    prefix = tmp_path / "env"
    _install(records, prefix, tmp_path / "pkgs", link_scripts=False)
    assert not (prefix / "bin" / "python").exists()
    python = link_host_python(prefix)
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import itsdangerous, sys; print(sys.prefix, itsdangerous.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(prefix), "2.2.0"]


# -- the git fixtures of the plugin ---------------------------------------------


def test_git_env_isolates_git(git_env: Path) -> None:
    assert os.environ["HOME"] == str(git_env)
    assert os.environ["GIT_CONFIG_NOSYSTEM"] == "1"
    assert "GIT_DIR" not in os.environ
    origin = subprocess.run(
        ["git", "config", "--show-origin", "user.email"], capture_output=True, text=True
    ).stdout
    assert str(git_env) in origin and "tests@envctl.invalid" in origin


def test_catalog_repo_pushes_to_bare_server(
    catalog_repo: Path, bare_server: Path, channel: LocalChannel, pypi_index: str
) -> None:
    def git(*args: str, cwd: Path = catalog_repo) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert git("branch", "--show-current") == "main"
    assert git("status", "--porcelain") == ""
    assert git("ls-files").split() == ["catalog.yaml", "envs/.gitkeep", "locks/.gitkeep"]
    text = (catalog_repo / "catalog.yaml").read_text()
    assert f'local: "{channel.url}"' in text
    assert f'pypi_index: "{pypi_index}"' in text
    assert yaml.safe_load(text) == {
        "channels": {"local": channel.url},
        "platforms": ["linux-64", "osx-arm64"],
        "pypi_index": pypi_index,
        "mutable_tags": ["latest", "candidate", "stable"],
        "branch": "main",
    }

    git("push", "--quiet", str(bare_server), "main")
    assert git("rev-parse", "main", cwd=bare_server) == git("rev-parse", "HEAD")
    assert git("symbolic-ref", "HEAD", cwd=bare_server) == "refs/heads/main"
