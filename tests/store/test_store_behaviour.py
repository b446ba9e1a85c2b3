"""The store contract, run against both backends (local directory and S3 on moto)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from envctl.errors import StoreError
from envctl.store import (
    CorruptObjectError,
    InvalidKeyError,
    MissingObjectError,
    Store,
    WriteOnceError,
    lock_key,
    package_key,
)
from envctl.testing.storekit import Backend, alias_record, env_record, make_pkg, publish_env

# -- generic keys -----------------------------------------------------------------------


def test_bytes_round_trip_exists_and_list(store: Store) -> None:
    assert not store.exists("envs/x/a.json")
    assert store.put_bytes("envs/x/a.json", b"A") is True
    assert store.put_bytes("envs/x/b.json", b"B") is True
    assert store.put_bytes("other/c", b"C") is True
    assert store.exists("envs/x/a.json")
    assert store.get_bytes("envs/x/a.json") == b"A"
    assert list(store.list()) == ["envs/x/a.json", "envs/x/b.json", "other/c"]
    assert list(store.list("envs/")) == ["envs/x/a.json", "envs/x/b.json"]
    assert list(store.list("envs/x/b")) == ["envs/x/b.json"]
    assert list(store.list("nothing/")) == []


def test_put_same_bytes_again_is_a_no_op(store: Store) -> None:
    assert store.put_bytes("envs/x/a.json", b"same") is True
    assert store.put_bytes("envs/x/a.json", b"same") is False
    assert store.get_bytes("envs/x/a.json") == b"same"


def test_put_different_bytes_is_refused(store: Store) -> None:
    store.put_bytes("envs/x/a.json", b"first")
    with pytest.raises(WriteOnceError) as info:
        store.put_bytes("envs/x/a.json", b"second")
    assert info.value.rule == "write-once"
    assert "envs/x/a.json already holds different content" in info.value.message
    assert info.value.file == store.describe("envs/x/a.json")
    assert info.value.fix
    assert store.get_bytes("envs/x/a.json") == b"first"


def test_only_alias_keys_are_mutable(store: Store) -> None:
    with pytest.raises(ValueError, match="only alias records"):
        store.put_bytes("envs/x/a.json", b"x", mutable=True)
    assert store.put_bytes("aliases/team/env/stable.json", b"1", mutable=True) is True
    assert store.put_bytes("aliases/team/env/stable.json", b"2", mutable=True) is True
    assert store.put_bytes("aliases/team/env/stable.json", b"2", mutable=True) is False
    assert store.get_bytes("aliases/team/env/stable.json") == b"2"


def test_missing_object(store: Store, tmp_path: Path) -> None:
    with pytest.raises(MissingObjectError) as info:
        store.get_bytes("envs/x/none.json")
    assert info.value.rule == "missing-object"
    assert "envs/x/none.json is not in the store" in info.value.message
    with pytest.raises(MissingObjectError):
        store.get_file("envs/x/none.json", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [] or all(p.name == "store" for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    "key",
    [
        "../outside",
        "pkgs/../../outside",
        "/etc/passwd",
        "C:/windows",
        "a\\b",
        "a/./b",
        "a//b",
        "a/",
        ".hidden",
        "pkgs/.tmp-x",
        "a/b\nc",
        "",
    ],
)
def test_path_traversal_and_unsafe_keys_are_refused(
    backend: Backend, tmp_path: Path, key: str
) -> None:
    store = backend.store
    for call in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.get_file(key, tmp_path / "dest"),
    ):
        with pytest.raises(InvalidKeyError) as info:
            call()
        assert info.value.rule == "invalid-key"
    assert list(store.list()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["store"])
    with pytest.raises(InvalidKeyError):
        list(store.list("../"))


# -- packages and locks -----------------------------------------------------------------


def test_package_round_trip(store: Store, tmp_path: Path) -> None:
    pkg = make_pkg(tmp_path / "src", "numpy-1.26.4-py311h64a7726_0.conda")
    assert not store.has_package(pkg.sha256, pkg.filename)
    assert store.put_package(pkg.path, pkg.sha256) is True
    assert store.has_package(pkg.sha256, pkg.filename)
    assert store.put_package(pkg.path, pkg.sha256) is False  # idempotent
    key = package_key(pkg.sha256, pkg.filename)
    assert key == f"pkgs/{pkg.sha256}/{pkg.filename}" == store.package_key(pkg.sha256, pkg.filename)
    assert store.get_bytes(key) == pkg.path.read_bytes()
    dest = store.get_file(key, tmp_path / "out" / pkg.filename)
    assert dest.read_bytes() == pkg.path.read_bytes()
    assert store.verify(key)
    assert list(store.list("pkgs/")) == [key]


def test_package_under_another_filename(store: Store, tmp_path: Path) -> None:
    pkg = make_pkg(tmp_path / "src", "download.tmp")
    assert store.put_package(pkg.path, pkg.sha256, "foo-1.0-py3-none-any.whl") is True
    assert store.has_package(pkg.sha256, "foo-1.0-py3-none-any.whl")


def test_package_sha_mismatch_stores_nothing(store: Store, tmp_path: Path) -> None:
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda")
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(StoreError) as info:
        store.put_package(pkg.path, wrong)
    assert info.value.rule == "sha256-mismatch"
    assert f"its sha256 is {pkg.sha256}" in info.value.message
    assert list(store.list()) == []


def test_package_with_unreadable_source(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        store.put_package(tmp_path / "missing-1.0-0.conda", "0" * 64)
    assert info.value.rule == "local-file"
    assert list(store.list()) == []


def test_lock_round_trip(store: Store) -> None:
    data = b"version: 1\nmetadata: {}\n"
    sha = store.put_lock(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.put_lock(data) == sha
    assert store.get_lock(sha) == data
    assert store.has_lock(sha)
    assert list(store.list("locks/")) == [f"locks/{sha}.conda-lock.yml"]


def test_bytes_at_a_content_address_must_hash_to_it(store: Store) -> None:
    with pytest.raises(StoreError) as info:
        store.put_bytes(lock_key("0" * 64), b"not that")
    assert info.value.rule == "sha256-mismatch"
    assert not store.exists(lock_key("0" * 64))


def test_corruption_is_detected_on_every_read(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda")
    store.put_package(pkg.path, pkg.sha256)
    key = package_key(pkg.sha256, pkg.filename)
    backend.corrupt(key)

    with pytest.raises(CorruptObjectError) as info:
        store.get_bytes(key)
    error = info.value
    assert error.rule == "corrupt-object"
    assert error.message.startswith(f"corrupt object {key}: its sha256 is ")
    assert error.fix and "envctl ci run" in error.fix
    assert error.file == store.describe(key)

    dest = tmp_path / "out" / pkg.filename
    with pytest.raises(CorruptObjectError):
        store.get_file(key, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial download left behind
    assert not store.verify(key)


def test_corrupt_lock_is_detected(backend: Backend) -> None:
    sha = backend.store.put_lock(b"lock bytes\n")
    backend.corrupt(lock_key(sha))
    with pytest.raises(CorruptObjectError, match="corrupt object locks/"):
        backend.store.get_lock(sha)


def test_corrupt_object_is_repaired_by_the_next_upload(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda")
    store.put_package(pkg.path, pkg.sha256)
    key = package_key(pkg.sha256, pkg.filename)
    backend.corrupt(key)
    assert store.put_package(pkg.path, pkg.sha256) is True
    assert store.get_bytes(key) == pkg.path.read_bytes()
    assert store.put_package(pkg.path, pkg.sha256) is False


def test_truncated_object_is_repaired(backend: Backend, tmp_path: Path) -> None:
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda")
    key = package_key(pkg.sha256, pkg.filename)
    backend.raw_put(key, pkg.path.read_bytes()[:10])
    assert backend.store.put_package(pkg.path, pkg.sha256) is True
    assert backend.store.get_bytes(key) == pkg.path.read_bytes()


def test_concurrent_creates_of_one_key_all_succeed(store: Store, tmp_path: Path) -> None:
    pkg = make_pkg(tmp_path / "src", "foo-1.0-0.conda", b"x" * 100_000)
    results: list[bool] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            results.append(store.put_package(pkg.path, pkg.sha256))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8 and any(results)
    assert store.get_bytes(package_key(pkg.sha256, pkg.filename)) == pkg.path.read_bytes()


# -- environment records ----------------------------------------------------------------


def test_env_record_round_trip(store: Store, tmp_path: Path) -> None:
    record = publish_env(store, tmp_path / "src", ["a-1-0.conda", "b-1-0.conda"])
    got = store.get_env_record(record.platform, record.req_id, record.full_id)
    assert got == record
    key = f"envs/linux-64/{record.req_id}/{record.full_id}.json"
    assert list(store.list("envs/")) == [key]
    # Deterministic bytes: republishing the same record is a no-op.
    assert store.put_env_record(record) == record


def test_env_record_needs_its_artifacts_first(store: Store, tmp_path: Path) -> None:
    pkgs = [make_pkg(tmp_path / "src", "a-1-0.conda"), make_pkg(tmp_path / "src", "b-1-0.conda")]
    lock_sha = store.put_lock(b"lock\n")
    store.put_package(pkgs[0].path, pkgs[0].sha256)
    record = env_record(pkgs, lock_sha)
    with pytest.raises(StoreError) as info:
        store.put_env_record(record)
    assert info.value.rule == "missing-artifact"
    assert package_key(pkgs[1].sha256, pkgs[1].filename) in info.value.message
    assert list(store.list("envs/")) == []  # nothing claimed

    no_lock = env_record(pkgs[:1], "f" * 64)
    with pytest.raises(StoreError, match=r"locks/f{64}"):
        store.put_env_record(no_lock)


def test_env_record_first_publisher_stands(store: Store, tmp_path: Path) -> None:
    first = publish_env(store, tmp_path / "src", ["a-1-0.conda"])
    pkgs = [make_pkg(tmp_path / "src", "a-1-0.conda")]
    again = env_record(
        pkgs,
        store.put_lock(b"another lock, same packages\n"),
        alias="team/other:v1",
        resolved_at="2026-02-02T00:00:00Z",
    )
    assert again.full_id == first.full_id
    assert store.put_env_record(again) == first
    assert store.get_env_record(first.platform, first.req_id, first.full_id) == first


def test_env_record_forged_under_another_id_is_corrupt(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    record = publish_env(store, tmp_path / "src", ["a-1-0.conda"])
    other_req = "2" * 40
    key = f"envs/linux-64/{other_req}/{record.full_id}.json"
    backend.raw_put(key, backend.raw_get(f"envs/linux-64/{record.req_id}/{record.full_id}.json"))
    with pytest.raises(CorruptObjectError, match="it describes linux-64"):
        store.get_env_record("linux-64", other_req, record.full_id)


def test_invalid_env_record_is_a_clear_error(backend: Backend) -> None:
    key = f"envs/linux-64/{'1' * 40}/{'2' * 40}.json"
    backend.raw_put(key, b"{not json")
    with pytest.raises(StoreError) as info:
        backend.store.get_env_record("linux-64", "1" * 40, "2" * 40)
    assert info.value.rule == "invalid-record"
    assert info.value.file == backend.store.describe(key)


# -- alias records ----------------------------------------------------------------------


def test_immutable_alias_is_write_once(store: Store, tmp_path: Path) -> None:
    env = publish_env(store, tmp_path / "src", ["a-1-0.conda"])
    first = alias_record(env, published_at="2026-01-01T00:00:00Z")
    assert store.put_alias(first) == first
    # Republishing the same target later keeps the first record (a rerun is a no-op).
    assert store.put_alias(alias_record(env, published_at="2026-03-03T00:00:00Z")) == first
    assert store.get_alias("team/env", "v1") == first

    other = publish_env(store, tmp_path / "other", ["b-1-0.conda"], lock=b"lock 2\n")
    with pytest.raises(WriteOnceError) as info:
        store.put_alias(alias_record(other))
    assert info.value.tag == "v1"
    assert "add a new tag" in (info.value.fix or "")
    with pytest.raises(WriteOnceError):  # nor can it become mutable
        store.put_alias(alias_record(other, mutable=True))
    assert store.get_alias("team/env", "v1") == first


def test_mutable_alias_is_replaced(store: Store, tmp_path: Path) -> None:
    v1 = publish_env(store, tmp_path / "v1", ["a-1-0.conda"])
    v2 = publish_env(store, tmp_path / "v2", ["a-2-0.conda"], lock=b"lock 2\n")
    first = alias_record(v1, tag="stable", mutable=True, target="v1")
    assert store.put_alias(first) == first
    same = alias_record(v1, tag="stable", mutable=True, target="v1", published_at="2026-05-05")
    assert store.put_alias(same) == first  # unchanged target: nothing rewritten
    moved = alias_record(
        v2, tag="stable", mutable=True, target="v2", commit="d" * 40, published_at="2026-06-06"
    )
    assert store.put_alias(moved) == moved
    assert store.get_alias("team/env", "stable") == moved
    assert list(store.list("aliases/")) == ["aliases/team/env/stable.json"]


def test_alias_needs_its_env_records(store: Store, tmp_path: Path) -> None:
    env = env_record([make_pkg(tmp_path, "a-1-0.conda")], "e" * 64)
    with pytest.raises(StoreError) as info:
        store.put_alias(alias_record(env))
    assert info.value.rule == "missing-artifact"
    assert store.find_alias("team/env", "v1") is None


def test_missing_alias(store: Store) -> None:
    assert store.find_alias("team/env", "v9") is None
    with pytest.raises(MissingObjectError) as info:
        store.get_alias("team/env", "v9")
    assert info.value.message == "team/env:v9 is not published in the store"


def test_alias_keys_of_nested_names_do_not_clash(store: Store, tmp_path: Path) -> None:
    env = publish_env(store, tmp_path / "src", ["a-1-0.conda"])
    store.put_alias(alias_record(env, name="a/b", tag="c"))
    store.put_alias(alias_record(env, name="a/b/c", tag="x"))
    assert list(store.list("aliases/")) == ["aliases/a/b/c.json", "aliases/a/b/c/x.json"]
    assert store.get_alias("a/b", "c").name == "a/b"
    assert store.get_alias("a/b/c", "x").name == "a/b/c"


def test_alias_replacement_is_atomic_for_readers(store: Store, tmp_path: Path) -> None:
    envs = [
        publish_env(store, tmp_path / f"e{i}", [f"p-{i}-0.conda"], lock=f"lock {i}\n".encode())
        for i in range(2)
    ]
    store.put_alias(alias_record(envs[0], tag="latest", mutable=True))
    seen: set[str] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:  # a partial file would fail to parse or validate
                seen.add(store.get_alias("team/env", "latest").lock_sha256)
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for i in range(16):
            env = envs[i % 2]
            store.put_alias(
                alias_record(env, tag="latest", mutable=True, published_at=f"t{i}"),
                check_artifacts=False,
            )
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert failures == []
    assert seen <= {env.lock_sha256 for env in envs}
