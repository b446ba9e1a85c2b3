"""The artifact store: content-addressed, write-once packages, locks and records.

``open_store(url, base_dir=...)`` picks the backend from ``catalog.yaml``'s ``store:``:

- a path or ``file://`` URL: :class:`LocalStore` (relative paths are relative to the
  catalog root, ``base_dir``);
- ``s3://bucket/prefix``: :class:`S3Store` (boto3, imported on first use).

The contract (layout, write-once, verification) is in :mod:`envctl.store.base`; the
record models in :mod:`envctl.store.records`; parallel package upload in
:mod:`envctl.store.upload`. Importing this package loads neither boto3 nor pydantic.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from envctl.errors import StoreError
from envctl.store.base import (
    CorruptObjectError,
    InvalidKeyError,
    MissingObjectError,
    ObjectInfo,
    ObjectStat,
    Store,
    WriteOnceError,
    alias_key,
    check_key,
    content_sha256,
    env_record_key,
    lock_key,
    package_key,
    sha256_bytes,
    sha256_file,
)
from envctl.store.local import LocalStore
from envctl.store.s3 import S3Store
from envctl.store.upload import PackageFile, UploadProgress, UploadReport, upload_packages

__all__ = [
    "CorruptObjectError",
    "InvalidKeyError",
    "LocalStore",
    "MissingObjectError",
    "ObjectInfo",
    "ObjectStat",
    "PackageFile",
    "S3Store",
    "Store",
    "UploadProgress",
    "UploadReport",
    "WriteOnceError",
    "alias_key",
    "check_key",
    "content_sha256",
    "env_record_key",
    "lock_key",
    "open_store",
    "package_key",
    "sha256_bytes",
    "sha256_file",
    "upload_packages",
]

_STORE_FIX = "set store: in catalog.yaml to a directory, file:///abs/path or s3://bucket/prefix"


def open_store(url: str, *, base_dir: Path | None = None, where: str = "catalog.yaml") -> Store:
    """The store ``url`` names; ``base_dir`` (the catalog root) anchors a relative path.

    ``where`` is where the URL came from, for error messages.
    """
    if not isinstance(url, str) or not url.strip():
        raise StoreError(
            "no artifact store is configured", file=where, rule="store-config", fix=_STORE_FIX
        )
    url = url.strip()
    # A Windows drive ("C:\\store") parses as a one-letter scheme: it is a path.
    scheme = "" if re.match(r"[A-Za-z]:[\\/]", url) else urlsplit(url).scheme.lower()
    if scheme == "":
        path = Path(url).expanduser()
        if not path.is_absolute():
            path = (base_dir if base_dir is not None else Path.cwd()) / path
        return LocalStore(path)
    if scheme == "file":
        from urllib.request import url2pathname  # ~20 ms of imports; only file URLs need it

        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise StoreError(
                f"store URL {url!r} names host {parts.netloc!r}",
                file=where,
                rule="store-config",
                fix="a file URL is file:///absolute/path; for a relative path write just the path",
            )
        return LocalStore(Path(url2pathname(parts.path)))
    if scheme == "s3":
        parts = urlsplit(url)
        if not parts.netloc or parts.query or parts.fragment:
            raise StoreError(
                f"store URL {url!r} is not s3://bucket/prefix",
                file=where,
                rule="store-config",
                fix=_STORE_FIX,
            )
        prefix = unquote(parts.path).strip("/")
        if prefix:
            try:
                check_key(prefix)
            except InvalidKeyError as exc:
                raise StoreError(
                    f"store URL {url!r}: {exc.message}",
                    file=where,
                    rule="store-config",
                    fix=_STORE_FIX,
                ) from None
        return S3Store(parts.netloc, prefix)
    raise StoreError(
        f"unknown store URL scheme {scheme!r} in {url!r}",
        file=where,
        rule="store-config",
        fix=_STORE_FIX,
    )
