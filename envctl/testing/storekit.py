"""Test helpers for the artifact store: package files, records, and raw access to a
backend's objects (to corrupt them behind the store's back, as a fault would).

Used by ``tests/store`` and by later CI tests that need a store with content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envctl.resolve.ids import full_id
from envctl.store import LocalStore, S3Store, Store
from envctl.store.records import AliasRecord, AliasTarget, EnvRecord, PackageRecord
from envctl.testing.s3server import S3Server


@dataclass
class Backend:
    """A store plus ways to change its objects behind its back, as a fault would."""

    name: str
    store: Store
    raw_put: Callable[[str, bytes], None]
    raw_get: Callable[[str], bytes]

    def corrupt(self, key: str) -> None:
        """Flip one byte of the stored object."""
        data = bytearray(self.raw_get(key))
        data[len(data) // 2] ^= 0xFF
        self.raw_put(key, bytes(data))


def local_backend(root: Path) -> Backend:
    store = LocalStore(root)

    def raw_put(key: str, data: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return Backend("local", store, raw_put, lambda key: (root / key).read_bytes())


def s3_backend(server: S3Server, store: S3Store) -> Backend:
    client = server.client()

    def full(key: str) -> str:
        return f"{store.prefix}/{key}" if store.prefix else key

    def raw_put(key: str, data: bytes) -> None:
        client.put_object(Bucket=store.bucket, Key=full(key), Body=data)

    def raw_get(key: str) -> bytes:
        return client.get_object(Bucket=store.bucket, Key=full(key))["Body"].read()

    return Backend("s3", store, raw_put, raw_get)


PLATFORM = "linux-64"
REQ_ID = "1" * 40
COMMIT = "c" * 40


@dataclass(frozen=True)
class Pkg:
    path: Path
    sha256: str
    filename: str
    size: int


def make_pkg(folder: Path, filename: str, content: bytes | None = None) -> Pkg:
    folder.mkdir(parents=True, exist_ok=True)
    data = content if content is not None else f"package {filename}\n".encode() * 50
    path = folder / filename
    path.write_bytes(data)
    return Pkg(path, hashlib.sha256(data).hexdigest(), filename, len(data))


def env_record(
    pkgs: list[Pkg],
    lock_sha256: str,
    *,
    alias: str = "team/env:v1",
    resolved_at: str = "2026-01-01T00:00:00Z",
) -> EnvRecord:
    packages = [
        PackageRecord(
            filename=p.filename, sha256=p.sha256, size=p.size, url=f"https://ch/{p.filename}"
        )
        for p in pkgs
    ]
    return EnvRecord(
        platform=PLATFORM,
        req_id=REQ_ID,
        full_id=full_id(PLATFORM, packages),
        alias=alias,
        lock_sha256=lock_sha256,
        packages=packages,
        resolved_at=resolved_at,
        resolved_by="ci@example.com",
        envctl_version="0.1.0",
    )


def alias_record(
    env: EnvRecord,
    *,
    name: str = "team/env",
    tag: str = "v1",
    mutable: bool = False,
    target: str | None = None,
    published_at: str = "2026-01-01T00:00:00Z",
    commit: str = COMMIT,
) -> AliasRecord:
    return AliasRecord(
        name=name,
        tag=tag,
        mutable=mutable,
        target=target,
        platforms={env.platform: AliasTarget(req_id=env.req_id, full_id=env.full_id)},
        lock_sha256=env.lock_sha256,
        commit=commit,
        published_at=published_at,
    )


def publish_env(
    store: Store, folder: Path, names: list[str], lock: bytes = b"lock v1\n"
) -> EnvRecord:
    """Upload packages and a lock, then the environment record that names them."""
    pkgs = [make_pkg(folder, name) for name in names]
    for pkg in pkgs:
        store.put_package(pkg.path, pkg.sha256)
    return store.put_env_record(env_record(pkgs, store.put_lock(lock)))
