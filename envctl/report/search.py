"""Find environments by name, description, owner, or by a package their locks contain.

TEXT matches case-insensitively as a substring of the name, the description, a tag's
description or an owner. ``--package NAME[=VERSION[=BUILD]]`` (also ``NAME==VERSION``)
keeps only tags whose lock installs that package on some platform; VERSION and BUILD
may use shell wildcards (``openssl=3.0.*``). A version range is written as a conda
match spec (``openssl>=3.0,<3.2``, ``openssl >=3 h*``) and matched with rattler's
version rules. PyPI names match in their normalised form (``Foo_Bar`` = ``foo-bar``).

Package search reads each distinct lock once (tags often share one: at a git revision
the blob id says so without reading it, in a work tree the content's hash), and of a
lock only the entries of packages with that name, not the whole file (~1 ms instead
of ~30 ms for a lock of a few hundred packages). A lock not laid out as envctl writes
them is parsed whole.

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

import hashlib
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from envctl.catalog import Catalog, WorkTreeSource
from envctl.collector import few_collections
from envctl.errors import EnvctlError
from envctl.names import Alias
from envctl.spec import PointerTag

__all__ = ["PackageQuery", "SearchHit", "TagHit", "parse_package_query", "search"]


@dataclass(frozen=True)
class PackageQuery:
    """``name`` plus shell wildcards on ``version``/``build``, or a conda version ``spec``
    (``>=1.2,<2``: rattler's MatchSpec rules)."""

    name: str
    version: str | None = None
    build: str | None = None
    spec: str | None = None

    def __str__(self) -> str:
        if self.spec is not None:
            return " ".join(p for p in (self.name, self.spec, self.build) if p)
        if self.build and not self.version:
            return f"{self.name}=*={self.build}"
        return "=".join(p for p in (self.name, self.version, self.build) if p)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_QUERY_FIX = ("write NAME, NAME=VERSION or NAME=VERSION=BUILD (wildcards allowed: "
              "openssl=3.0.*), or a conda match spec ('numpy>=1.26,<2', 'numpy >=1.26 py*')")
#: What only a conda match spec has: version operators, alternatives, bracket fields.
_SPEC_SYNTAX = re.compile(r"[<>!~|,\[\]]")


def parse_package_query(text: str) -> PackageQuery:
    """``openssl``, ``openssl=3.0.7``, ``openssl==3.0.7``, ``openssl=3.0.*=h*``,
    ``openssl 3.0.7`` (conda's match-spec spacing), or a version range in conda's
    match-spec syntax (``openssl>=3.0,<3.2``, ``openssl >=3 h*``)."""
    if _SPEC_SYNTAX.search(text):
        return _parse_match_spec(text)
    cleaned = text.strip().replace("==", "=")
    cleaned = re.sub(r"\s+", "=", cleaned)
    parts = cleaned.split("=")
    if not parts[0] or len(parts) > 3 or any(not p for p in parts[1:]):
        raise EnvctlError(f"{text!r} is not a package query", rule="usage", fix=_QUERY_FIX)
    return PackageQuery(parts[0], *[*parts[1:], None, None][:2])


def _parse_match_spec(text: str) -> PackageQuery:
    from rattler import MatchSpec  # lazy: only a range query needs it

    try:
        spec = MatchSpec(text.strip())
    except Exception as exc:  # rattler's InvalidMatchSpecError says what is wrong
        raise EnvctlError(f"{text!r} is not a package query: {exc}", rule="usage",
                          fix=_QUERY_FIX) from None
    if spec.name is None:
        raise EnvctlError(f"{text!r} is not a package query: it names no package",
                          rule="usage", fix=_QUERY_FIX)
    unsupported = [field for field in ("channel", "subdir", "namespace", "build_number",
                                       "file_name", "md5", "sha256", "extras", "condition")
                   if getattr(spec, field, None)]
    if unsupported:
        raise EnvctlError(
            f"{text!r}: search matches a package's name, version and build only, not "
            f"{', '.join(unsupported)}", rule="usage", fix=_QUERY_FIX)
    version = str(spec.version) if spec.version else None
    name = spec.name.as_package_name().source
    if version is None or version == "*":
        return PackageQuery(name, None, spec.build)
    return PackageQuery(name, None, spec.build, spec=version)


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


class _Matcher:
    """Whether a locked package is the one a query asks for."""

    def __init__(self, query: PackageQuery) -> None:
        self.query = query
        self.conda_name = query.name.lower()
        self.pypi_name = _norm(query.name)
        self.pypi_bytes = self.pypi_name.encode()
        parts = [re.escape(part.encode()) for part in self.pypi_name.split("-")]
        self._anywhere = re.compile(rb"[-_.]+".join(parts)) if len(parts) > 1 else None
        self._spec: Any = None
        if query.spec is not None:
            from rattler import VersionSpec

            self._spec = VersionSpec(query.spec)

    def mentioned(self, data: bytes) -> bool:
        """Whether ``data`` mentions the name at all, in any case or separator spelling:
        most locks do not, and this costs a fraction of looking at their entries."""
        lowered = data.lower()
        if self._anywhere is None:
            return self.pypi_bytes in lowered
        return self._anywhere.search(lowered) is not None

    def candidate(self, name: bytes) -> bool:
        """Cheap test on a raw name alone: conda or PyPI, it may be the package."""
        folded = name.lower().replace(b"_", b"-").replace(b".", b"-")
        if b"--" in folded:
            folded = re.sub(rb"-+", b"-", folded)
        return folded == self.pypi_bytes

    def matches(self, manager: str, name: str, version: str, build: str | None) -> bool:
        wanted = self.conda_name if manager == "conda" else self.pypi_name
        if (name.lower() if manager == "conda" else _norm(name)) != wanted:
            return False
        query = self.query
        if query.version and not fnmatchcase(version, query.version):
            return False
        if query.build and not fnmatchcase(build or "", query.build):
            return False
        return self._spec is None or self._version_matches(version)

    def _version_matches(self, version: str) -> bool:
        from rattler import Version

        try:
            return bool(self._spec.matches(Version(version)))
        except Exception:  # a version rattler cannot read cannot be in the range
            return False


#: (manager, name, version, build, platform) of a locked package.
_Row = tuple[str, str, str, "str | None", str]

#: envctl writes ``package:`` as a top-level block sequence whose entries start with
#: ``name``; these find the entries without parsing the rest (dependencies, hashes...).
_ENTRY = re.compile(rb"\n- name: ?([^\n]*)")
_ITEM = b"\n- "
_NEXT_TOP_LINE = re.compile(rb"\n(?! )")  # the next line at column 0: the entry's end


def _scan_lock(data: bytes, file: str, match: _Matcher) -> list[_Row] | None:
    """The packages of ``data`` that may match, read from just their own entries: a lock
    holds hundreds of packages and parsing it whole costs ~30 ms. None when the file is
    not laid out as envctl writes locks (then the caller parses it whole)."""
    from envctl import yamlio

    if not match.mentioned(data):
        return []
    start = data.find(b"\npackage:\n- name:")
    if start < 0 or data.count(_ITEM, start) != data.count(b"\n- name:", start):
        return None
    rows: list[_Row] = []
    for found in _ENTRY.finditer(data, start):
        if not match.candidate(found.group(1).strip().strip(b"'\"")):
            continue
        end = _NEXT_TOP_LINE.search(data, found.end())
        block = data[found.start() + 3 : len(data) if end is None else end.start() + 1]
        try:  # the entry's own lines, as a mapping: "name: ...\n  version: ..."
            entry = yamlio.load(b"  " + block, file=file, lines=False)
        except EnvctlError:
            return None
        row = _row(entry)
        if row is None:
            return None
        rows.append(row)
    return rows


def _row(entry: Any) -> _Row | None:
    if not isinstance(entry, dict):
        return None
    manager, name, version, platform = (entry.get(k) for k in ("manager", "name", "version",
                                                                "platform"))
    if manager not in ("conda", "pip") or not (name and version and platform):
        return None
    build = entry.get("build") or None
    if manager == "conda" and build is None:
        build = _build_from_url(str(entry.get("url") or ""), name, version)
    return ("conda" if manager == "conda" else "pypi", name, version, build, platform)


def _build_from_url(url: str, name: str, version: str) -> str | None:
    """``<name>-<version>-<build>.conda``: older conda-lock files carry no ``build``."""
    filename = url.rsplit("/", 1)[-1]
    for suffix in (".conda", ".tar.bz2"):
        if filename.endswith(suffix):
            parts = filename[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and parts[0].lower() == name.lower() and parts[1] == version:
                return parts[2]
    return None


def _package_hits(data: bytes, file: str, match: _Matcher) -> list[PackageHit]:
    rows = _scan_lock(data, file, match)
    if rows is None:
        from envctl.report.locks import read_any_lock

        try:
            lock = read_any_lock(data, file=file)
        except EnvctlError:
            return []  # lint reports broken locks; a search skips them
        rows = [("conda" if p.manager == "conda" else "pypi", p.name, p.version, p.build,
                 p.platform) for p in lock.packages]
    grouped: dict[tuple[str, str, str, str | None], set[str]] = {}
    for manager, name, version, build, platform in rows:
        if match.matches(manager, name, version, build):
            grouped.setdefault((manager, name, version, build), set()).add(platform)
    return [PackageHit(m, n, v, b, sorted(platforms))
            for (m, n, v, b), platforms in sorted(grouped.items(), key=lambda kv: (
                kv[0][0], kv[0][1], kv[0][2], kv[0][3] or ""))]


class _LockHits:
    """Package hits per lock, each distinct lock read once: tags often share a lock's
    bytes (a rebuilt pointer target, environments locked alike). At a git revision the
    blob ids ``git ls-tree`` lists are the key, so a shared blob is not even read again;
    in a work tree, the blob ids of git's index for files unchanged since staged, and the
    content's hash for the others."""

    def __init__(self, catalog: Catalog, query: PackageQuery) -> None:
        self.catalog = catalog
        self.match = _Matcher(query)
        self.blob_ids = _blob_ids(catalog)
        self.at_revision = not isinstance(catalog.source, WorkTreeSource)
        self.by_key: dict[str, list[PackageHit]] = {}

    def hits(self, alias: Alias) -> list[PackageHit]:
        path = str(alias.lock_path)
        data: bytes | None = None
        key = self.blob_ids.get(path) if self.blob_ids is not None else None
        if key is None:
            if self.at_revision:
                return []  # no such file at that revision
            data = self.catalog.lock_bytes(alias)
            if data is None:
                return []
            key = hashlib.sha1(data).hexdigest()
        if key not in self.by_key:
            if data is None:
                data = self.catalog.lock_bytes(alias)
                if data is None:  # gone from the work tree since git listed it
                    return []
            self.by_key[key] = _package_hits(data, path, self.match)
        return self.by_key[key]


def _blob_ids(catalog: Catalog) -> dict[str, str] | None:
    """Path (catalog-relative) -> blob id of every file under ``locks/`` at a revision, or
    of every file of a work tree that git says is unchanged since it was staged (the others
    are hashed). None for a work tree outside git."""
    from envctl.catalog import GitSource
    from envctl.git import run_git

    source = catalog.source
    if isinstance(source, WorkTreeSource):
        return _work_tree_blob_ids(source)
    if not isinstance(source, GitSource):
        return None
    out = run_git(source.repo, ["ls-tree", "-r", "-z", "--full-tree", source.rev, "--",
                                source.subdir + "locks/"], timeout=300).stdout
    found = {}
    cut = len(source.subdir)
    for record in out.split(b"\0"):
        info, _, path = record.partition(b"\t")
        parts = info.split()
        if len(parts) == 3 and parts[1] == b"blob":
            found[path.decode("utf-8", "surrogateescape")[cut:]] = parts[2].decode()
    return found


def _work_tree_blob_ids(source: WorkTreeSource) -> dict[str, str] | None:
    """Reading and hashing every lock of a large work tree took most of a search; git's
    index holds their blob ids already. Left out, for the caller to hash: files changed
    since staged (by stat, as ``git status`` decides), untracked ones, and those git does
    not compare with the work tree at all (assume-unchanged, skip-worktree, outside a
    sparse checkout). Without git, every file is hashed."""
    from envctl.git import run_git

    def paths(args: list[str]) -> list[str]:
        try:
            proc = run_git(source.root, args, check=False, timeout=300)
        except EnvctlError:  # git missing or too slow
            raise LookupError from None
        if proc.returncode != 0:
            raise LookupError  # not a git work tree
        return [p.decode("utf-8", "surrogateescape") for p in proc.stdout.split(b"\0") if p]

    try:
        staged = paths(["ls-files", "--stage", "-v", "-z", "--", "locks/"])
        changed = set(paths(["diff-files", "--relative", "--name-only", "-z", "--", "locks/"]))
    except LookupError:
        return None
    found = {}
    for record in staged:
        info, _, path = record.partition("\t")
        parts = info.split()
        # "H": an ordinary cached file, stage 0 (no merge conflict).
        if (len(parts) == 4 and parts[0] == "H" and parts[1] in ("100644", "100755")
                and parts[3] == "0" and path not in changed):
            found[path] = parts[2]
    return found


def search(catalog: Catalog, text: str | None = None,
           package: PackageQuery | None = None) -> list[SearchHit]:
    """Environments matching ``text`` (any field) and, when given, containing ``package``."""
    with few_collections():
        return _search(catalog, text, package)


def _search(catalog: Catalog, text: str | None,
            package: PackageQuery | None) -> list[SearchHit]:
    locks = _LockHits(catalog, package) if package else None
    hits = []
    names = catalog.env_names()
    catalog.preload_envs(names)
    for name in names:
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
            packages = locks.hits(Alias(name, tag)) if locks else []
            if package and not packages:
                continue
            tags.append(TagHit(tag, catalog.is_mutable(tag), pointers.get(tag, []), packages))
        if package:
            if not tags:
                continue
            matched.append("package")
        hits.append(SearchHit(str(name), env.description, list(env.owners), matched, tags))
    return hits
