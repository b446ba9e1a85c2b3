"""open_store: which backend a catalog.yaml ``store:`` value names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envctl.errors import StoreError
from envctl.store import LocalStore, S3Store, open_store


def test_relative_path_is_relative_to_the_catalog(tmp_path: Path) -> None:
    store = open_store("artifacts/store", base_dir=tmp_path)
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "artifacts" / "store"
    assert not store.root.exists()  # opening creates nothing; the first write does


def test_absolute_path_and_file_url(tmp_path: Path) -> None:
    assert open_store(str(tmp_path / "s"), base_dir=Path("/elsewhere")).root == tmp_path / "s"
    store = open_store((tmp_path / "with space").as_uri())
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "with space"
    assert open_store(f"file://localhost{tmp_path}/s").root == tmp_path / "s"


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_store("~/store").root == tmp_path / "store"


def test_s3_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    store = open_store("s3://bucket/some/prefix/")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == (
        "bucket",
        "some/prefix",
        "s3://bucket/some/prefix",
    )
    assert store.endpoint_url == "http://127.0.0.1:9"
    assert store.describe("pkgs/a") == "s3://bucket/some/prefix/pkgs/a"
    bare = open_store("s3://bucket")
    assert isinstance(bare, S3Store) and bare.prefix == "" and bare.describe("x") == "s3://bucket/x"


def test_aws_endpoint_variable_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVCTL_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:10")
    store = open_store("s3://bucket")
    assert isinstance(store, S3Store) and store.endpoint_url == "http://127.0.0.1:10"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no artifact store is configured"),
        ("   ", "no artifact store is configured"),
        ("gs://bucket/x", "unknown store URL scheme 'gs'"),
        ("https://example.invalid/store", "unknown store URL scheme 'https'"),
        ("file://server/share", "names host 'server'"),
        ("s3:///prefix-without-bucket", "is not s3://bucket/prefix"),
        ("s3://bucket/a/../b", "could escape the store"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    error = info.value
    assert message in error.message
    assert error.rule == "store-config"
    assert error.file == "catalog.yaml"
    assert error.fix


def test_importing_the_store_does_not_import_boto3() -> None:
    code = (
        "import sys, envctl.store, envctl.store.upload;"
        "envctl.store.open_store('s3://bucket/x');"
        "print(sorted(m for m in ('boto3', 'botocore', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
