"""Read any conda-lock v1 file for a report, including ones other tools wrote.

envctl's own reader (:func:`envctl.resolve.lockfile.read_lock`) is strict on purpose:
it guards the hook and CI. A reviewer comparing against a lockfile made by conda-lock,
pixi's exporter or by hand needs a reader that takes what those tools really write:

- entries repeated once per category (``main``, ``dev``...): merged, as conda-lock does;
- conda entries with only an md5 (no sha256), or a hash missing altogether;
- pip entries from git (``git+https://...@<commit>``, "sha256" holding the commit),
  directories or plain URLs, with an empty ``hash``;
- metadata fields envctl does not write (``time_metadata``, ``git_metadata``...);
- conda entries without ``build`` (older conda-lock): taken from the file name.

:func:`read_any_lock` tries the strict reader first (it is the one CI trusts, so when it
accepts a file both agree) and only falls back to the lenient parse when it refuses.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from envctl.errors import EnvctlError, LockfileError
from envctl.resolve.lockfile import LockData, LockedPackage, read_lock

__all__ = ["read_any_lock", "read_lock_path"]


def read_lock_path(path: Path) -> LockData:
    """A lockfile on disk, with a clear error when it is missing or unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LockfileError(
            f"no such lockfile: {path}",
            file=str(path),
            rule="not-found",
            fix="give the path of a conda-lock file, or an environment as NAME:TAG",
        ) from None
    except OSError as exc:
        raise LockfileError(f"cannot read {path}: {exc.strerror}", file=str(path)) from None
    return read_any_lock(data, file=str(path))


def read_any_lock(data: bytes | str, *, file: str = "<lockfile>") -> LockData:
    """A conda-lock v1 file as :class:`LockData`, however it was written. Raises
    :class:`LockfileError` only when the file is not a conda-lock v1 lockfile at all."""
    try:
        lock = read_lock(data, file=file)
    except LockfileError:
        lock = _lenient(data, file)
    if any(p.manager == "conda" and not p.build for p in lock.packages):
        lock = replace(lock, packages=tuple(_with_build(p) for p in lock.packages))
    return lock


_CONDA_SUFFIXES = (".conda", ".tar.bz2")


def _with_build(package: LockedPackage) -> LockedPackage:
    """conda-lock only recently writes ``build``; older files (and other tools) leave it
    out. A conda file is always named ``<name>-<version>-<build>.<ext>``, so a build change
    stays visible in a diff."""
    if package.manager != "conda" or package.build:
        return package
    filename = package.filename
    for suffix in _CONDA_SUFFIXES:
        if filename.endswith(suffix):
            parts = filename[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and parts[0].lower() == package.name.lower() \
                    and parts[1] == package.version:
                return replace(package, build=parts[2])
    return package


def _fail(file: str, message: str) -> LockfileError:
    return LockfileError(
        message, file=file, fix="give a conda-lock v1 file (conda-lock.yml), or NAME:TAG"
    )


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _lenient(data: bytes | str, file: str) -> LockData:
    from envctl import yamlio

    try:
        doc = yamlio.load(data, file=file, max_bytes=yamlio.MAX_LOCK_BYTES, lines=False)
    except EnvctlError as exc:
        raise _fail(file, f"not a YAML lockfile: {exc.message}") from None
    if not isinstance(doc, dict) or str(doc.get("version")) != "1":
        version = doc.get("version") if isinstance(doc, dict) else None
        raise _fail(
            file,
            "not a conda-lock lockfile (no version)"
            if version is None
            else f"conda-lock lockfile version {version!r} is not supported (v1 only)",
        )
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    raw_packages = doc.get("package")
    if not isinstance(raw_packages, list):
        raise _fail(file, "package must be a list")

    merged: dict[tuple[str, str, str], LockedPackage] = {}
    for index, raw in enumerate(raw_packages):
        if not isinstance(raw, dict):
            raise _fail(file, f"package[{index}] must be a mapping")
        manager, name = raw.get("manager"), _str(raw.get("name"))
        platform = _str(raw.get("platform"))
        if manager not in ("conda", "pip") or not name or not platform:
            raise _fail(file, f"package[{index}] needs a name, a platform and manager conda|pip")
        hashes = raw.get("hash") if isinstance(raw.get("hash"), dict) else {}
        source = raw.get("source") if isinstance(raw.get("source"), dict) else {}
        deps = raw.get("dependencies") if isinstance(raw.get("dependencies"), dict) else {}
        category = _str(raw.get("category")) or "main"
        package = LockedPackage(
            manager=manager,
            name=name,
            version=_str(raw.get("version")) or "",
            platform=platform,
            url=_str(raw.get("url")) or _str(source.get("url")) or "",
            sha256=_str(hashes.get("sha256")),
            md5=_str(hashes.get("md5")),
            build=_str(raw.get("build")),
            dependencies=tuple(sorted((str(k), str(v or "")) for k, v in deps.items())),
            categories=(category,),
        )
        previous = merged.get(package.key)
        if previous is not None:
            package = replace(
                previous, categories=tuple(sorted({*previous.categories, category}))
            )
        merged[package.key] = package

    channels = []
    for entry in meta.get("channels") or []:
        url = entry.get("url") if isinstance(entry, dict) else entry
        if url:
            channels.append(str(url))
    platforms = meta.get("platforms")
    if not isinstance(platforms, list) or not platforms:
        # Some writers leave it out; the packages say which platforms the file covers.
        platforms = sorted({p.platform for p in merged.values()})

    def str_map(value: object) -> dict[str, str]:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    return LockData(
        platforms=tuple(str(p) for p in platforms),
        channels=tuple(channels),
        packages=tuple(merged.values()),
        content_hash=str_map(meta.get("content_hash")),
        custom_metadata=str_map(meta.get("custom_metadata")),
        sources=tuple(str(s) for s in meta.get("sources") or []),
    )
