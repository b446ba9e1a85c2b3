"""What ``envctl list`` and ``envctl show`` report, as plain data (the CLI renders it).

``list_environments`` reads environment files only: a tag's state comes from
which lock/meta files exist (one directory listing), never from parsing them.

``show_environment`` follows Metaflow's ``environment show``: the alias asked and
the concrete tag it means, every alias of that tag, type, state, platforms, the
user-requested packages and sources, the base, and per platform the id
``req_id:full_id`` (from meta once CI has locked the tag; computed and
*provisional* before) and, when a lock exists, the installed packages.

JSON shapes (``--json``; keys are always present, in this order; new keys may be
added at the end, existing ones never change meaning):

``envctl list --json``: a list of::

    {"name": "ranking/base", "description": "...", "owners": ["ranking"],
     "tags": [{"tag": "v1", "mutable": false, "state": "frozen", "points_to": null},
              {"tag": "stable", "mutable": true, "state": "frozen", "points_to": "v1"}]}

  ``state`` is pending | frozen | retired | rolling; a pointer carries its target's
  state, or "invalid" when the target is missing or not concrete. An environment
  whose file cannot be read has empty fields and an extra ``"error"`` string.

``envctl show --json``::

    {"asked": "ranking/base:stable", "alias": "ranking/base:v1",
     "name": "ranking/base", "tag": "v1",
     "resolved_via": "pointer" | "newest-frozen" | null,
     "mutable": false, "state": "frozen", "type": "conda-only" | "pypi-only" | "mixed",
     "description": "...", "tag_description": null, "owners": [...],
     "aliases": [{"alias": "ranking/base:stable", "mutable": true, "implicit": false}],
     "platforms": [...], "channels": [...],
     "sources": ["conda::conda-forge", "pypi::https://..."],
     "base": "ranking/base:v0" | null,
     "requested": {"conda": [...], "pypi": [...]},   # common to every platform shown
     "exclude_newer": str | null, "resolved_at": str | null, "resolved_by": str | null,
     "pypi_exclude_newer": bool,                     # false: the PyPI part had no cut-off
     "provisional": bool,                            # some id is not final yet
     "environments": [{
        "platform": "linux-64", "id": "req_id:full_id" | null,
        "req_id": str | null, "full_id": str | null, "provisional": bool,
        "base_full_id": str | null, "base_pending": bool,
        "requested": {"conda": [...], "pypi": [...]},
        "installed": {"conda": [PKG], "pypi": [PKG]} | null}]}

  with ``PKG = {"name", "version", "build", "url", "sha256"}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from envctl.catalog import LOCKS_DIR, Catalog
from envctl.collector import few_collections
from envctl.errors import CatalogError, EnvctlError, NotFoundError
from envctl.meta import Meta, load_meta
from envctl.names import (
    DEFAULT_TAG,
    LOCK_FILE_SUFFIX,
    META_FILE_SUFFIX,
    Alias,
    EnvId,
    EnvName,
    parse_alias,
    parse_env_name,
    parse_ref,
)
from envctl.spec import (
    ConcreteTag,
    EffectiveSpec,
    PointerTag,
    base_alias,
    build_request,
    env_type,
)

__all__ = [
    "AliasRef",
    "EnvSummary",
    "EnvView",
    "Package",
    "PlatformView",
    "TagSummary",
    "find_by_id",
    "list_environments",
    "read_lock_packages",
    "show_environment",
]


# -- list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagSummary:
    tag: str
    mutable: bool
    #: pending | frozen | retired | rolling; a pointer has its target's state, or
    #: "invalid" when the target is missing or not concrete (lint says why).
    state: str
    points_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies field by field, a second of --json output
        # at 80,000 tags.
        return {"tag": self.tag, "mutable": self.mutable, "state": self.state,
                "points_to": self.points_to}


@dataclass(frozen=True)
class EnvSummary:
    name: str
    description: str
    owners: list[str]
    tags: list[TagSummary]
    error: str | None = None  # the file could not be read; the other fields are empty

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "owners": list(self.owners),
            "tags": [t.to_dict() for t in self.tags],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def list_environments(catalog: Catalog, pattern: str | None = None) -> list[EnvSummary]:
    """Every environment whose name matches the fnmatch ``pattern`` (``ranking/*``), sorted."""
    with few_collections():
        return _list(catalog, pattern)


def _list(catalog: Catalog, pattern: str | None) -> list[EnvSummary]:
    names = [n for n in catalog.env_names() if pattern is None or fnmatchcase(str(n), pattern)]
    if not names:
        return []
    catalog.preload_envs(names)
    present = {e.path for e in catalog.source.entries(LOCKS_DIR) if e.kind == "file"}
    out = []
    for name in names:
        try:
            env = catalog.env(name)
        except EnvctlError as exc:
            first = exc.errors[0] if hasattr(exc, "errors") else exc
            out.append(EnvSummary(str(name), "", [], [], error=f"{first}; run 'envctl lint'"))
            continue
        states: dict[str, str] = {}
        for tag, spec in env.tags.items():
            if isinstance(spec, ConcreteTag):
                states[tag] = _state(catalog, Alias(name, tag), spec, present)
        tags = []
        for tag, spec in env.tags.items():
            if isinstance(spec, PointerTag):
                state = states.get(spec.points_to, "invalid")
                tags.append(TagSummary(tag, catalog.is_mutable(tag), state, spec.points_to))
            else:
                tags.append(TagSummary(tag, catalog.is_mutable(tag), states[tag]))
        out.append(EnvSummary(str(name), env.description, list(env.owners), tags))
    return out


def _state(catalog: Catalog, alias: Alias, spec: ConcreteTag, present: set[str]) -> str:
    """Catalog.info's states, from file presence only (no parsing)."""
    if spec.retired:
        return "retired"
    if catalog.is_mutable(alias.tag):
        return "rolling"
    # Plain text rather than alias.lock_path: building PurePosixPaths cost more than the rest
    # of list on a large catalog; the text is the same.
    stem = f"{LOCKS_DIR}/{alias.name.path}/{alias.tag}"
    locked = stem + LOCK_FILE_SUFFIX in present and stem + META_FILE_SUFFIX in present
    return "frozen" if locked else "pending"


# -- show -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    build: str | None = None
    url: str | None = None
    sha256: str | None = None

    def __str__(self) -> str:
        """Metaflow's form: ``numpy==1.26.4-py311h64a7726_0`` (build only when known)."""
        return f"{self.name}=={self.version}" + (f"-{self.build}" if self.build else "")


@dataclass(frozen=True)
class AliasRef:
    alias: str
    mutable: bool
    implicit: bool = False  # ``name`` alone resolves here because 'latest' is not declared


@dataclass(frozen=True)
class PlatformView:
    platform: str
    req_id: str | None  # None only while the base is not locked for this platform
    full_id: str | None  # None until CI locks the tag
    provisional: bool  # the req_id is computed here and may change when CI locks the tag
    base_full_id: str | None
    base_pending: bool
    conda: list[str]  # requested, normalised
    pypi: list[str]
    installed: dict[str, list[Package]] | None = None  # {"conda": [...], "pypi": [...]}

    @property
    def id(self) -> str | None:
        return f"{self.req_id}:{self.full_id}" if self.req_id and self.full_id else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "id": self.id,
            "req_id": self.req_id,
            "full_id": self.full_id,
            "provisional": self.provisional,
            "base_full_id": self.base_full_id,
            "base_pending": self.base_pending,
            "requested": {"conda": list(self.conda), "pypi": list(self.pypi)},
            "installed": None if self.installed is None else {
                manager: [asdict(p) for p in packages]
                for manager, packages in self.installed.items()
            },
        }


@dataclass(frozen=True)
class EnvView:
    asked: str
    alias: str
    name: str
    tag: str
    resolved_via: str | None  # None, "pointer" or "newest-frozen" (no tag, no 'latest')
    mutable: bool
    state: str
    type: str
    description: str
    tag_description: str | None
    owners: list[str]
    aliases: list[AliasRef]
    platforms: list[str]
    channels: list[str]
    sources: list[str]
    base: str | None
    exclude_newer: str | None
    resolved_at: str | None
    resolved_by: str | None
    environments: list[PlatformView] = field(default_factory=list)
    #: False when CI solved the PyPI part without exclude_newer (the index's opt-out).
    pypi_exclude_newer: bool = True

    @property
    def provisional(self) -> bool:
        return any(p.provisional for p in self.environments)

    @property
    def requested(self) -> dict[str, list[str]]:
        """Requirements common to every platform shown (per-platform extras are in each)."""
        if not self.environments:
            return {"conda": [], "pypi": []}
        conda = set.intersection(*(set(p.conda) for p in self.environments))
        pypi = set.intersection(*(set(p.pypi) for p in self.environments))
        return {"conda": sorted(conda), "pypi": sorted(pypi)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "alias": self.alias,
            "name": self.name,
            "tag": self.tag,
            "resolved_via": self.resolved_via,
            "mutable": self.mutable,
            "state": self.state,
            "type": self.type,
            "description": self.description,
            "tag_description": self.tag_description,
            "owners": list(self.owners),
            "aliases": [asdict(a) for a in self.aliases],
            "platforms": list(self.platforms),
            "channels": list(self.channels),
            "sources": list(self.sources),
            "base": self.base,
            "requested": self.requested,
            "exclude_newer": self.exclude_newer,
            "pypi_exclude_newer": self.pypi_exclude_newer,
            "resolved_at": self.resolved_at,
            "resolved_by": self.resolved_by,
            "provisional": self.provisional,
            "environments": [p.to_dict() for p in self.environments],
        }


def show_environment(catalog: Catalog, ref: str, *, platform: str | None = None) -> EnvView:
    """What ``ref`` (``name``, ``name:tag`` or ``req_id:full_id``) means in this catalog."""
    parsed = parse_ref(ref)
    if isinstance(parsed, EnvId):
        alias, id_platform = find_by_id(catalog, parsed)
        if platform is not None and platform != id_platform:
            raise NotFoundError(
                f"{parsed} is an environment for {id_platform}, not {platform}",
                rule="unknown-platform",
                fix=f"drop --platform or use --platform {id_platform}",
            )
        return _view(catalog, ref, alias, None, id_platform)
    try:
        concrete = catalog.resolve(parsed)
    except NotFoundError:
        from envctl.lookup import short_id_error

        if (hint := short_id_error(ref)) is not None:
            raise hint from None
        raise
    via = None
    if concrete.tag != parsed.tag:
        via = "pointer" if parsed.tag in catalog.env(parsed.name).tags else "newest-frozen"
    if isinstance(catalog.tag(concrete), PointerTag):
        raise CatalogError(
            f"{parsed} points to {concrete}, which is a pointer too; pointers cannot chain",
            file=str(parsed.name.env_file),
            tag=parsed.tag,
            rule="pointer-chain",
            fix="point it at a concrete immutable tag ('envctl lint' lists such problems)",
        )
    return _view(catalog, ref, concrete, via, platform)


def _view(
    catalog: Catalog, asked: str, alias: Alias, via: str | None, platform: str | None
) -> EnvView:
    env = catalog.env(alias.name)
    info = catalog.info(alias)
    spec = _effective(catalog, alias)
    meta = info.meta
    declared, channels = list(spec.platforms), list(spec.channels)
    if meta is not None and info.state in ("frozen", "retired") and meta.platforms:
        # A locked immutable tag is what its meta recorded: a later change of catalog
        # defaults (platforms, channels) must not change what it shows.
        declared = list(meta.platforms)
        channels = list(next(iter(meta.platforms.values())).request.channels)
    platforms = declared
    if platform is not None:
        if platform not in platforms:
            raise NotFoundError(
                f"{alias} is not declared for {platform}",
                file=str(alias.name.env_file),
                tag=alias.tag,
                rule="unknown-platform",
                fix=f"use one of: {', '.join(declared)}",
            )
        platforms = [platform]
    installed = _installed(catalog, alias) if info.meta is not None else None
    views = [_platform_view(catalog, alias, spec, meta, p, installed) for p in platforms]
    assert isinstance(info.spec, ConcreteTag)
    return EnvView(
        asked=asked,
        alias=str(alias),
        name=str(alias.name),
        tag=alias.tag,
        resolved_via=via,
        mutable=info.mutable,
        state=info.state,
        type=_type(catalog, alias, views),
        description=env.description,
        tag_description=info.spec.description,
        owners=list(env.owners),
        aliases=_aliases(catalog, alias),
        platforms=declared,
        channels=channels,
        sources=_sources(catalog, spec, channels, views),
        base=spec.base,
        exclude_newer=meta.exclude_newer if meta else None,
        resolved_at=meta.resolved_at if meta else None,
        resolved_by=meta.resolved_by if meta else None,
        environments=views,
        pypi_exclude_newer=meta.pypi_exclude_newer if meta else True,
    )


def _effective(catalog: Catalog, alias: Alias) -> EffectiveSpec:
    try:
        return catalog.effective(alias)
    except EnvctlError as exc:
        # effective_spec does not know files; say which one to fix.
        raise type(exc)(
            exc.message, file=exc.file or str(alias.name.env_file), line=exc.line,
            tag=exc.tag or alias.tag, rule=exc.rule, fix=exc.fix,
        ) from None


def _platform_view(
    catalog: Catalog, alias: Alias, spec: EffectiveSpec, meta: Meta | None, platform: str,
    installed: dict[str, dict[str, list[Package]]] | None,
) -> PlatformView:
    packages = installed.get(platform, {"conda": [], "pypi": []}) if installed else None
    if meta is not None and platform in meta.platforms:
        # The meta records the request as CI expanded it: the truth for a locked tag.
        recorded = meta.platforms[platform]
        return PlatformView(
            platform=platform,
            req_id=recorded.req_id,
            full_id=recorded.full_id,
            provisional=False,
            base_full_id=recorded.request.base_full_id,
            base_pending=False,
            conda=list(recorded.request.dependencies),
            pypi=list(recorded.request.pypi),
            installed=packages,
        )
    base_full_id = None
    base_pending = False
    if spec.base is not None:
        base_meta = catalog.meta(parse_alias(spec.base))
        if base_meta is not None and platform in base_meta.platforms:
            base_full_id = base_meta.platforms[platform].full_id
        else:
            base_pending = True
    try:
        request = build_request(spec, platform, catalog.config, base_full_id=base_full_id)
    except EnvctlError as exc:
        raise type(exc)(
            exc.message, file=exc.file or str(alias.name.env_file), line=exc.line,
            tag=exc.tag or alias.tag, rule=exc.rule, fix=exc.fix,
        ) from None
    return PlatformView(
        platform=platform,
        req_id=None if base_pending else request.req_id,
        full_id=None,
        provisional=True,
        base_full_id=base_full_id,
        base_pending=base_pending,
        conda=list(request.dependencies),
        pypi=list(request.pypi),
        installed=packages,
    )


def _aliases(catalog: Catalog, alias: Alias) -> list[AliasRef]:
    """The concrete tag, the pointers at it, and ``name`` alone when the latest rule picks it."""
    refs = [AliasRef(str(alias), catalog.is_mutable(alias.tag))]
    for tag in catalog.pointers_to(alias):
        refs.append(AliasRef(str(Alias(alias.name, tag)), catalog.is_mutable(tag)))
    if DEFAULT_TAG not in catalog.env(alias.name).tags:
        try:
            latest = catalog.resolve(Alias(alias.name, DEFAULT_TAG, explicit_tag=False))
        except EnvctlError:
            latest = None
        if latest == alias:
            refs.append(AliasRef(str(Alias(alias.name, DEFAULT_TAG)), True, implicit=True))
    return refs


def _type(catalog: Catalog, alias: Alias, views: list[PlatformView]) -> str:
    """conda-only / pypi-only / mixed over this tag and every base it extends."""
    conda = [d for v in views for d in v.conda]
    pypi = [r for v in views for r in v.pypi]
    current, seen = alias, {alias}
    spec = catalog.tag(current)
    while isinstance(spec, ConcreteTag) and spec.extends:
        current = base_alias(current, spec.extends)
        if current in seen:
            break
        seen.add(current)
        spec = catalog.tag(current)
        if isinstance(spec, ConcreteTag):
            conda += spec.dependencies + [d for t in spec.target.values() for d in t.dependencies]
            pypi += spec.pypi + [r for t in spec.target.values() for r in t.pypi]
    return env_type(conda, pypi)


def _sources(
    catalog: Catalog, spec: EffectiveSpec, channels: list[str], views: list[PlatformView]
) -> list[str]:
    sources = [f"conda::{c}" for c in channels]
    if any(v.pypi for v in views):
        options = spec.pypi_options
        index = (options.index_url if options else None) or catalog.config.pypi_index
        sources.append(f"pypi::{index}" if index else "pypi")
        if options:
            sources += [f"pypi::{url}" for url in options.extra_index_urls]
            sources += [f"pypi::{url}" for url in options.find_links]
    return sources


# -- locks ------------------------------------------------------------------------------


def _installed(catalog: Catalog, alias: Alias) -> dict[str, dict[str, list[Package]]] | None:
    data = catalog.lock_bytes(alias)
    if data is None:
        return None
    return read_lock_packages(data, file=str(alias.lock_path))


def read_lock_packages(data: bytes | str, *, file: str) -> dict[str, dict[str, list[Package]]]:
    """``{platform: {"conda": [...], "pypi": [...]}}`` from a conda-lock v1 file, sorted by name.

    Uses the resolver's fast reader (no conda-lock import), so show and CI agree on
    what a lockfile says.
    """
    from envctl.resolve.lockfile import read_lock

    lock = read_lock(data, file=file)
    out: dict[str, dict[str, list[Package]]] = {}
    for locked in lock.packages:
        per = out.setdefault(locked.platform, {"conda": [], "pypi": []})
        per["pypi" if locked.manager == "pip" else "conda"].append(
            Package(locked.name, locked.version, locked.build, locked.url, locked.sha256)
        )
    for per in out.values():
        for packages in per.values():
            packages.sort(key=lambda p: (p.name, p.version))
    return out


def find_by_id(catalog: Catalog, env_id: EnvId) -> tuple[Alias, str]:
    """The tag and platform whose meta records ``env_id``. Immutable tags win over mutable ones.

    Scans every meta, but parses only those whose bytes hold both ids (CI writes them as
    plain hex), or hold a backslash (an escape could spell an id another way): at 10,000
    environments parsing all 67,000 metas took seconds, reading them a fraction of that.
    """
    found: list[tuple[bool, Alias, str]] = []
    req_id, full_id = env_id.req_id.encode(), env_id.full_id.encode()
    for entry in catalog.source.entries(LOCKS_DIR):
        folder, _, filename = entry.path.rpartition("/")
        if entry.kind != "file" or not filename.endswith(META_FILE_SUFFIX):
            continue
        data = catalog.source.read(entry.path)
        if data is None or ((req_id not in data or full_id not in data) and b"\\" not in data):
            continue
        try:
            name: EnvName = parse_env_name(folder[len(LOCKS_DIR) + 1 :])
            alias = Alias(name, filename[: -len(META_FILE_SUFFIX)])
            meta = load_meta(data, file=entry.path)
        except EnvctlError:
            continue  # lint reports broken metas; a search skips them
        if meta.alias != str(alias):
            continue  # a meta at another tag's path: lint reports it; never trust it here
        for platform, recorded in meta.platforms.items():
            if recorded.req_id == env_id.req_id and recorded.full_id == env_id.full_id:
                found.append((catalog.is_mutable(alias.tag), alias, platform))
    if not found:
        raise NotFoundError(
            f"no environment in this catalog has the id {env_id}",
            rule="unknown-id",
            fix="check the id (envctl show NAME:TAG prints ids), or pull the latest catalog",
        )
    _, alias, platform = min(found, key=lambda f: (f[0], f[1], f[2]))
    return alias, platform
