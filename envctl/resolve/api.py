"""Resolve tags of a catalog work tree: one conda-lock v1 file and one meta per tag.

For each platform of a tag: build the expanded request (its hash is the req_id),
solve the conda part with rattler, then the PyPI part with uv on top of it, and
compute the full_id from the files chosen. Then write ``<tag>.conda-lock.yml``
and ``<tag>.meta.yaml`` next to each other under ``locks/`` (temp file + rename).

Rules:

- a *frozen* tag (immutable, lock and meta present) is never re-resolved: the
  result says so and nothing is written;
- an immutable tag resolves with ``exclude_newer`` = the time of the commit that
  added it; a tag that is not committed yet is refused unless the caller passes
  ``exclude_newer`` (the CLI's ``--exclude-newer``), because its resolve could not
  be reproduced;
- a rolling tag (mutable, with its own spec) resolves against everything
  available (``exclude_newer`` None) and is rewritten only when its ids change;
- the PyPI part gets the same cut-off unless the catalog's ``pypi_exclude_newer`` or the
  tag's ``pypi_options.exclude_newer`` is false (an index without upload times); the meta
  then says ``pypi_exclude_newer: false``, and the ids do not change;
- ``extends``: the base is resolved first when it has no lock, then its lock is
  pinned and its full_id goes into the request;
- ``output``: where locks are written (default: the catalog itself). ``extend`` and
  ``adopt`` resolve into a throw-away folder, read before the catalog's ``locks/``, so a
  trial leaves nothing in the work tree but the environment file (only CI commits locks).

The functions here return values and raise :class:`~envctl.errors.EnvctlError`;
they never print. Progress goes to an optional ``reporter`` callback.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from envctl import __version__
from envctl.catalog import Catalog, Entry, WorkTreeSource
from envctl.errors import EnvctlError, Location, NotFoundError, SolveError
from envctl.fsutil import atomic_write
from envctl.meta import Meta, PlatformMeta, dump_meta
from envctl.names import Alias, parse_alias
from envctl.resolve.channels import ChannelRef, channel_refs
from envctl.resolve.history import committed_at_head, iso, tag_added_at
from envctl.resolve.lockfile import LockData, LockedPackage, read_lock, write_lock
from envctl.spec import (
    ConcreteTag,
    EffectiveSpec,
    PointerTag,
    Request,
    base_alias,
    build_request,
    pypi_exclude_newer,
)

Status = Literal["resolved", "frozen", "unchanged", "solved-only", "skipped"]
Stage = Literal["start", "conda", "pypi", "solved", "written", "skipped", "failed"]


class _Auto:
    """Sentinel: take ``exclude_newer`` from git (immutable) or none (rolling)."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


@dataclass(frozen=True)
class ResolveEvent:
    alias: str
    platform: str | None
    stage: Stage
    detail: str = ""


Reporter = Callable[[ResolveEvent], None]


@dataclass(frozen=True)
class PlatformResult:
    platform: str
    req_id: str
    full_id: str
    conda: int
    pypi: int

    @property
    def env_id(self) -> str:
        return f"{self.req_id}:{self.full_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "req_id": self.req_id,
            "full_id": self.full_id,
            "id": self.env_id,
            "conda_packages": self.conda,
            "pypi_packages": self.pypi,
        }


@dataclass(frozen=True)
class TagResult:
    alias: str
    status: Status
    message: str
    platforms: tuple[PlatformResult, ...] = ()
    lock_path: str | None = None
    meta_path: str | None = None
    exclude_newer: str | None = None
    pypi_exclude_newer: bool = True  # False: the PyPI part was solved without exclude_newer

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "status": self.status,
            "message": self.message,
            "exclude_newer": self.exclude_newer,
            "pypi_exclude_newer": self.pypi_exclude_newer,
            "lock": self.lock_path,
            "meta": self.meta_path,
            "platforms": [p.to_dict() for p in self.platforms],
        }


@dataclass(frozen=True)
class Solved:
    """One platform's outcome, before anything is written."""

    request: Request
    conda: tuple[LockedPackage, ...]
    pypi: tuple[LockedPackage, ...]
    # True when uv ran without the tag's cut-off because the catalog or tag opted out.
    pypi_without_cutoff: bool = False

    @property
    def packages(self) -> tuple[LockedPackage, ...]:
        return (*self.conda, *self.pypi)

    @cached_property
    def platform_result(self) -> PlatformResult:
        from envctl.resolve.ids import full_id

        return PlatformResult(
            platform=self.request.platform,
            req_id=self.request.req_id,
            full_id=full_id(self.request.platform, self.packages),  # type: ignore[arg-type]
            conda=len(self.conda),
            pypi=len(self.pypi),
        )


@dataclass
class Resolver:
    """One resolve run over a catalog work tree: shared gateway, results memo, options.

    ``resolved_at``/``resolved_by`` are recorded in every meta written; ``exclude_newer``
    overrides the per-tag rule for every tag of the run when not ``AUTO``.
    """

    root: Path
    resolved_at: datetime
    resolved_by: str
    exclude_newer: Any = AUTO
    platforms: tuple[str, ...] | None = None
    force: bool = False
    reporter: Reporter | None = None
    environ: dict[str, str] | None = None
    output: Path | None = None  # where locks are written (and read first); default: root
    _catalog: Catalog | None = field(default=None, init=False, repr=False)
    _gateway: Any = field(default=None, init=False, repr=False)
    _done: dict[Alias, TagResult] = field(default_factory=dict, init=False, repr=False)

    # -- shared state ------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            source: Any = WorkTreeSource(self.root)
            if self.output is not None:
                source = OverlaySource(source, WorkTreeSource(self.output))
            self._catalog = Catalog(source)
        return self._catalog

    @property
    def gateway(self) -> Any:
        if self._gateway is None:
            from envctl.resolve.conda import make_gateway

            self._gateway = make_gateway()
        return self._gateway

    def _emit(
        self, alias: Alias | str, platform: str | None, stage: Stage, detail: str = ""
    ) -> None:
        if self.reporter is not None:
            self.reporter(ResolveEvent(str(alias), platform, stage, detail))

    # -- entry points ------------------------------------------------------------------

    def resolve(self, alias: Alias) -> TagResult:
        """Resolve one tag (a pointer resolves the tag it points to)."""
        target = self.catalog.resolve(alias)
        if target in self._done:
            return self._done[target]
        try:
            result = self._resolve(target)
        except EnvctlError as exc:
            self._emit(target, None, "failed", exc.message)
            if exc.tag is None:
                exc.location = Location(
                    file=exc.file or str(target.env_file), line=exc.line, tag=target.tag
                )
            raise
        self._done[target] = result
        return result

    # -- one tag -----------------------------------------------------------------------

    def _resolve(self, alias: Alias) -> TagResult:
        info = self.catalog.info(alias)
        spec = info.spec
        assert not isinstance(spec, PointerTag)  # catalog.resolve followed it
        if info.state == "retired":
            self._emit(alias, None, "skipped", "retired")
            return TagResult(str(alias), "skipped", f"{alias} is retired; nothing to resolve")
        if info.state == "frozen":
            frozen = self._frozen_result(alias, info.meta)
            committed = committed_at_head(self.root, str(alias.lock_path))
            if committed or not self.force:
                self._emit(alias, None, "skipped", "frozen")
                if committed:
                    return frozen
                return replace(
                    frozen,
                    message=f"{alias} is locked in the work tree (not committed yet); nothing "
                    "to do (--force resolves it again)",
                )

        effective = self.catalog.effective(alias)
        exclude_newer = self._exclude_newer(alias, info.mutable)
        base_result, base_lock = self._base(alias, spec, effective)

        wanted = list(effective.platforms)
        if self.platforms:
            unknown = [p for p in self.platforms if p not in wanted]
            if unknown:
                raise NotFoundError(
                    f"{alias} is not declared for {', '.join(unknown)}",
                    rule="unknown-platform",
                    fix=f"use one of: {', '.join(wanted)}",
                )
            wanted = [p for p in wanted if p in self.platforms]

        refs = channel_refs(
            effective.channels, self.catalog.config.channels, self.root, environ=self.environ
        )

        def one(platform: str) -> Solved:
            self._emit(alias, platform, "start")
            outcome = self._solve_platform(
                alias, effective, platform, refs, exclude_newer, base_result, base_lock
            )
            self._emit(alias, platform, "solved", outcome.platform_result.env_id)
            return outcome

        _ = self.gateway  # made once, before the platform threads share it
        solved = dict(zip(wanted, self._each_platform(one, wanted), strict=True))
        results = tuple(solved[p].platform_result for p in wanted)
        when = iso(exclude_newer) if exclude_newer is not None else None
        pypi_cutoff = not any(s.pypi_without_cutoff for s in solved.values())

        if len(wanted) != len(effective.platforms):
            return TagResult(
                str(alias),
                "solved-only",
                f"solved {', '.join(wanted)} only; nothing written (a lock holds every platform "
                f"of the tag: resolve without --platform to write it)",
                results,
                exclude_newer=when,
                pypi_exclude_newer=pypi_cutoff,
            )
        if info.mutable and info.meta is not None and self._same_ids(info.meta, results):
            self._emit(alias, None, "skipped", "unchanged")
            return TagResult(
                str(alias),
                "unchanged",
                f"{alias} resolves to the same packages; lock left as it is",
                results,
                str(alias.lock_path),
                str(alias.meta_path),
                when,
                pypi_cutoff,
            )
        self._write(alias, effective, refs, solved, when, pypi_cutoff=pypi_cutoff)
        self._emit(alias, None, "written", str(alias.lock_path))
        # Whoever resolves the tag learns it too, not only a later reader of the meta: a
        # re-resolve of this PyPI part may give other files.
        note = (
            ""
            if pypi_cutoff
            else f" (PyPI part solved without exclude_newer {when}: pypi_exclude_newer is false)"
        )
        return TagResult(
            str(alias),
            "resolved",
            f"wrote {alias.lock_path} and {alias.meta_path}{note}",
            results,
            str(alias.lock_path),
            str(alias.meta_path),
            when,
            pypi_cutoff,
        )

    @staticmethod
    def _each_platform(work: Callable[[str], Solved], platforms: list[str]) -> list[Solved]:
        """Solve the platforms side by side: rattler solves in its own threads and the GIL
        is free while it does, uv is a subprocess, and platforms do not depend on each
        other. The first failure in platform order is raised, so errors stay deterministic.
        """
        if len(platforms) < 2:
            return [work(p) for p in platforms]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(platforms), thread_name_prefix="solve") as pool:
            futures = [pool.submit(work, p) for p in platforms]
            return [future.result() for future in futures]

    def _frozen_result(self, alias: Alias, meta: Meta | None) -> TagResult:
        platforms: tuple[PlatformResult, ...] = ()
        if meta is not None:
            lock = read_tag_lock(self.catalog, alias)
            platforms = tuple(
                PlatformResult(
                    p,
                    m.req_id,
                    m.full_id,
                    len(lock.conda(p)) if lock else 0,
                    len(lock.pypi(p)) if lock else 0,
                )
                for p, m in sorted(meta.platforms.items())
            )
        return TagResult(
            str(alias),
            "frozen",
            f"{alias} is frozen (immutable and locked); nothing to do",
            platforms,
            str(alias.lock_path),
            str(alias.meta_path),
            meta.exclude_newer if meta else None,
            meta.pypi_exclude_newer if meta else True,
        )

    @staticmethod
    def _same_ids(meta: Meta, results: Sequence[PlatformResult]) -> bool:
        ids = {r.platform: (r.req_id, r.full_id) for r in results}
        old = {p: (m.req_id, m.full_id) for p, m in meta.platforms.items()}
        return ids == old

    def _exclude_newer(self, alias: Alias, mutable: bool) -> datetime | None:
        if self.exclude_newer is not AUTO:
            return self.exclude_newer  # type: ignore[no-any-return]
        if mutable:
            return None  # a rolling spec follows what is available at each resolve
        added = tag_added_at(self.root, str(alias.env_file), alias.tag)
        if added is None:
            raise SolveError(
                f"{alias} is not committed yet, so the time it was added (its exclude_newer) "
                "is not known",
                file=str(alias.env_file),
                tag=alias.tag,
                rule="uncommitted-tag",
                fix="commit the environment file first (CI resolves committed tags), or pass "
                "--exclude-newer now / --exclude-newer 2024-05-01T00:00:00Z to try it locally",
            )
        return added

    # -- extends -----------------------------------------------------------------------

    def _base(
        self, alias: Alias, spec: ConcreteTag, effective: EffectiveSpec
    ) -> tuple[TagResult | None, LockData | None]:
        if not spec.extends:
            return None, None
        base = base_alias(alias, spec.extends)
        info = self.catalog.info(base)
        if info.meta is None or self.catalog.lock_bytes(base) is None:
            self._emit(alias, None, "start", f"resolving its base {base} first")
            # The base is resolved with the run's options but never with a platform subset.
            saved, self.platforms = self.platforms, None
            try:
                self.resolve(base)
            finally:
                self.platforms = saved
            self._forget(base)
            info = self.catalog.info(base)
        data = self.catalog.lock_bytes(base)
        if info.meta is None or data is None:
            raise SolveError(
                f"{alias} extends {base}, which has no lock",
                rule="extends-unlocked",
                fix=f"resolve {base} first",
            )
        lock = read_lock(data, file=str(base.lock_path))
        return self._frozen_result(base, info.meta), lock

    def _forget(self, alias: Alias) -> None:
        """Drop cached reads after this run wrote ``alias``'s files (a fresh catalog is cheap)."""
        self._catalog = None

    # -- one platform ------------------------------------------------------------------

    def _solve_platform(
        self,
        alias: Alias,
        effective: EffectiveSpec,
        platform: str,
        refs: list[ChannelRef],
        exclude_newer: datetime | None,
        base_result: TagResult | None,
        base_lock: LockData | None,
    ) -> Solved:
        from envctl.resolve.conda import CondaRequest, solve_conda
        from envctl.resolve.extends import base_pins, diagnose, next_tag
        from envctl.resolve.pypi import PypiRequest, solve_pypi

        base_full_id = None
        pins = None
        if base_result is not None and base_lock is not None:
            by_platform = {p.platform: p for p in base_result.platforms}
            if platform not in by_platform or not base_lock.for_platform(platform):
                raise SolveError(
                    f"{alias} extends {base_result.alias}, which is not resolved for {platform}",
                    rule="extends-platform",
                    fix=f"drop {platform} from this tag or add a base tag that has it",
                )
            base_full_id = by_platform[platform].full_id
            pins = base_pins(base_result.alias, base_lock.for_platform(platform), refs)

        request = build_request(
            effective,
            platform,
            self.catalog.config,
            base_full_id=base_full_id,
            exclude_newer=iso(exclude_newer) if exclude_newer is not None else None,
        )
        self._emit(alias, platform, "conda")

        def conda_solve(specs: Sequence[str]) -> list[LockedPackage]:
            return solve_conda(
                CondaRequest(
                    platform=platform,
                    specs=tuple(specs),
                    channels=tuple(refs),
                    virtual_packages=request.virtual_packages,
                    exclude_newer=exclude_newer,
                ),
                gateway=self.gateway,
            )

        pinned_specs = list(pins.conda_specs) if pins else []
        try:
            conda = conda_solve([*pinned_specs, *request.dependencies])
        except SolveError as exc:
            if pins is None or not request.dependencies:
                raise
            base = parse_alias(pins.alias)
            existing = list(self.catalog.env(base.name).tags)
            new_base = f"{base.name}:{next_tag(base.tag, existing)}"
            raise diagnose(
                alias=str(alias),
                platform=platform,
                added=request.dependencies,
                pins=pins,
                solve=conda_solve,
                new_base=new_base,
                original=exc,
            ) from None

        pypi: list[LockedPackage] = []
        pypi_pins = pins.pypi_pins if pins else ()
        without_cutoff = False
        if request.pypi or pypi_pins:
            self._emit(alias, platform, "pypi")
            options = effective.pypi_options
            index_url = (options.index_url if options else None) or self.catalog.config.pypi_index
            if not index_url:
                raise SolveError(
                    f"{alias} has PyPI requirements but no index is configured",
                    rule="no-pypi-index",
                    fix="set 'pypi_index:' in catalog.yaml (or pypi_options.index_url on the tag)",
                )
            # The opt-out drops the cut-off for uv only: the conda part and the request
            # (hence the ids) keep exclude_newer.
            cutoff = exclude_newer
            if exclude_newer is not None and not pypi_exclude_newer(options, self.catalog.config):
                cutoff, without_cutoff = None, True
            pypi = solve_pypi(
                PypiRequest(
                    platform=platform,
                    requirements=tuple(request.pypi),
                    conda=tuple(conda),
                    virtual_packages=request.virtual_packages,
                    index_url=index_url,
                    extra_index_urls=tuple(options.extra_index_urls) if options else (),
                    find_links=tuple(self._local(link) for link in options.find_links)
                    if options
                    else (),
                    pins=tuple(pypi_pins),
                    # The same cut-off as the conda part unless opted out: both halves of
                    # the lock are what existed when the tag was added.
                    exclude_newer=cutoff,
                )
            )
        return Solved(
            request=request,
            conda=tuple(conda),
            pypi=tuple(pypi),
            pypi_without_cutoff=without_cutoff,
        )

    def _local(self, link: str) -> str:
        """A find-links entry: a URL as is, a relative path relative to the catalog root."""
        if "://" in link or os.path.isabs(link):
            return link
        return str((self.root / link).resolve())

    # -- writing -----------------------------------------------------------------------

    def _write(
        self,
        alias: Alias,
        effective: EffectiveSpec,
        refs: list[ChannelRef],
        solved: dict[str, Solved],
        exclude_newer: str | None,
        *,
        pypi_cutoff: bool = True,
    ) -> None:
        lock_rel = PurePosixPath(alias.lock_path)
        source = os.path.relpath(str(alias.env_file), str(lock_rel.parent)).replace(os.sep, "/")
        lock = write_lock(
            alias=str(alias),
            platforms=list(solved),
            channels=[r.public_url for r in refs],
            packages=[p for s in solved.values() for p in s.packages],
            req_ids={p: s.request.req_id for p, s in solved.items()},
            sources=[source],
        )
        meta = Meta(
            alias=str(alias),
            base=effective.base,
            exclude_newer=exclude_newer,
            pypi_exclude_newer=pypi_cutoff,
            resolved_at=iso(self.resolved_at),
            resolved_by=self.resolved_by,
            envctl_version=__version__,
            tools=tool_versions(pypi=any(s.pypi for s in solved.values())),
            lock_sha256=hashlib.sha256(lock).hexdigest(),
            platforms={
                p: PlatformMeta(req_id=s.request.req_id, full_id=r.full_id, request=s.request)
                for p, s in solved.items()
                for r in [s.platform_result]
            },
        )
        # Lock first, meta last: a meta on disk always describes a complete lock.
        out = self.output or self.root
        atomic_write(out / str(alias.lock_path), lock)
        atomic_write(out / str(alias.meta_path), dump_meta(meta))
        self._forget(alias)


class OverlaySource:
    """A catalog work tree whose ``locks/`` are read from ``scratch`` first: a trial
    resolve's own locks (its base's too) without writing into the work tree."""

    def __init__(self, tree: WorkTreeSource, scratch: WorkTreeSource) -> None:
        self.tree = tree
        self.scratch = scratch
        self.label = tree.label

    def read(self, path: str) -> bytes | None:
        if path.startswith("locks/"):
            data = self.scratch.read(path)
            if data is not None:
                return data
        return self.tree.read(path)

    def entries(self, prefix: str) -> list[Entry]:
        found = {e.path: e for e in self.tree.entries(prefix)}
        if prefix.strip("/").startswith("locks"):
            found.update((e.path, e) for e in self.scratch.entries(prefix))
        return sorted(found.values(), key=lambda e: e.path)


def tool_versions(*, pypi: bool) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    tools = {}
    for name in ("py-rattler", *(("uv",) if pypi else ())):
        try:
            tools[name] = version(name)
        except PackageNotFoundError:
            tools[name] = "unknown"
    return tools


# -- selecting what to resolve --------------------------------------------------------


def select(
    catalog: Catalog,
    root: Path,
    names: Iterable[str] = (),
    *,
    all_tags: bool = False,
    changed_since: str | None = None,
) -> list[Alias]:
    """The tags a ``resolve`` run covers, in a stable order without repeats.

    Names may be ``env`` (its ``latest``), ``env:tag`` or a pointer. ``all_tags``: every
    concrete tag. ``changed_since``: tags that are new or whose spec differs from that
    revision, plus the rolling tags of changed files.
    """
    chosen: list[Alias] = []
    for text in names:
        chosen.append(catalog.resolve(parse_alias(text)))
    if all_tags:
        for name in catalog.env_names():
            chosen.extend(
                a for a in catalog.aliases(name) if isinstance(catalog.tag(a), ConcreteTag)
            )
    if changed_since is not None:
        chosen.extend(_changed(catalog, root, changed_since))
    seen: set[Alias] = set()
    ordered = []
    for alias in chosen:
        if alias not in seen:
            seen.add(alias)
            ordered.append(alias)
    return ordered


def _changed(catalog: Catalog, root: Path, rev: str) -> list[Alias]:
    from envctl.catalog import GitSource
    from envctl.git import rev_parse, toplevel
    from envctl.names import env_name_from_path
    from envctl.resolve.history import changed_env_files

    files = changed_env_files(root, rev)
    top = toplevel(root)
    assert top is not None  # changed_env_files checked it
    subdir = root.resolve().relative_to(top.resolve()).as_posix()
    before = Catalog(GitSource(top, rev_parse(top, rev), subdir="" if subdir == "." else subdir))
    out = []
    for path in files:
        name = env_name_from_path(path)
        old_tags: dict[str, Any] = {}
        if before.has_env(name):
            try:
                old_tags = dict(before.env(name).tags)
            except EnvctlError:
                old_tags = {}
        for alias in catalog.aliases(name):
            spec = catalog.tag(alias)
            if not isinstance(spec, ConcreteTag):
                continue
            old = old_tags.get(alias.tag)
            if old is None or old != spec or catalog.is_mutable(alias.tag):
                out.append(alias)
    return out


def resolve(
    root: Path,
    aliases: Sequence[Alias],
    *,
    resolved_at: datetime,
    resolved_by: str,
    exclude_newer: Any = AUTO,
    platforms: Sequence[str] | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
) -> tuple[list[TagResult], list[tuple[str, EnvctlError]]]:
    """Resolve each alias; one failure does not stop the others. Returns (results, errors)."""
    resolver = Resolver(
        root=root,
        resolved_at=resolved_at,
        resolved_by=resolved_by,
        exclude_newer=exclude_newer,
        platforms=tuple(platforms) if platforms else None,
        force=force,
        reporter=reporter,
    )
    results: list[TagResult] = []
    errors: list[tuple[str, EnvctlError]] = []
    for alias in aliases:
        try:
            results.append(resolver.resolve(alias))
        except EnvctlError as exc:
            errors.append((str(alias), exc))
    return results, errors


def resolve_tag(
    root: Path,
    alias: Alias | str,
    *,
    resolved_at: datetime,
    resolved_by: str,
    exclude_newer: Any = AUTO,
    platforms: Sequence[str] | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
    output: Path | None = None,
) -> TagResult:
    """Resolve one tag of the catalog at ``root``; raises on failure. ``output``: write the
    locks there (relative paths as in a catalog) instead of into ``root``."""
    resolver = Resolver(
        root=root,
        resolved_at=resolved_at,
        resolved_by=resolved_by,
        exclude_newer=exclude_newer,
        platforms=tuple(platforms) if platforms else None,
        force=force,
        reporter=reporter,
        output=output,
    )
    return resolver.resolve(parse_alias(alias) if isinstance(alias, str) else alias)


def read_tag_lock(catalog: Catalog, alias: Alias) -> LockData | None:
    """The lock of a tag, read with the fast reader (None when there is none)."""
    data = catalog.lock_bytes(alias)
    return None if data is None else read_lock(data, file=str(alias.lock_path))
