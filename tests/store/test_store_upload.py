"""upload_packages: parallel, idempotent, checked before sending; on both backends."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from envctl.errors import StoreError
from envctl.store import InvalidKeyError, Store, package_key
from envctl.store.upload import PackageFile, UploadProgress, upload_packages
from envctl.testing.storekit import Pkg, make_pkg


def _pkgs(folder: Path, count: int, start: int = 0) -> list[Pkg]:
    return [
        make_pkg(folder, f"pkg{i}-1.0-0.conda", f"content {i}\n".encode() * (100 + i))
        for i in range(start, start + count)
    ]


def _items(pkgs: list[Pkg]) -> list[PackageFile]:
    return [PackageFile(p.path, p.sha256, p.filename) for p in pkgs]


def test_parallel_upload_with_progress(store: Store, tmp_path: Path) -> None:
    pkgs = _pkgs(tmp_path / "src", 24)
    events: list[UploadProgress] = []
    threads: set[str] = set()

    def progress(event: UploadProgress) -> None:
        events.append(event)
        threads.add(threading.current_thread().name)

    report = upload_packages(store, _items(pkgs), workers=6, progress=progress)

    total_bytes = sum(p.size for p in pkgs)
    assert (report.uploaded, report.skipped, report.bytes) == (24, 0, total_bytes)
    assert report.keys == tuple(package_key(p.sha256, p.filename) for p in pkgs)
    assert [e.done for e in events] == list(range(1, 25))
    assert all(e.total == 24 and e.uploaded and e.bytes_total == total_bytes for e in events)
    assert events[-1].bytes_done == total_bytes
    assert {e.key for e in events} == set(report.keys)
    # The callback runs on the caller's thread, so it may drive a progress bar freely.
    assert threads == {threading.current_thread().name}
    for pkg in pkgs:
        assert store.get_bytes(package_key(pkg.sha256, pkg.filename)) == pkg.path.read_bytes()


def test_rerun_uploads_only_what_is_missing(store: Store, tmp_path: Path) -> None:
    first = _pkgs(tmp_path / "src", 5)
    upload_packages(store, _items(first))
    more = _pkgs(tmp_path / "src", 3, start=5)
    events: list[UploadProgress] = []
    report = upload_packages(store, _items(first + more), workers=4, progress=events.append)
    assert (report.uploaded, report.skipped) == (3, 5)
    assert report.bytes == sum(p.size for p in more)
    assert sorted(e.item.filename for e in events if e.uploaded) == [p.filename for p in more]

    again = upload_packages(store, _items(first + more))
    assert (again.uploaded, again.skipped, again.bytes) == (0, 8, 0)


def test_duplicates_are_uploaded_once(store: Store, tmp_path: Path) -> None:
    pkg = make_pkg(tmp_path / "src", "noarch-1.0-0.conda")
    items = [(pkg.path, pkg.sha256, pkg.filename)] * 3  # plain tuples are accepted
    report = upload_packages(store, items)
    assert (report.uploaded, report.skipped, report.keys) == (
        1,
        0,
        (package_key(pkg.sha256, pkg.filename),),
    )


def test_empty_upload(store: Store) -> None:
    report = upload_packages(store, [])
    assert (report.uploaded, report.skipped, report.bytes, report.keys) == (0, 0, 0, ())


def test_sha_mismatch_stops_the_job_and_claims_nothing(store: Store, tmp_path: Path) -> None:
    pkgs = _pkgs(tmp_path / "src", 6)
    items = _items(pkgs)
    bad = pkgs[2]
    bad.path.write_bytes(b"tampered after the lock was written")
    events: list[UploadProgress] = []
    with pytest.raises(StoreError) as info:
        # One worker: files go in order, so what follows the bad one is never started.
        upload_packages(store, items, workers=1, progress=events.append)
    assert info.value.rule == "sha256-mismatch"
    assert bad.filename in info.value.message
    assert not store.exists(package_key(bad.sha256, bad.filename))
    stored = list(store.list("pkgs/"))
    assert stored == sorted(package_key(p.sha256, p.filename) for p in pkgs[:2])
    assert [e.item.filename for e in events] == [p.filename for p in pkgs[:2]]


def test_sha_mismatch_in_parallel_leaves_no_object_for_it(store: Store, tmp_path: Path) -> None:
    pkgs = _pkgs(tmp_path / "src", 12)
    bad = pkgs[5]
    bad.path.write_bytes(b"tampered")
    with pytest.raises(StoreError, match="sha256"):
        upload_packages(store, _items(pkgs), workers=4)
    assert not store.exists(package_key(bad.sha256, bad.filename))
    # What did go up is whole and verified; a rerun with the right file completes.
    for key in store.list("pkgs/"):
        assert store.get_bytes(key)
    bad.path.write_bytes(f"content {5}\n".encode() * 105)
    report = upload_packages(store, _items(pkgs), workers=4)
    assert report.total == 12
    assert len(list(store.list("pkgs/"))) == 12


def test_missing_local_file_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    items = [PackageFile(tmp_path / "gone-1.0-0.conda", "0" * 64, "gone-1.0-0.conda")]
    with pytest.raises(StoreError) as info:
        upload_packages(store, items)
    assert info.value.rule == "local-file"
    assert "gone-1.0-0.conda" in info.value.message


def test_invalid_items_fail_before_anything_is_sent(store: Store, tmp_path: Path) -> None:
    good = make_pkg(tmp_path / "src", "good-1.0-0.conda")
    for bad in (
        PackageFile(good.path, "NOT-HEX", "x-1.0-0.conda"),
        PackageFile(good.path, hashlib.sha256(b"").hexdigest(), "../escape.conda"),
    ):
        with pytest.raises(InvalidKeyError):
            upload_packages(store, [PackageFile(good.path, good.sha256, good.filename), bad])
    assert list(store.list()) == []
