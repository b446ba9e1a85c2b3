"""What only the local-directory backend does: temp files, the lock, symlinks, modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from envctl.errors import StoreError
from envctl.store import LocalStore, package_key
from envctl.store.local import LOCK_FILE
from envctl.testing.storekit import make_pkg


def _all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_layout_on_disk_and_no_temp_files_left(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda")
    store.put_package(pkg.path, pkg.sha256)
    sha = store.put_lock(b"lock\n")
    assert _all_files(tmp_path / "store") == sorted(
        [LOCK_FILE, f"locks/{sha}.conda-lock.yml", f"pkgs/{pkg.sha256}/foo-1.0-0.conda"]
    )
    mode = stat.S_IMODE((tmp_path / "store" / package_key(pkg.sha256, pkg.filename)).stat().st_mode)
    assert mode == 0o644  # readable by every consumer of a shared store


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("envs/a.json", b"first")
    with pytest.raises(StoreError):
        store.put_bytes("envs/a.json", b"second")
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda")
    with pytest.raises(StoreError):
        store.put_package(pkg.path, "0" * 64)
    assert _all_files(tmp_path / "store") == [LOCK_FILE, "envs/a.json"]


def test_hidden_files_are_not_listed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("envs/a.json", b"a")
    (tmp_path / "store" / "envs" / ".a.json.123.tmp").write_bytes(b"half")
    (tmp_path / "store" / ".cache").mkdir()
    (tmp_path / "store" / ".cache" / "x").write_bytes(b"x")
    assert list(store.list()) == ["envs/a.json"]


def test_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "store"
    root.mkdir()
    os.symlink(outside, root / "envs")
    store = LocalStore(root)
    with pytest.raises(StoreError, match="resolves outside the store") as info:
        store.get_bytes("envs/secret")
    assert info.value.rule == "invalid-key"
    with pytest.raises(StoreError, match="resolves outside the store"):
        store.put_bytes("envs/new", b"x")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_store_root_under_a_symlink_works(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    store = LocalStore(tmp_path / "link" / "store")
    store.put_bytes("envs/a.json", b"a")
    assert store.get_bytes("envs/a.json") == b"a"
    assert (tmp_path / "real" / "store" / "envs" / "a.json").read_bytes() == b"a"


def test_source_changing_during_the_copy_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda")
    real_stat = store._stat

    def stat_then_tamper(key: str):  # type: ignore[no-untyped-def]
        # Runs after the source was hashed and before it is copied.
        result = real_stat(key)
        pkg.path.write_bytes(b"changed underneath")
        return result

    monkeypatch.setattr(store, "_stat", stat_then_tamper)
    with pytest.raises(StoreError, match="changed while it was being stored") as info:
        store.put_package(pkg.path, pkg.sha256)
    assert info.value.rule == "sha256-mismatch"
    assert _all_files(tmp_path / "store") == []


def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"not a folder")
    store = LocalStore(tmp_path / "file" / "store")
    with pytest.raises(StoreError) as info:
        store.put_bytes("envs/a.json", b"a")
    assert info.value.rule == "store-io"
    assert "cannot write envs/a.json" in info.value.message


def test_repr_and_url(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    assert store.url == (tmp_path / "s").as_uri()
    assert repr(store) == f"LocalStore({store.url!r})"
    assert store.describe("pkgs/x") == str(tmp_path / "s" / "pkgs" / "x")
