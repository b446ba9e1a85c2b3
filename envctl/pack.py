"""``envctl pack`` and ``envctl create --from-pack``: an environment for an air-gapped machine.

A pack is one tar file (optionally compressed by the user; any tar compression reads):

``envctl-pack.json``
    the manifest: format version, alias, ids per platform, the lock's and meta's sha256,
    and every package member with its sha256 and size. First, so a reader can check it
    before anything else.
``lock.conda-lock.yml``
    the tag's lockfile, byte for byte (its sha256 is the one the catalog and store know).
``meta.yaml``
    the tag's meta, when the catalog has one (an id found in the store alone has none).
``pkgs/<sha256>/<filename>``
    every package file the lock installs on the packed platforms, content-addressed like
    the store and the package cache.

The same tag and platforms give the same bytes: members sorted, mtime 0, owner root,
mode 0644, no host names or times in the manifest.

Unpacking trusts nothing in the file: member names must be exactly those above (no
``..``, no absolute paths, no links or devices, no duplicates), the lock must hash to
the manifest's ``lock_sha256`` and its packages to the recorded full_id, and every
package file must hash to the sha256 the *lock* records. All of that is checked in a
staging folder before a verified file enters the package cache and before the prefix is
started, so a tampered pack is refused with nothing left behind. The install itself is
:func:`envctl.materialize.materialize` finding every file in the package cache: no
store, no channel, no index is touched.

Functions return values and raise :class:`~envctl.errors.EnvctlError`; nothing prints.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import Field

from envctl.errors import CatalogError, EnvctlError, NotFoundError
from envctl.models import StrictModel, dump_json
from envctl.yamlio import MAX_LOCK_BYTES

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.lookup import ResolvedRef
    from envctl.materialize import MaterializeResult, Reporter
    from envctl.store.base import Store

PACK_FORMAT = "1"
MANIFEST = "envctl-pack.json"
LOCK_MEMBER = "lock.conda-lock.yml"
META_MEMBER = "meta.yaml"
MAX_MANIFEST_BYTES = 10_000_000
MAX_META_BYTES = 1_000_000
_PKG_MEMBER = re.compile(r"pkgs/([0-9a-f]{64})/([^/\\\x00]+)")
_CHUNK = 1024 * 1024


class PackError(EnvctlError):
    """A pack that is malformed, incomplete or tampered with."""

    default_rule = "invalid-pack"


class PackPlatform(StrictModel):
    req_id: str
    full_id: str


class PackFile(StrictModel):
    path: str
    sha256: str
    size: int


class PackManifest(StrictModel):
    format: str = PACK_FORMAT
    alias: str | None = None
    asked: str
    lock_sha256: str
    meta_sha256: str | None = None
    platforms: dict[str, PackPlatform]
    packages: list[PackFile] = Field(default_factory=list)


@dataclass(frozen=True)
class PackResult:
    path: Path
    sha256: str
    size: int
    manifest: PackManifest

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "alias": self.manifest.alias,
            "platforms": {p: f"{m.req_id}:{m.full_id}" for p, m in self.manifest.platforms.items()},
            "packages": len(self.manifest.packages),
        }


# -- packing ----------------------------------------------------------------------------------


def pack(
    ref: str,
    output: str | os.PathLike[str],
    *,
    platforms: Sequence[str] = (),
    catalog: Catalog | str | os.PathLike[str] | None = None,
    store: Store | str | None = None,
    fetch: bool | None = None,
    home: Path | None = None,
    reporter: Reporter | None = None,
) -> PackResult:
    """Pack ``ref`` for ``platforms`` (default: this machine's) into ``output``.

    Package files come from the package cache, the store or the lock's URLs, verified by
    sha256 on the way (:func:`envctl.materialize.fetch_all`).
    """
    from envctl import api

    cat = _catalog_or_none(catalog, fetch)
    resolved = [api.resolve_ref(ref, catalog=cat if cat is not None else catalog, store=store,
                                platform=p or None, fetch=False if cat is not None else fetch)
                for p in (list(dict.fromkeys(platforms)) or [""])]
    first = resolved[0]
    if any(r.lock_sha256 != first.lock_sha256 for r in resolved):
        raise PackError(f"{ref} names different locks on different platforms",
                        rule="pack-mixed", fix="pack one platform at a time")
    meta = _meta_bytes(cat, first)
    return write_pack(resolved, output, meta=meta, store=store, home=home, reporter=reporter)


def _catalog_or_none(catalog: Catalog | str | os.PathLike[str] | None,
                     fetch: bool | None) -> Catalog | None:
    """The catalog when there is one; None when none is found (the store then answers)."""
    from envctl.lookup import open_catalog

    try:
        return open_catalog(catalog, fetch=fetch)
    except CatalogError as exc:
        if catalog is not None or os.environ.get("ENVCTL_CATALOG") or exc.rule != "not-a-catalog":
            raise
        return None


def _meta_bytes(cat: Catalog | None, resolved: ResolvedRef) -> bytes | None:
    from envctl.names import parse_alias

    if cat is None or resolved.source != "catalog" or not resolved.alias:
        return None
    return cat.source.read(str(parse_alias(resolved.alias).meta_path))


def write_pack(
    resolved: Sequence[ResolvedRef],
    output: str | os.PathLike[str],
    *,
    meta: bytes | None = None,
    store: Store | str | None = None,
    home: Path | None = None,
    reporter: Reporter | None = None,
) -> PackResult:
    """Write the pack of one lock on one or more platforms (each a :class:`ResolvedRef`)."""
    from envctl.lookup import open_store
    from envctl.materialize import fetch_all, package_cache

    first = resolved[0]
    if not first.lock_bytes or first.lock_sha256 is None:
        raise PackError(f"the lock of {first.asked} was not read", rule="pack-no-lock")
    st = open_store(store) if store is not None else first.store
    packages = {p.sha256: p for r in resolved for p in r.lock.for_platform(r.platform)}
    if None in packages:
        raise PackError(f"the lock of {first.alias or first.asked} has a package without a "
                        "sha256; a pack holds verified files only", rule="missing-sha256",
                        fix="let CI re-resolve the tag (envctl records a sha256 for every file)")
    fetched = fetch_all(sorted(packages.values(), key=lambda p: (p.sha256 or "", p.filename)),
                        cache=package_cache(home), store=st, reporter=reporter)
    files = sorted(
        ((f"pkgs/{f.package.sha256}/{f.package.filename}", f.path, f.package.sha256 or "")
         for f in fetched),
        key=lambda item: item[0],
    )
    manifest = PackManifest(
        alias=first.alias,
        asked=first.asked,
        lock_sha256=first.lock_sha256,
        meta_sha256=hashlib.sha256(meta).hexdigest() if meta is not None else None,
        platforms={r.platform: PackPlatform(req_id=r.req_id, full_id=r.full_id)
                   for r in sorted(resolved, key=lambda r: r.platform)},
        packages=[PackFile(path=name, sha256=sha, size=path.stat().st_size)
                  for name, path, sha in files],
    )
    out = Path(os.path.abspath(os.fspath(output)))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle, tarfile.open(
            fileobj=handle, mode="w", format=tarfile.PAX_FORMAT
        ) as tar:
            _add_bytes(tar, MANIFEST, dump_json(manifest))
            _add_bytes(tar, LOCK_MEMBER, first.lock_bytes)
            if meta is not None:
                _add_bytes(tar, META_MEMBER, meta)
            for name, path, _ in files:
                with open(path, "rb") as src:
                    _add_file(tar, name, src, path.stat().st_size)
        os.chmod(tmp, 0o644)
        digest = _sha256_file(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return PackResult(out, digest, out.stat().st_size, manifest)


def _info(name: str, size: int) -> tarfile.TarInfo:
    # Fixed metadata: the same environment packs to the same bytes on any machine.
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, src: IO[bytes], size: int) -> None:
    tar.addfile(_info(name, size), src)


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenPack:
    """A pack whose structure, manifest and lock were checked (package bytes not yet)."""

    path: Path
    manifest: PackManifest
    lock_bytes: bytes
    members: dict[str, tarfile.TarInfo]


def _refuse(path: Path, message: str, *, rule: str = "invalid-pack",
            fix: str = "make the pack again with 'envctl pack' and copy it unchanged") -> PackError:
    return PackError(message, file=str(path), rule=rule, fix=fix)


def _check_member(path: Path, member: tarfile.TarInfo) -> None:
    """Only the names a pack has, only regular files: nothing can land outside the
    staging folder or point anywhere else (weasel's archive check, stricter)."""
    name = member.name
    known = name in (MANIFEST, LOCK_MEMBER, META_MEMBER) or _PKG_MEMBER.fullmatch(name)
    parts = name.split("/")
    if not known or ".." in parts or "." in parts or name.startswith("/"):
        raise _refuse(path, f"unsafe or unknown member {name!r} in the pack",
                      rule="unsafe-member", fix="do not use this file: it was not made by envctl")
    if not member.isreg():
        raise _refuse(path, f"member {name!r} is not a regular file (a link or device)",
                      rule="unsafe-member", fix="do not use this file: it was not made by envctl")


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, path: Path) -> bytes:
    if member.size > limit:
        raise _refuse(path, f"{member.name} is {member.size} bytes, more than a pack holds")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file (checked)
    return handle.read()


def _safe_filename(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not re.search(r"[/\\\x00]", name)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except FileNotFoundError:
        raise NotFoundError(f"no such pack: {path}", file=str(path), rule="not-found",
                            fix="give the file 'envctl pack NAME:TAG -o FILE' wrote") from None
    except (tarfile.TarError, OSError):
        raise _refuse(path, f"not a pack: {path.name} is not a tar archive (plain, gz, bz2 or "
                      "xz)") from None


def inspect_pack(path: str | os.PathLike[str]) -> OpenPack:
    """Open a pack and check its members, manifest and lock (not yet the package bytes)."""
    path = Path(path)
    try:
        with _open_tar(path) as tar:
            members = _members(tar, path)
            manifest = _manifest(_read_member(tar, members[MANIFEST], MAX_MANIFEST_BYTES, path),
                                 path)
            lock_bytes = _read_member(tar, members[LOCK_MEMBER], MAX_LOCK_BYTES, path)
            meta = (_read_member(tar, members[META_MEMBER], MAX_META_BYTES, path)
                    if META_MEMBER in members else None)
    except (tarfile.TarError, EOFError) as exc:
        raise _refuse(path, f"the pack is damaged: {_first_line(exc)}") from None
    if hashlib.sha256(lock_bytes).hexdigest() != manifest.lock_sha256:
        raise _tampered(path, "the lock does not hash to the manifest's lock_sha256")
    if meta is not None and hashlib.sha256(meta).hexdigest() != manifest.meta_sha256:
        raise _tampered(path, f"{META_MEMBER} does not match the manifest")
    return OpenPack(path, manifest, lock_bytes, members)


def _members(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        _check_member(path, member)
        if member.name in members:
            raise _refuse(path, f"member {member.name!r} appears twice", rule="unsafe-member",
                          fix="do not use this file: it was not made by envctl")
        members[member.name] = member
    for required in (MANIFEST, LOCK_MEMBER):
        if required not in members:
            raise _refuse(path, f"the pack has no {required}")
    return members


def _manifest(raw: bytes, path: Path) -> PackManifest:
    from envctl.models import validate

    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise _refuse(path, f"{MANIFEST} is not JSON: {exc}") from None
    version = data.get("format") if isinstance(data, dict) else None
    if version != PACK_FORMAT:
        # Checked before the model: a newer format may have fields this one does not know.
        raise _refuse(path, f"pack format {version!r} is not supported (this envctl reads "
                      f"format {PACK_FORMAT})", rule="pack-format",
                      fix="unpack it with the envctl version that made it, or upgrade envctl")
    return validate(PackManifest, data, file=f"{path}:{MANIFEST}",
                    fix="make the pack again with 'envctl pack'")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _tampered(path: Path, message: str) -> PackError:
    return _refuse(path, f"{message}; nothing was installed", rule="pack-tampered",
                   fix="the pack was changed after 'envctl pack' wrote it: copy it again from "
                   "its source (compare its sha256 with the one pack printed)")


def _check_expect(expect: str | None, manifest: PackManifest, platform: str, path: Path) -> None:
    """``envctl create REF --from-pack FILE``: the pack must hold what REF names."""
    from envctl.names import EnvId, parse_ref

    if expect is None:
        return
    ids = manifest.platforms[platform]
    parsed = parse_ref(expect.strip())
    if isinstance(parsed, EnvId):
        ok = (parsed.req_id, parsed.full_id) == (ids.req_id, ids.full_id)
    else:
        ok = expect.strip() in (manifest.alias, manifest.asked)
    if not ok:
        raise PackError(
            f"the pack holds {manifest.alias or 'an environment'} {ids.req_id}:{ids.full_id}, "
            f"not {expect}",
            file=str(path), rule="pack-mismatch",
            fix="check you copied the right pack, or drop the name to install what it holds",
        )


def resolved_from_pack(opened: OpenPack, platform: str | None = None) -> ResolvedRef:
    """What the pack holds for ``platform`` (default: this machine's), its lock checked
    against the recorded ids."""
    from envctl.lookup import ResolvedRef
    from envctl.materialize import host_platform
    from envctl.resolve.lockfile import read_lock

    path, manifest = opened.path, opened.manifest
    platform = platform or host_platform()
    if platform not in manifest.platforms:
        raise NotFoundError(
            f"the pack holds {', '.join(sorted(manifest.platforms))}, not {platform}",
            file=str(path), rule="unknown-platform",
            fix=f"use --platform with one of: {', '.join(sorted(manifest.platforms))}, or pack "
            f"again with --platform {platform}",
        )
    ids = manifest.platforms[platform]
    lock = read_lock(opened.lock_bytes, file=f"{path}:{LOCK_MEMBER}")
    if lock.full_id(platform) != ids.full_id:
        raise _tampered(path, f"the lock's packages for {platform} do not give the recorded "
                        "full_id")
    if lock.req_id(platform) not in (None, ids.req_id):
        raise _tampered(path, f"the lock's req_id for {platform} is not the recorded one")
    for package in lock.for_platform(platform):
        if not _safe_filename(package.filename):
            raise _refuse(path, f"the lock names an unsafe file {package.filename!r}",
                          rule="unsafe-member", fix="do not use this file")
    return ResolvedRef(asked=manifest.alias or f"{ids.req_id}:{ids.full_id}",
                       alias=manifest.alias, req_id=ids.req_id, full_id=ids.full_id,
                       platform=platform, lock=lock, lock_sha256=manifest.lock_sha256,
                       lock_bytes=opened.lock_bytes, source="pack")


def unpack_packages(opened: OpenPack, resolved: ResolvedRef, *, home: Path | None = None) -> int:
    """Put every package file of ``resolved`` from the pack into the package cache, each
    verified against the lock's sha256 in a staging folder first; returns how many.

    Either every file is verified and then moved, or none is: a pack with one tampered
    or missing file adds nothing to the cache.
    """
    from envctl.materialize import IntegrityError, package_cache

    path = opened.path
    wanted = {f"pkgs/{p.sha256}/{p.filename}": p for p in resolved.lock.for_platform(
        resolved.platform)}
    missing = sorted(name for name in wanted if name not in opened.members)
    if missing:
        raise _refuse(path, f"the pack lacks {len(missing)} package file(s) for "
                      f"{resolved.platform}, e.g. {missing[0].rsplit('/', 1)[-1]}",
                      rule="pack-incomplete",
                      fix="make the pack again with 'envctl pack' (for this platform)")
    cache = package_cache(home)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
    try:
        staged: list[tuple[Path, Path]] = []
        try:
            with _open_tar(path) as tar:
                for member in tar:  # one streaming pass, whatever the compression
                    package = wanted.get(member.name)
                    if package is None or not member.isreg():
                        continue
                    handle = tar.extractfile(member)
                    assert handle is not None
                    dest = staging / f"{len(staged)}.part"
                    digest = _copy_hashing(handle, dest)
                    if digest != package.sha256:
                        raise IntegrityError(
                            f"{package.filename} in the pack {path.name} does not match the "
                            f"lock: its sha256 is {digest}, the lock records {package.sha256}; "
                            "nothing was installed",
                            file=str(path), rule="sha256-mismatch",
                            fix="the pack was changed after 'envctl pack' wrote it: copy it "
                            "again from its source",
                        )
                    staged.append((dest, cache / member.name.removeprefix("pkgs/")))
        except (tarfile.TarError, EOFError) as exc:
            raise _refuse(path, f"the pack is damaged: {_first_line(exc)}") from None
        if len(staged) != len(wanted):
            raise _refuse(path, "the pack changed while it was read", rule="pack-tampered")
        for src, dest in staged:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        return len(staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_hashing(src: IO[bytes], dest: Path) -> str:
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def create_from_pack(
    pack_file: str | os.PathLike[str],
    *,
    prefix: str | os.PathLike[str] | None = None,
    name: str | None = None,
    platform: str | None = None,
    expect: str | None = None,
    force: bool = False,
    home: Path | None = None,
    reporter: Reporter | None = None,
) -> tuple[ResolvedRef, MaterializeResult]:
    """Install the environment a pack holds, offline (see the module doc)."""
    from envctl import api

    opened = inspect_pack(pack_file)
    resolved = resolved_from_pack(opened, platform)
    _check_expect(expect, opened.manifest, resolved.platform, opened.path)
    target = api.target_prefix(resolved, prefix=prefix, name=name, home=home)
    unpack_packages(opened, resolved, home=home)
    # Every file is in the package cache now, verified: materialize finds them there and
    # never reaches for a store or URL (no store is passed).
    result = api.install(resolved, prefix=target, force=force, reporter=reporter, home=home)
    return resolved, result

