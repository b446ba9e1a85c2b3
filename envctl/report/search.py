"""Find environments by name, description, owner, or by a package their locks contain.

TEXT matches case-insensitively as a substring of the name, the description, a tag's
description or an owner. ``--package NAME[=VERSION[=BUILD]]`` (also ``NAME==VERSION``)
keeps only tags whose lock installs that package on some platform; VERSION and BUILD
may use shell wildcards (``openssl=3.0.*``). PyPI names match in their normalised form
(``Foo_Bar`` = ``foo-bar``). Package search reads the locks with the fast reader, one
file per tag, so it costs one pass over ``locks/``.

JSON shape (a list, sorted by name)::

    [{"name": "ranking/base", "description": "...", "owners": ["ranking"],
      "matched": ["name", "description", "owner", "tag-description", "package"],
      "tags": [{"tag": "v2", "mutable": false, "aliases": ["stable"],
                "packages": [{"manager": "conda" | "pypi", "name": "openssl",
                              "version": "3.0.7", "build": "h0b41bf4_1",
                              "platforms": ["linux-64", "osx-arm64"]}]}]}]

Without ``--package``, ``tags`` lists every tag with empty ``packages``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from envctl.catalog import Catalog
from envctl.errors import EnvctlError
from envctl.names import Alias
from envctl.spec import PointerTag

__all__ = ["PackageQuery", "SearchHit", "TagHit", "parse_package_query", "search"]


@dataclass(frozen=True)
class PackageQuery:
    name: str
    version: str | None = None
    build: str | None = None

    def __str__(self) -> str:
        return "=".join(p for p in (self.name, self.version, self.build) if p)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_package_query(text: str) -> PackageQuery:
    """``openssl``, ``openssl=3.0.7``, ``openssl==3.0.7``, ``openssl=3.0.*=h*``,
    ``openssl 3.0.7`` (conda's match-spec spacing)."""
    cleaned = text.strip().replace("==", "=")
    cleaned = re.sub(r"\s+", "=", cleaned)
    parts = cleaned.split("=")
    if not parts[0] or len(parts) > 3 or any(not p for p in parts[1:]):
        raise EnvctlError(f"{text!r} is not a package query", rule="usage",
                          fix="write NAME, NAME=VERSION or NAME=VERSION=BUILD "
                              "(wildcards allowed: openssl=3.0.*)")
    return PackageQuery(parts[0], *[*parts[1:], None, None][:2])


@dataclass(frozen=True)
class PackageHit:
    manager: str
    name: str
    version: str
    build: str | None
    platforms: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"manager": self.manager, "name": self.name, "version": self.version,
                "build": self.build, "platforms": list(self.platforms)}


@dataclass(frozen=True)
class TagHit:
    tag: str
    mutable: bool
    aliases: list[str] = field(default_factory=list)
    packages: list[PackageHit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "mutable": self.mutable, "aliases": list(self.aliases),
                "packages": [p.to_dict() for p in self.packages]}


@dataclass(frozen=True)
class SearchHit:
    name: str
    description: str
    owners: list[str]
    matched: list[str]
    tags: list[TagHit]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "owners": list(self.owners), "matched": list(self.matched),
                "tags": [t.to_dict() for t in self.tags]}


def _text_matches(text: str, name: str, description: str, owners: list[str],
                  tag_descriptions: list[str]) -> list[str]:
    needle = text.lower()
    found = []
    if needle in name.lower():
        found.append("name")
    if needle in description.lower():
        found.append("description")
    if any(needle in o.lower() for o in owners):
        found.append("owner")
    if any(needle in d.lower() for d in tag_descriptions):
        found.append("tag-description")
    return found


def _package_hits(catalog: Catalog, alias: Alias, query: PackageQuery) -> list[PackageHit]:
    from envctl.report.locks import read_any_lock

    data = catalog.lock_bytes(alias)
    if data is None:
        return []
    if _norm(query.name).encode() not in _norm(data.decode("utf-8", "replace")).encode():
        return []  # cheap pre-filter: most locks do not mention the package at all
    try:
        lock = read_any_lock(data, file=str(alias.lock_path))
    except EnvctlError:
        return []  # lint reports broken locks; a search skips them
    grouped: dict[tuple[str, str, str, str | None], list[str]] = {}
    wanted = _norm(query.name)
    for p in lock.packages:
        manager = "conda" if p.manager == "conda" else "pypi"
        name = p.name.lower() if manager == "conda" else _norm(p.name)
        if name != (query.name.lower() if manager == "conda" else wanted):
            continue
        if query.version and not fnmatchcase(p.version, query.version):
            continue
        if query.build and not fnmatchcase(p.build or "", query.build):
            continue
        grouped.setdefault((manager, p.name, p.version, p.build), []).append(p.platform)
    return [PackageHit(m, n, v, b, sorted(platforms))
            for (m, n, v, b), platforms in sorted(grouped.items(), key=lambda kv: (
                kv[0][0], kv[0][1], kv[0][2], kv[0][3] or ""))]


def search(catalog: Catalog, text: str | None = None,
           package: PackageQuery | None = None) -> list[SearchHit]:
    """Environments matching ``text`` (any field) and, when given, containing ``package``."""
    hits = []
    for name in catalog.env_names():
        try:
            env = catalog.env(name)
        except EnvctlError:
            continue  # lint reports unreadable files
        tag_descriptions = [s.description for s in env.tags.values() if s.description]
        matched: list[str] = []
        if text:
            matched = _text_matches(text, str(name), env.description, list(env.owners),
                                    tag_descriptions)
            if not matched:
                continue
        pointers: dict[str, list[str]] = {}
        for tag, spec in env.tags.items():
            if isinstance(spec, PointerTag):
                pointers.setdefault(spec.points_to, []).append(tag)
        tags = []
        for tag, spec in env.tags.items():
            if isinstance(spec, PointerTag):
                continue  # shown as an alias of the tag it points to
            packages = _package_hits(catalog, Alias(name, tag), package) if package else []
            if package and not packages:
                continue
            tags.append(TagHit(tag, catalog.is_mutable(tag), pointers.get(tag, []), packages))
        if package:
            if not tags:
                continue
            matched.append("package")
        hits.append(SearchHit(str(name), env.description, list(env.owners), matched, tags))
    return hits
