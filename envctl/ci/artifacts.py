"""Put a resolved tag into the artifact store, prove it is there, and publish its aliases.

Order (DESIGN.md, "The artifact store"): packages first, then the lock, then one
environment record per platform (the store refuses a record whose artifacts are
missing), then — only after the commit back has landed — the alias records. So nothing
in git or in an alias ever points at a missing artifact.

Package files are fetched from the URLs the lock records (the channel's, with any
credentials the catalog's channel settings add back) into the package cache, and their
sha256 is checked against the lock *before* anything of them is sent: a mismatch stops
the job. Files the store already has are neither fetched nor sent, so a rerun after a
failure uploads only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from envctl import __version__
from envctl.errors import EnvctlError, StoreError
from envctl.names import Alias, parse_alias

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.meta import Meta
    from envctl.resolve.channels import ChannelRef
    from envctl.resolve.lockfile import LockData, LockedPackage
    from envctl.store import Store
    from envctl.store.records import EnvRecord
    from envctl.store.upload import UploadProgress

#: Parallel existence checks: on S3 each is a request, and latency dominates.
STAT_WORKERS = 16


@dataclass(frozen=True)
class Uploaded:
    uploaded: int  # package files sent
    skipped: int  # package files the store already had
    bytes: int
    lock_sha256: str


# -- fetching -------------------------------------------------------------------------


def unique_packages(lock: LockData) -> list[LockedPackage]:
    """Each package file once (noarch files repeat on every platform)."""
    seen: dict[tuple[str, str], LockedPackage] = {}
    for package in lock.packages:
        if not package.sha256:
            from envctl.errors import LockfileError

            raise LockfileError(
                f"{package.filename} has no sha256 in the lock",
                rule="missing-sha256",
                fix="re-resolve the tag; envctl verifies every package by sha256",
            )
        seen.setdefault((package.sha256, package.filename), package)
    return list(seen.values())


def fetch_url(package: LockedPackage, refs: Sequence[ChannelRef]) -> str:
    """The URL to download from: the lock's, with the channel's credentials put back."""
    from envctl.resolve.channels import channel_of

    ref = channel_of(package.url, refs) if package.manager == "conda" else None
    if ref is None or ref.url == ref.public_url:
        return package.url
    base = ref.public_url.rstrip("/")
    return ref.url.rstrip("/") + package.url[len(base) :]


def channel_refs_for(catalog: Catalog, alias: Alias) -> list[ChannelRef]:
    from envctl.resolve.channels import channel_refs

    root = getattr(catalog.source, "root", None)
    spec = catalog.effective(alias)
    return channel_refs(spec.channels, catalog.config.channels, root)


def stored_sizes(store: Store, packages: Sequence[LockedPackage]) -> dict[str, int]:
    """``{package key: size}`` of the packages already in the store (listed in parallel)."""
    from envctl.store import package_key

    def one(package: LockedPackage) -> tuple[str, int | None]:
        key = package_key(package.sha256 or "", package.filename)
        for info in store.list_info(key):
            if info.key == key:
                return key, info.size
        return key, None

    if not packages:
        return {}
    with ThreadPoolExecutor(max_workers=min(STAT_WORKERS, len(packages))) as pool:
        return {key: size for key, size in pool.map(one, packages) if size is not None}


# -- uploading ------------------------------------------------------------------------


def upload_tag(
    store: Store,
    catalog: Catalog,
    alias: Alias,
    lock_bytes: bytes,
    meta: Meta,
    *,
    cache: Path,
    progress: Callable[[UploadProgress], None] | None = None,
) -> Uploaded:
    """Packages, lock and environment records of one resolved tag; see the module docstring."""
    from envctl.materialize import fetch_all
    from envctl.resolve.lockfile import read_lock
    from envctl.store import package_key, upload_packages

    lock = read_lock(lock_bytes, file=str(alias.lock_path))
    if records_present(store, meta):
        lock_sha = _put_lock(store, lock_bytes, meta, alias)
        return Uploaded(0, len(unique_packages(lock)), 0, lock_sha)

    packages = unique_packages(lock)
    sizes = stored_sizes(store, packages)
    missing = [p for p in packages if package_key(p.sha256 or "", p.filename) not in sizes]
    refs = channel_refs_for(catalog, alias) if missing else []
    # Verified against the lock's sha256 while fetched (materialize's check): a file that
    # does not match stops the job before any byte of it is uploaded.
    fetched = fetch_all([replace(p, url=fetch_url(p, refs)) for p in missing], cache=cache)
    report = upload_packages(
        store,
        [(f.path, f.package.sha256, f.package.filename) for f in fetched],
        progress=progress,
    )
    for item in fetched:
        sizes[package_key(item.package.sha256 or "", item.package.filename)] = (
            item.path.stat().st_size
        )
    lock_sha = _put_lock(store, lock_bytes, meta, alias)
    for record in env_records(lock, meta, alias, lock_sha, sizes):
        store.put_env_record(record)  # refuses a record whose artifacts are missing
    return Uploaded(
        uploaded=report.uploaded,
        skipped=len(packages) - len(missing) + report.skipped,
        bytes=report.bytes,
        lock_sha256=lock_sha,
    )


def _put_lock(store: Store, lock_bytes: bytes, meta: Meta, alias: Alias) -> str:
    lock_sha = store.put_lock(lock_bytes)
    if lock_sha != meta.lock_sha256:
        raise StoreError(
            f"the lock of {alias} hashes to {lock_sha}, its meta records {meta.lock_sha256}",
            file=str(alias.meta_path),
            tag=alias.tag,
            rule="lock-hash-mismatch",
            fix="resolve the tag again; lock and meta are written together",
        )
    return lock_sha


def records_present(store: Store, meta: Meta) -> bool:
    """Whether every platform's environment record is already published (with the lock)."""
    from envctl.store import MissingObjectError

    if not store.has_lock(meta.lock_sha256):
        return False
    for platform, ids in meta.platforms.items():
        try:
            store.get_env_record(platform, ids.req_id, ids.full_id)
        except MissingObjectError:
            return False
    return True


def env_records(
    lock: LockData, meta: Meta, alias: Alias, lock_sha: str, sizes: dict[str, int]
) -> list[EnvRecord]:
    from envctl.store import package_key
    from envctl.store.records import EnvRecord, PackageRecord

    records = []
    for platform, ids in sorted(meta.platforms.items()):
        packages = [
            PackageRecord(
                filename=p.filename,
                sha256=p.sha256 or "",
                size=sizes[package_key(p.sha256 or "", p.filename)],
                url=p.url,  # the public URL: the lock never holds credentials
            )
            for p in lock.for_platform(platform)
        ]
        records.append(
            EnvRecord(
                platform=platform,
                req_id=ids.req_id,
                full_id=ids.full_id,
                alias=str(alias),
                lock_sha256=lock_sha,
                packages=packages,
                resolved_at=meta.resolved_at,
                resolved_by=meta.resolved_by,
                envctl_version=__version__,
            )
        )
    return records


def verify_tag(store: Store, lock_bytes: bytes, meta: Meta, alias: Alias) -> None:
    """Raise unless the lock, every environment record and every package it names are in
    the store: the check before a hash is committed. The lock is re-read (and so
    re-hashed); packages are checked by presence and size, as the records require."""
    from envctl.store import MissingObjectError, package_key

    problems: list[str] = []
    try:
        if store.get_lock(meta.lock_sha256) != lock_bytes:
            problems.append(f"lock {meta.lock_sha256} holds other bytes")
    except MissingObjectError:
        problems.append(f"lock {meta.lock_sha256} is missing")
    for platform, ids in sorted(meta.platforms.items()):
        try:
            record = store.get_env_record(platform, ids.req_id, ids.full_id)
        except MissingObjectError:
            problems.append(f"environment record {ids.req_id}:{ids.full_id} ({platform})")
            continue
        for package in record.packages:
            key = package_key(package.sha256, package.filename)
            if not any(i.key == key and i.size == package.size for i in store.list_info(key)):
                problems.append(key)
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise StoreError(
            f"{alias} is not fully in the store {store.url}: {problems[0]}{more}",
            tag=alias.tag,
            rule="missing-artifact",
            fix="rerun envctl ci run: it uploads what is missing before committing",
        )


# -- alias records --------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    alias: str
    status: str  # published, unchanged, pending, failed
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"alias": self.alias, "status": self.status, "message": self.message}


def with_pointers(catalog: Catalog, aliases: Sequence[str]) -> list[str]:
    """``aliases`` plus every pointer that points at one of them, without repeats."""
    out = dict.fromkeys(aliases)
    for text in aliases:
        try:
            alias = parse_alias(text)
            for tag in catalog.pointers_to(alias):
                out.setdefault(str(Alias(alias.name, tag)))
        except EnvctlError:
            continue
    return list(out)


def publish_aliases(
    store: Store,
    catalog: Catalog,
    aliases: Sequence[str],
    *,
    commit: str,
    published_at: str,
    cache: Path,
) -> list[Published]:
    """Publish ``aliases`` as the catalog at ``commit`` has them; idempotent.

    A tag whose environment records are missing (a lock that reached git without this
    job's upload) is uploaded first from the committed lock.
    """
    out = []
    for text in aliases:
        try:
            out.append(_publish_one(store, catalog, parse_alias(text), commit, published_at,
                                    cache))
        except EnvctlError as exc:
            out.append(Published(text, "failed", exc.render()))
    return out


def _publish_one(
    store: Store, catalog: Catalog, alias: Alias, commit: str, published_at: str, cache: Path
) -> Published:
    from envctl.spec import PointerTag
    from envctl.store.records import AliasRecord, AliasTarget

    spec = catalog.tag(alias)
    target = Alias(alias.name, spec.points_to) if isinstance(spec, PointerTag) else alias
    meta = catalog.meta(target)
    lock_bytes = catalog.lock_bytes(target)
    if meta is None or lock_bytes is None:
        return Published(str(alias), "pending", f"{target} is not locked yet")
    record = AliasRecord(
        name=str(alias.name),
        tag=alias.tag,
        mutable=isinstance(spec, PointerTag) or catalog.is_mutable(alias.tag),
        target=target.tag if isinstance(spec, PointerTag) else None,
        platforms={p: AliasTarget(req_id=m.req_id, full_id=m.full_id)
                   for p, m in meta.platforms.items()},
        lock_sha256=meta.lock_sha256,
        commit=commit,
        published_at=published_at,
    )
    existing = store.find_alias(record.name, record.tag)
    if existing is not None and existing.same_target(record):
        return Published(str(alias), "unchanged", f"already published ({existing.commit[:12]})")
    if not records_present(store, meta):
        upload_tag(store, catalog, target, lock_bytes, meta, cache=cache)
    store.put_alias(record)
    what = f"-> {target.tag}" if target != alias else ", ".join(sorted(meta.platforms))
    return Published(str(alias), "published", what)
