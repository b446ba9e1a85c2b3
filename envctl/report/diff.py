"""Package-level differences between two locks: what a reviewer needs instead of a lockfile diff.

Compared per platform, conda and PyPI separately (a conda ``six`` and a PyPI ``six``
are different things). Each package is one of:

- ``added`` / ``removed``;
- ``upgraded`` / ``downgraded``: the version moved, ordered the way the installer
  orders it (conda: rattler's version order, so ``1.10 > 1.9`` and ``1.0rc1 < 1.0``;
  PyPI: PEP 440 through ``packaging``);
- ``rebuilt``: same version, another build string (``cpu_0`` -> ``cuda_1``);
- ``changed``: same version and build but another file (channel, URL, git commit or
  hash), or versions that cannot be ordered.

JSON shape of :meth:`EnvDiff.to_dict` (keys always present, in this order; new keys
may be added at the end)::

    {"old": "ranking/base:v1", "new": "ranking/base:v2",
     "changed": true, "summary": "ranking/base:v1 → ranking/base:v2: conda 1 added, ...",
     "counts": {"conda": {"added": 1, ...}, "pypi": {...}},   # distinct packages
     "platforms": [{
        "platform": "linux-64",            # "linux-64 → osx-arm64" when two ids are compared
        "status": "same" | "changed" | "added" | "removed",
        "old_full_id": str | null, "new_full_id": str | null,
        "old_packages": int, "new_packages": int,
        "changes": [{"manager": "conda" | "pypi", "name": "tinynum",
                     "change": "added" | "removed" | "upgraded" | "downgraded" | "rebuilt"
                               | "changed",
                     "old_version": str | null, "new_version": str | null,
                     "old_build": str | null, "new_build": str | null,
                     "detail": str | null}]}]}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from envctl.resolve.lockfile import LockData, LockedPackage

__all__ = [
    "CHANGE_KINDS",
    "EnvDiff",
    "PackageChange",
    "PlatformDiff",
    "compare_versions",
    "diff_locks",
    "diff_packages",
]

Change = Literal["added", "removed", "upgraded", "downgraded", "rebuilt", "changed"]
#: The order changes are counted and listed in.
CHANGE_KINDS: tuple[Change, ...] = (
    "added", "removed", "upgraded", "downgraded", "rebuilt", "changed",
)
MANAGERS = ("conda", "pypi")


@dataclass(frozen=True)
class PackageChange:
    manager: Literal["conda", "pypi"]
    name: str
    change: Change
    old_version: str | None = None
    new_version: str | None = None
    old_build: str | None = None
    new_build: str | None = None
    detail: str | None = None

    @property
    def old(self) -> str | None:
        return _label(self.old_version, self.old_build)

    @property
    def new(self) -> str | None:
        return _label(self.new_version, self.new_build)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manager": self.manager,
            "name": self.name,
            "change": self.change,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "old_build": self.old_build,
            "new_build": self.new_build,
            "detail": self.detail,
        }


def _label(version: str | None, build: str | None) -> str | None:
    if version is None:
        return None
    return f"{version} {build}" if build else version


@dataclass(frozen=True)
class PlatformDiff:
    platform: str
    status: Literal["same", "changed", "added", "removed"]
    changes: list[PackageChange] = field(default_factory=list)
    old_full_id: str | None = None
    new_full_id: str | None = None
    old_packages: int = 0
    new_packages: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "status": self.status,
            "old_full_id": self.old_full_id,
            "new_full_id": self.new_full_id,
            "old_packages": self.old_packages,
            "new_packages": self.new_packages,
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class EnvDiff:
    old: str
    new: str
    platforms: list[PlatformDiff] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(p.status != "same" for p in self.platforms)

    @property
    def changes(self) -> list[tuple[str, PackageChange]]:
        """Every (platform, change), platforms in order."""
        return [(p.platform, c) for p in self.platforms for c in p.changes]

    def counts(self) -> dict[str, dict[str, int]]:
        """Distinct packages per manager and kind of change (a package upgraded on two
        platforms counts once)."""
        seen: dict[str, dict[str, set[str]]] = {m: {} for m in MANAGERS}
        for _platform, change in self.changes:
            seen[change.manager].setdefault(change.change, set()).add(change.name)
        return {
            manager: {kind: len(by_kind[kind]) for kind in CHANGE_KINDS if kind in by_kind}
            for manager, by_kind in seen.items()
        }

    @property
    def summary(self) -> str:
        """One line: ``old → new: conda 2 upgraded, 1 added; pypi 1 upgraded``, with the
        platforms named when they differ."""
        return f"{self.old} → {self.new}: {self.summary_body}"

    @property
    def summary_body(self) -> str:
        """``conda 1 added, 2 upgraded, 1 rebuilt (linux-64 only); pypi 1 upgraded``: distinct
        packages per manager and kind; a change missing on some compared platform names the
        platforms it happens on."""
        if not self.platforms:
            return "no platform in common"
        compared = [p.platform for p in self.platforms if p.status in ("same", "changed")]
        where: dict[tuple[str, str, str], list[str]] = {}
        for p in self.platforms:
            if p.status in ("same", "changed"):
                for c in p.changes:
                    where.setdefault((c.manager, c.change, c.name), []).append(p.platform)
        groups: dict[tuple[str, str, tuple[str, ...]], int] = {}
        for (manager, change, _name), platforms in where.items():
            scope = () if platforms == compared else tuple(platforms)
            groups[(manager, change, scope)] = groups.get((manager, change, scope), 0) + 1
        order = {k: i for i, k in enumerate(CHANGE_KINDS)}
        parts: list[str] = []
        for manager in MANAGERS:
            words = [
                f"{count} {change}" + (f" ({', '.join(scope)} only)" if scope else "")
                for (m, change, scope), count in sorted(
                    groups.items(), key=lambda kv: (order[kv[0][1]], kv[0][2]))
                if m == manager
            ]
            if words:
                parts.append(f"{manager} " + ", ".join(words))
        for p in self.platforms:
            if p.status == "added":
                parts.append(f"{p.platform} added ({p.new_packages} packages)")
            elif p.status == "removed":
                parts.append(f"{p.platform} removed ({p.old_packages} packages)")
        return "; ".join(parts) if parts else "no package changes"

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "changed": self.changed,
            "summary": self.summary,
            "counts": self.counts(),
            "platforms": [p.to_dict() for p in self.platforms],
        }


# -- versions ---------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def compare_versions(manager: str, old: str, new: str) -> int | None:
    """-1, 0 or 1 in the installer's own version order; None when either does not parse."""
    if old == new:
        return 0
    try:
        if manager == "conda":
            from rattler import Version  # lazy: rattler's import is not free

            a: Any = Version(old)
            b: Any = Version(new)
        else:
            from packaging.version import Version as PyVersion

            a, b = PyVersion(old), PyVersion(new)
    except Exception:  # each library raises its own parse error; any means "cannot order"
        return None
    return (a > b) - (a < b)


# -- diffing ----------------------------------------------------------------------------------


def _pypi_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _by_name(packages: Iterable[LockedPackage]) -> dict[tuple[str, str], LockedPackage]:
    out = {}
    for p in packages:
        manager = "conda" if p.manager == "conda" else "pypi"
        out[(manager, p.name if manager == "conda" else _pypi_key(p.name))] = p
    return out


def _git_ref(url: str) -> str | None:
    if url.startswith("git+") and "@" in url.rsplit("/", 1)[-1]:
        return url.rsplit("@", 1)[-1][:12]
    return None


def _file_detail(old: LockedPackage, new: LockedPackage) -> str | None:
    """Why two entries with the same version and build differ, or None when they do not."""
    old_ref, new_ref = _git_ref(old.url), _git_ref(new.url)
    if old_ref and new_ref and old_ref != new_ref:
        return f"git {old_ref} → {new_ref}"
    if old.url != new.url:
        if old.filename != new.filename:
            return f"file {old.filename} → {new.filename}"
        if old.subdir != new.subdir:
            return f"subdir {old.subdir} → {new.subdir}"
        return "url changed"
    if old.sha256 and new.sha256 and old.sha256 != new.sha256:
        return "sha256 changed"
    if old.md5 and new.md5 and old.md5 != new.md5:
        return "md5 changed"
    return None


def diff_packages(
    old: Iterable[LockedPackage], new: Iterable[LockedPackage]
) -> list[PackageChange]:
    """Changes from ``old`` to ``new`` (one platform), sorted conda first, then by name."""
    before, after = _by_name(old), _by_name(new)
    changes: list[PackageChange] = []
    for key in sorted(before.keys() | after.keys()):
        manager = key[0]
        a, b = before.get(key), after.get(key)
        if a is None and b is not None:
            changes.append(PackageChange(manager, b.name, "added",  # type: ignore[arg-type]
                                         new_version=b.version, new_build=b.build))
            continue
        if b is None and a is not None:
            changes.append(PackageChange(manager, a.name, "removed",  # type: ignore[arg-type]
                                         old_version=a.version, old_build=a.build))
            continue
        assert a is not None and b is not None
        kind: Change | None = None
        detail = None
        order = compare_versions(manager, a.version, b.version)
        if order is None:
            kind = "changed"
            detail = "versions cannot be ordered"
        elif order < 0:
            kind = "upgraded"
        elif order > 0:
            kind = "downgraded"
        elif (a.build or "") != (b.build or ""):
            kind = "rebuilt"
        else:
            detail = _file_detail(a, b)
            kind = "changed" if detail else None
        if kind is not None:
            changes.append(PackageChange(
                manager, b.name, kind, a.version, b.version, a.build, b.build,  # type: ignore[arg-type]
                detail,
            ))
    return changes


def _full_id(lock: LockData, platform: str) -> str | None:
    """The recorded full_id, else computed when every package has a sha256."""
    recorded = lock.recorded_full_id(platform)
    if recorded:
        return recorded
    packages = lock.for_platform(platform)
    if packages and all(p.sha256 and len(p.sha256) == 64 for p in packages):
        return lock.full_id(platform)
    return None


def diff_locks(
    old: LockData,
    new: LockData,
    *,
    old_label: str,
    new_label: str,
    old_platforms: Sequence[str] | None = None,
    new_platforms: Sequence[str] | None = None,
) -> EnvDiff:
    """Compare two locks platform by platform.

    ``*_platforms`` restrict a side (an id names one platform). When both sides are
    restricted to one platform each and those differ (two ids of different platforms),
    the two are compared with each other.
    """
    a_platforms = list(old_platforms) if old_platforms is not None else _platforms(old)
    b_platforms = list(new_platforms) if new_platforms is not None else _platforms(new)
    pairs: list[tuple[str | None, str | None]]
    if (old_platforms is not None and new_platforms is not None and len(a_platforms) == 1
            and len(b_platforms) == 1 and a_platforms != b_platforms):
        pairs = [(a_platforms[0], b_platforms[0])]
    else:
        ordered = sorted(set(a_platforms) | set(b_platforms))
        pairs = [(p if p in a_platforms else None, p if p in b_platforms else None)
                 for p in ordered]
    result = []
    for a, b in pairs:
        label = a if a == b or b is None else (b if a is None else f"{a} → {b}")
        assert label is not None
        before = old.for_platform(a) if a else ()
        after = new.for_platform(b) if b else ()
        changes = diff_packages(before, after)
        status: Literal["same", "changed", "added", "removed"]
        if a is None:
            status = "added"
        elif b is None:
            status = "removed"
        else:
            status = "changed" if changes else "same"
        result.append(PlatformDiff(
            platform=label,
            status=status,
            changes=changes,
            old_full_id=_full_id(old, a) if a else None,
            new_full_id=_full_id(new, b) if b else None,
            old_packages=len(before),
            new_packages=len(after),
        ))
    return EnvDiff(old_label, new_label, result)


def _platforms(lock: LockData) -> list[str]:
    return sorted(set(lock.platforms) | {p.platform for p in lock.packages})
