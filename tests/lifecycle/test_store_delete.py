"""``Store.delete`` and ``Store.list_info``: the two primitives gc adds to every backend."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from envctl.store import LocalStore
from envctl.store.base import InvalidKeyError, Store, package_key, sha256_bytes
from envctl.testing.storekit import publish_env


def test_delete_removes_the_object_and_is_idempotent(store: Store, tmp_path: Path) -> None:
    data = b"package bytes\n" * 10
    key = package_key(sha256_bytes(data), "a-1.0-0.conda")
    store.put_bytes(key, data)
    assert store.exists(key)
    store.delete(key)
    assert not store.exists(key)
    assert list(store.list("pkgs/")) == []
    store.delete(key)  # already gone: no error
    store.put_bytes(key, data)  # and the key can be written again
    assert store.get_bytes(key) == data


def test_delete_leaves_no_empty_folders_on_a_local_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = b"x" * 100
    key = package_key(sha256_bytes(data), "b-1.0-0.conda")
    store.put_bytes(key, data)
    store.put_bytes("aliases/team/app/v1.json", b"{}\n")
    store.delete(key)
    store.delete("aliases/team/app/v1.json")
    root = Path(store.describe(""))
    assert not (root / "pkgs" / sha256_bytes(data)).exists()
    assert not (root / "aliases" / "team").exists()
    assert (root / "pkgs").is_dir() and (root / "aliases").is_dir()  # top folders stay


def test_delete_refuses_unsafe_keys(store: Store) -> None:
    with pytest.raises(InvalidKeyError):
        store.delete("../outside")


def test_list_info_gives_sizes_and_write_times(store: Store, tmp_path: Path) -> None:
    before = time.time() - 5  # S3 times are whole seconds; clocks are the same machine
    record = publish_env(store, tmp_path / "pkgs", ["a-1.0-0.conda", "b-1.0-0.conda"])
    infos = {i.key: i for i in store.list_info("")}
    keys = list(store.list(""))
    assert sorted(infos) == keys
    for package in record.packages:
        info = infos[package_key(package.sha256, package.filename)]
        assert info.size == package.size
        assert before <= info.modified <= time.time() + 5
    assert [i.key for i in store.list_info("pkgs/")] == [k for k in keys if k.startswith("pkgs/")]
