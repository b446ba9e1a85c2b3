"""``envctl pack`` and ``envctl create --from-pack``: one archive, installed offline."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from envctl.resolve.api import resolve_tag
from envctl.testing.channel import LocalChannel
from envctl.testing.pytest_plugin import catalog_yaml, git

from .conftest import (
    JAN_2025,
    RESOLVED_AT,
    RESOLVED_BY,
    Resolved,
    envctl,
    one_error_line,
    python_says,
)

pytestmark = pytest.mark.slow



def members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def rewrite(source: Path, dest: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the tar ``source`` with members replaced (bytes) or left out (None)."""
    with tarfile.open(source) as tar, tarfile.open(dest, "w") as out:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name in change:
                if change[member.name] is None:
                    continue
                data = change[member.name]  # type: ignore[assignment]
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return dest


def test_pack_then_create_offline(
    tmp_path: Path, channel: LocalChannel, pypi_index: str, envctl_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A catalog with a channel of its own, so the channel can be deleted afterwards.
    own_channel = tmp_path / "channel"
    shutil.copytree(channel.path, own_channel)
    root = tmp_path / "catalog"
    (root / "envs/team").mkdir(parents=True)
    (root / "catalog.yaml").write_text(catalog_yaml(own_channel.as_uri(), pypi_index))
    (root / "envs/team/off.yaml").write_text(
        "tags:\n  v1:\n    platforms: [linux-64]\n"
        "    dependencies: [python=3.11, tinynum]\n    pypi: [itsdangerous==2.1.2]\n")
    git(root, "init", "--quiet", "-b", "main")
    result = resolve_tag(root, "team/off:v1", resolved_at=RESOLVED_AT, resolved_by=RESOLVED_BY,
                         exclude_newer=JAN_2025)
    env_id = result.platforms[0].env_id

    out = tmp_path / "off-v1.tar"
    packed = envctl("-C", root, "pack", "team/off:v1", "-o", out, "--platform", "linux-64")
    assert packed.exit_code == 0, packed.output
    assert f"packed team/off:v1 into {out}: 3 package files" in packed.stdout
    assert f"linux-64   {env_id}" in packed.stdout
    names = members(out)
    assert names[:3] == ["envctl-pack.json", "lock.conda-lock.yml", "meta.yaml"]
    assert names[3:] == sorted(names[3:]) and len(names) == 6
    assert all(n.startswith("pkgs/") for n in names[3:])
    # Deterministic: the same tag packs to the same bytes (now from the package cache).
    again = envctl("-C", root, "pack", "team/off:v1", "-o", tmp_path / "again.tar", "--json")
    assert json.loads(again.stdout)["sha256"] in packed.stdout
    assert (tmp_path / "again.tar").read_bytes() == out.read_bytes()

    # The air-gapped machine: no channel, no catalog, an empty package cache, and any
    # download is a failure (the PyPI index of this session is still up: block URLs).
    shutil.rmtree(own_channel)
    shutil.rmtree(envctl_home)
    elsewhere = tmp_path / "airgap"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    def no_network(url: str, tmp: Path) -> None:
        raise AssertionError(f"create --from-pack fetched {url}")

    monkeypatch.setattr("envctl.materialize._copy_url", no_network)
    monkeypatch.setenv("ENVCTL_STORE", str(tmp_path / "no-such-store"))
    prefix = elsewhere / "env"
    created = envctl("create", "--from-pack", out, "--prefix", prefix, "--json")
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert (data["alias"], data["id"], data["source"]) == ("team/off:v1", env_id, "pack")
    assert data["sources"] == {"cache": 3}
    assert python_says(prefix, "import tinynum, itsdangerous; "
                       "print(tinynum.__version__, itsdangerous.__version__)") == "1.1 2.1.2"
    info = envctl("info", "--prefix", prefix)
    assert f"alias       team/off:v1\nasked       team/off:v1\nid          {env_id}" in info.stdout

    named = envctl("create", "team/off:v1", "--from-pack", out, "--name", "off")
    assert named.exit_code == 0 and "created: team/off:v1 (linux-64)" in named.stdout
    wrong = one_error_line(envctl("create", "team/off:v2", "--from-pack", out, "--name", "x"))
    assert f"the pack holds team/off:v1 {env_id}, not team/off:v2 [pack-mismatch]" in wrong
    mixed = one_error_line(envctl("create", "--from-pack", out, "--store", "x", "--name", "y"))
    assert "--from-pack takes no --store [invalid-arguments]" in mixed


@pytest.fixture
def app_pack(resolved_catalog: Resolved, tmp_path: Path, envctl_home: Path,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """team/app:v1 packed on another machine (its own ENVCTL_HOME)."""
    out = tmp_path / "app-v1.tar"
    monkeypatch.setenv("ENVCTL_HOME", str(tmp_path / "packing-home"))
    result = envctl("-C", resolved_catalog.root, "pack", "team/app:v1", "-o", out)
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("ENVCTL_HOME", str(envctl_home))
    return out


def nothing_left(home: Path, prefix: Path) -> None:
    assert not prefix.exists()
    assert not list(prefix.parent.glob(f".{prefix.name}*"))
    cache = home / "pkgs"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]


def test_a_tampered_package_is_refused_with_nothing_left_behind(
    app_pack: Path, tmp_path: Path, envctl_home: Path
) -> None:
    names = members(app_pack)
    victim = next(n for n in names if n.endswith("tinynum-1.1-py_0.tar.bz2"))
    bad = rewrite(app_pack, tmp_path / "bad.tar", {victim: b"not the package"})
    prefix = tmp_path / "env"
    line = one_error_line(envctl("create", "--from-pack", bad, "--prefix", prefix))
    assert f"error: {bad}: tinynum-1.1-py_0.tar.bz2 in the pack bad.tar does not match the " \
           "lock: its sha256 is " in line
    assert "nothing was installed [sha256-mismatch]" in line
    nothing_left(envctl_home, prefix)

    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(app_pack.read_bytes()[: app_pack.stat().st_size // 2])
    line = one_error_line(envctl("create", "--from-pack", truncated, "--prefix", prefix))
    assert "[pack-incomplete]" in line or "the pack is damaged" in line
    nothing_left(envctl_home, prefix)

    missing = rewrite(app_pack, tmp_path / "missing.tar", {victim: None})
    line = one_error_line(envctl("create", "--from-pack", missing, "--prefix", prefix))
    assert "the pack lacks 1 package file(s) for linux-64, e.g. tinynum-1.1-py_0.tar.bz2 " \
           "[pack-incomplete]" in line
    nothing_left(envctl_home, prefix)


def test_a_tampered_lock_is_refused(app_pack: Path, tmp_path: Path, envctl_home: Path) -> None:
    with tarfile.open(app_pack) as tar:
        lock = tar.extractfile("lock.conda-lock.yml").read()  # type: ignore[union-attr]
    bad = rewrite(app_pack, tmp_path / "bad.tar",
                  {"lock.conda-lock.yml": lock.replace(b"version: 2024.8.30", b"version: 1")})
    prefix = tmp_path / "env"
    line = one_error_line(envctl("create", "--from-pack", bad, "--prefix", prefix))
    assert "the lock does not hash to the manifest's lock_sha256; nothing was installed " \
           "[pack-tampered]" in line
    nothing_left(envctl_home, prefix)


def _tar_with(path: Path, *infos: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in infos:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


@pytest.mark.parametrize(
    ("member", "kind"),
    [("../evil.txt", tarfile.REGTYPE), ("/etc/evil", tarfile.REGTYPE),
     ("pkgs/" + "a" * 64 + "/../../../evil", tarfile.REGTYPE),
     ("pkgs/" + "a" * 64 + "/x.conda", tarfile.SYMTYPE), ("lock.conda-lock.yml", tarfile.LNKTYPE),
     ("notes.txt", tarfile.REGTYPE)],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "hardlink", "unknown"],
)
def test_unsafe_members_are_refused(tmp_path: Path, member: str, kind: bytes) -> None:
    info = tarfile.TarInfo(member)
    info.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/passwd"
    pack = _tar_with(tmp_path / "evil.tar", (info, b"boom"))
    out = tmp_path / "out"
    line = one_error_line(envctl("create", "--from-pack", pack, "--prefix", out))
    assert "[unsafe-member] — do not use this file: it was not made by envctl" in line
    assert not out.exists() and not (tmp_path / "evil.txt").exists()


def test_not_a_pack(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file" * 50)
    line = one_error_line(envctl("create", "--from-pack", junk, "--prefix", tmp_path / "e"))
    assert "not a pack: junk.tar is not a tar archive (plain, gz, bz2 or xz) [invalid-pack]" in line
    line = one_error_line(envctl("create", "--from-pack", tmp_path / "nope.tar",
                                 "--prefix", tmp_path / "e"))
    assert "no such pack" in line
