"""What only the S3 backend does: conditional writes, checksums, parts, errors."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import pytest

from envctl.errors import StoreError
from envctl.store import S3Store, open_store, package_key
from envctl.store.upload import PackageFile, upload_packages
from envctl.testing.s3server import S3Server, serve_s3
from envctl.testing.storekit import make_pkg


def _head(server: S3Server, store: S3Store, key: str) -> dict:
    return server.client().head_object(
        Bucket=store.bucket, Key=f"{store.prefix}/{key}", ChecksumMode="ENABLED"
    )


def test_upload_records_sha256_checksum_and_metadata(
    s3_server: S3Server, s3_store: S3Store, tmp_path: Path
) -> None:
    pkg = make_pkg(tmp_path, "foo-1.0-0.conda")
    s3_store.put_package(pkg.path, pkg.sha256)
    head = _head(s3_server, s3_store, package_key(pkg.sha256, pkg.filename))
    assert head["ContentLength"] == pkg.size
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(pkg.sha256)).decode()
    assert head["Metadata"] == {"sha256": pkg.sha256}
    assert s3_store.url.startswith("s3://envctl-test-") and s3_store.url.endswith("/store")


def test_conditional_write_refuses_a_second_creator(s3_server: S3Server, s3_store: S3Store) -> None:
    # Simulate losing the race: the key appears between our check and our write.
    key = "envs/linux-64/a.json"
    s3_server.client().put_object(
        Bucket=s3_store.bucket, Key=f"{s3_store.prefix}/{key}", Body=b"winner"
    )
    assert s3_store._create(key, b"loser", hashlib.sha256(b"loser").hexdigest(), 5) is False
    assert s3_store.get_bytes(key) == b"winner"


def test_without_conditional_writes(s3_url: str, tmp_path: Path) -> None:
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    store.conditional_writes = False
    pkg = make_pkg(tmp_path, "foo-1.0-0.conda")
    assert store.put_package(pkg.path, pkg.sha256) is True
    assert store.put_package(pkg.path, pkg.sha256) is False
    store.put_bytes("envs/a.json", b"a")
    with pytest.raises(StoreError, match="write-once"):
        store.put_bytes("envs/a.json", b"b")


def test_conditional_writes_can_be_switched_off_by_environment(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVCTL_S3_CONDITIONAL_WRITES", "0")
    store = open_store(s3_url)
    assert isinstance(store, S3Store) and store.conditional_writes is False


def test_large_file_goes_up_in_parts(s3_server: S3Server, s3_url: str, tmp_path: Path) -> None:
    part = 5 * 1024 * 1024  # S3's (and moto's) smallest part
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    store.multipart_threshold = part
    store.part_size = part
    data = bytes(range(256)) * (part // 256) + b"tail"
    pkg = make_pkg(tmp_path, "big-1.0-0.conda", data)
    assert store.put_package(pkg.path, pkg.sha256) is True
    key = package_key(pkg.sha256, pkg.filename)
    head = _head(s3_server, store, key)
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"sha256": pkg.sha256}
    assert store.has_package(pkg.sha256, pkg.filename)
    assert store.put_package(pkg.path, pkg.sha256) is False  # verified by recorded sha256
    assert store.get_file(key, tmp_path / "out").read_bytes() == data
    assert s3_server.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_missing_bucket_is_a_clear_error(s3_env: str) -> None:
    store = open_store("s3://envctl-no-such-bucket/x")
    with pytest.raises(StoreError) as info:
        store.put_bytes("envs/a.json", b"a")
    assert info.value.rule == "store-config"
    assert "bucket 'envctl-no-such-bucket' does not exist" in info.value.message
    assert info.value.fix == "create the bucket, or fix store: in catalog.yaml"


def test_missing_credentials_are_a_clear_error(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = open_store(s3_url)
    with pytest.raises(StoreError) as info:
        store.exists("envs/a.json")
    assert info.value.rule == "store-auth"
    assert "AWS_ACCESS_KEY_ID" in (info.value.fix or "")


def test_stopped_server_fails_fast_and_a_rerun_completes(
    s3_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pkgs = [make_pkg(tmp_path, f"p{i}-1.0-0.conda") for i in range(6)]
    items = [PackageFile(p.path, p.sha256, p.filename) for p in pkgs]
    with serve_s3() as server:
        bucket = server.create_bucket()
        monkeypatch.setenv("ENVCTL_S3_ENDPOINT_URL", server.endpoint_url)
        store = open_store(f"s3://{bucket}/store")
        upload_packages(store, items[:3])
        server.stop()
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            upload_packages(store, items)
        assert time.monotonic() - started < 10
        assert info.value.rule == "store-unreachable"
        assert "cannot reach the store" in info.value.message
        assert "rerun" in (info.value.fix or "")
    # moto's state lives in the process: a new server serves the same bucket.
    with serve_s3() as server:
        monkeypatch.setenv("ENVCTL_S3_ENDPOINT_URL", server.endpoint_url)
        store = open_store(f"s3://{bucket}/store")
        report = upload_packages(store, items)
        assert (report.uploaded, report.skipped) == (3, 3)
