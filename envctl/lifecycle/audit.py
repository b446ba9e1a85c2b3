"""``envctl audit NAME:TAG --db FILE``: which locked packages an advisory affects.

Offline: the advisories come from an OSV file (see :mod:`envctl.lifecycle.osv`), the
packages from the tag's committed lock (every platform, or ``--platform``). A package
locked on several platforms is reported once, with its platforms. The validate
workflow can run it on pull requests: the command exits 1 when anything is affected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl.errors import NotFoundError
from envctl.lifecycle.osv import (
    Advisory,
    Severity,
    comparator,
    in_range,
    load_db,
    severity,
)
from envctl.names import parse_alias

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.resolve.lockfile import LockedPackage


@dataclass(frozen=True)
class Finding:
    advisory: str
    aliases: tuple[str, ...]
    summary: str
    severity: Severity
    manager: str  # conda | pip
    name: str
    version: str
    platforms: tuple[str, ...]
    fixed: tuple[str, ...]  # versions the advisory says fix it

    def to_dict(self) -> dict[str, Any]:
        return {
            "advisory": self.advisory,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "severity": self.severity.level,
            "score": self.severity.score,
            "vector": self.severity.vector,
            "package": self.name,
            "version": self.version,
            "ecosystem": "PyPI" if self.manager == "pip" else "conda",
            "platforms": list(self.platforms),
            "fixed": list(self.fixed),
        }


@dataclass
class AuditReport:
    alias: str
    db: str
    advisories: int
    packages: int
    findings: list[Finding] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def affected(self) -> bool:
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "db": self.db, "advisories": self.advisories,
                "packages": self.packages, "affected": self.affected,
                "findings": [f.to_dict() for f in self.findings], "ignored": self.ignored}


# -- matching ----------------------------------------------------------------------------


def _norm(manager: str, name: str) -> str:
    if manager == "pip":
        from packaging.utils import canonicalize_name

        return str(canonicalize_name(name))
    return name.lower()


def _channel_name(package: LockedPackage) -> str:
    from envctl.lifecycle.pkgmeta import channel_of

    return channel_of(package).rstrip("/").rsplit("/", 1)[-1]


def names_package(affected: dict[str, Any], package: LockedPackage) -> bool:
    """Whether an ``affected[]`` entry is about ``package`` (ecosystem or purl, and name)."""
    info = affected.get("package") or {}
    purl = str(info.get("purl") or "")
    if purl:
        from packageurl import PackageURL

        try:
            parsed = PackageURL.from_string(purl)
        except ValueError:
            return False
        kind = {"pypi": "pip", "conda": "conda"}.get(parsed.type)
        return kind == package.manager and _norm(kind, parsed.name) == _norm(
            package.manager, package.name)
    ecosystem = str(info.get("ecosystem") or "")
    lowered = ecosystem.lower()
    if package.manager == "pip":
        matches = lowered == "pypi"
    else:
        channel = lowered.partition(":")[2]
        matches = lowered in ("conda", "conda-forge") or (
            lowered.startswith("conda:") and channel == _channel_name(package).lower())
    return matches and _norm(package.manager, str(info.get("name") or "")) == _norm(
        package.manager, package.name)


def affects(affected: dict[str, Any], package: LockedPackage) -> bool:
    """Whether ``package``'s version is listed or inside one of the entry's ranges."""
    listed = [str(v) for v in affected.get("versions") or []]
    if package.version in listed:
        return True
    if package.manager == "pip" and listed:
        key = comparator("pip", "ECOSYSTEM")
        assert key is not None
        mine = key(package.version)
        if mine is not None and any(key(v) == mine for v in listed):
            return True  # 2.0 and 2.0.0 are one PEP 440 version
    for entry in affected.get("ranges") or []:
        key = comparator(package.manager, str(entry.get("type", "")))
        if key is not None and in_range(package.version, list(entry.get("events") or []), key):
            return True
    return False


def _fixed(affected: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(e["fixed"]) for r in affected.get("ranges") or []
                 for e in r.get("events") or [] if "fixed" in e)


def match(advisories: Sequence[Advisory], packages: Sequence[LockedPackage],
          *, ignore: Sequence[str] = ()) -> tuple[list[Finding], list[str]]:
    """Findings (one per advisory and package version, platforms merged) and the ids
    of advisories ``ignore`` suppressed."""
    skip = {i.upper() for i in ignore}
    found: dict[tuple[str, str, str, str], Finding] = {}
    ignored: set[str] = set()
    for advisory in advisories:
        if advisory.withdrawn:
            continue
        for affected in advisory.affected():
            for package in packages:
                if not (names_package(affected, package) and affects(affected, package)):
                    continue
                if skip & {advisory.id.upper(), *(a.upper() for a in advisory.aliases)}:
                    ignored.add(advisory.id)
                    continue
                key = (advisory.id, package.manager, _norm(package.manager, package.name),
                       package.version)
                previous = found.get(key)
                platforms = {package.platform, *(previous.platforms if previous else ())}
                found[key] = Finding(
                    advisory=advisory.id, aliases=advisory.aliases, summary=advisory.summary,
                    severity=severity(advisory, affected), manager=package.manager,
                    name=package.name, version=package.version,
                    platforms=tuple(sorted(platforms)), fixed=_fixed(affected))
    findings = sorted(found.values(),
                      key=lambda f: (f.severity.rank, f.name.lower(), f.version, f.advisory))
    return findings, sorted(ignored)


def audit(
    catalog: Catalog,
    ref: str,
    db: str | Path,
    *,
    platform: str | None = None,
    ignore: Sequence[str] = (),
) -> AuditReport:
    """Match the locked packages of ``ref`` against the OSV database ``db``."""
    from envctl.resolve.lockfile import read_lock

    alias = catalog.resolve(parse_alias(ref))
    data = catalog.lock_bytes(alias)
    if data is None:
        raise NotFoundError(f"{alias} is not locked yet: there is nothing to audit",
                            file=str(alias.lock_path), tag=alias.tag, rule="pending",
                            fix="wait for CI to lock it, or name a locked tag")
    lock = read_lock(data, file=str(alias.lock_path))
    if platform is not None and platform not in lock.platforms:
        raise NotFoundError(f"{alias} is not resolved for {platform}", tag=alias.tag,
                            rule="unknown-platform",
                            fix=f"use --platform with one of: {', '.join(lock.platforms)}")
    packages = lock.for_platform(platform) if platform else lock.packages
    advisories = load_db(db)
    findings, ignored = match(advisories, packages, ignore=ignore)
    distinct = {(p.manager, _norm(p.manager, p.name), p.version) for p in packages}
    return AuditReport(str(alias), str(db), len(advisories), len(distinct), findings, ignored)
