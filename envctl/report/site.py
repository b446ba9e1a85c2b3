"""``envctl site OUTDIR``: a static HTML catalog people browse instead of reading YAML.

- ``index.html``: every environment grouped by namespace, with a filter box (vanilla JS,
  no network) over names, descriptions, owners and tags;
- ``envs/<namespace>/<env>.html``: one page per environment: its tags (mutable ones
  marked, pointers with their current target and their history on the protected branch),
  per concrete tag the ``req_id:full_id`` per platform, the ``envctl create`` commands,
  the packages per platform, and the package diff against the version before it.

Every page is self-contained (CSS and JS inline), so the folder works from ``file://``,
from any static host and as a CI artifact. Everything from the catalog is escaped by
jinja2's autoescape. The output is deterministic for a given catalog (no timestamps), so
a CI job can publish it only when it changes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from envctl.catalog import Catalog, GitSource, WorkTreeSource
from envctl.errors import EnvctlError
from envctl.names import Alias, EnvName
from envctl.report.diff import EnvDiff
from envctl.report.history import TagHistory
from envctl.spec import ConcreteTag, PointerTag

__all__ = ["SiteResult", "build_site"]

#: Called with (done, total, env name) while pages are written.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SitePackage:
    manager: str
    name: str
    version: str
    build: str
    url: str


@dataclass(frozen=True)
class SitePlatform:
    platform: str
    req_id: str | None
    full_id: str | None
    packages: list[SitePackage]

    @property
    def id(self) -> str | None:
        return f"{self.req_id}:{self.full_id}" if self.req_id and self.full_id else None


@dataclass
class SiteTag:
    tag: str
    mutable: bool
    state: str
    description: str | None = None
    points_to: str | None = None
    aliases: list[str] = field(default_factory=list)
    platforms: list[SitePlatform] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    base: str | None = None
    retired: str | None = None
    resolved_at: str | None = None
    diff: EnvDiff | None = None
    diff_rows: list[Any] = field(default_factory=list)
    diff_cut: int = 0
    history: TagHistory | None = None
    error: str | None = None

    @property
    def concrete(self) -> bool:
        return self.points_to is None


@dataclass
class SiteEnv:
    name: str
    namespace: str
    description: str
    owners: list[str]
    href: str  # relative to the site root
    tags: list[SiteTag] = field(default_factory=list)
    error: str | None = None

    @property
    def search_text(self) -> str:
        words = [self.name, self.description, *self.owners]
        words += [t.tag for t in self.tags]
        return " ".join(words).lower()


@dataclass(frozen=True)
class SiteResult:
    outdir: Path
    pages: int
    envs: int


def _href(name: EnvName) -> str:
    return str(PurePosixPath("envs", *name.namespace, name.env + ".html"))


def _root_prefix(href: str) -> str:
    return "../" * (href.count("/"))


def _history_source(catalog: Catalog) -> tuple[Path, str, str, str] | None:
    """(repository, catalog folder, branch, commit) to read tag history from, or None when
    the catalog is not in git or the protected branch cannot be found."""
    from envctl.git import toplevel
    from envctl.report.history import branch_rev

    source = catalog.source
    if isinstance(source, GitSource):
        return source.repo, source.subdir, catalog.config.branch, source.rev
    if isinstance(source, WorkTreeSource):
        top = toplevel(source.root)
        if top is None:
            return None
        subdir = source.root.resolve().relative_to(top.resolve()).as_posix()
        try:
            rev = branch_rev(top, catalog.config.branch)
        except EnvctlError:
            return None
        return top, "" if subdir == "." else subdir, catalog.config.branch, rev
    return None


def _platforms(catalog: Catalog, alias: Alias) -> tuple[list[SitePlatform], str | None]:
    from envctl.report.locks import read_any_lock

    meta = catalog.meta(alias)
    data = catalog.lock_bytes(alias)
    lock = read_any_lock(data, file=str(alias.lock_path)) if data is not None else None
    names = sorted((set(meta.platforms) if meta else set())
                   | (set(lock.platforms) if lock else set()))
    if not names:
        try:
            names = list(catalog.effective(alias).platforms)
        except EnvctlError:
            names = []
    out = []
    for platform in names:
        recorded = meta.platforms.get(platform) if meta else None
        packages = []
        if lock is not None:
            packages = sorted(
                (SitePackage("conda" if p.manager == "conda" else "pypi", p.name, p.version,
                             p.build or "", p.url) for p in lock.for_platform(platform)),
                key=lambda p: (p.manager, p.name.lower()),
            )
        out.append(SitePlatform(platform, recorded.req_id if recorded else None,
                                recorded.full_id if recorded else None, packages))
    return out, meta.resolved_at if meta else None


def _env_page_data(catalog: Catalog, name: EnvName,
                   history_from: tuple[Path, str, str, str] | None) -> SiteEnv:
    from envctl.report.changes import requested_items
    from envctl.report.history import env_history
    from envctl.report.render import package_rows
    from envctl.report.sides import lock_of, predecessor

    site_env = SiteEnv(str(name), "/".join(name.namespace) or "(top level)", "", [],
                       _href(name))
    try:
        env = catalog.env(name)
    except EnvctlError as exc:
        site_env.error = exc.message
        return site_env
    site_env.description, site_env.owners = env.description, list(env.owners)
    for tag, spec in env.tags.items():
        alias = Alias(name, tag)
        mutable = catalog.is_mutable(tag)
        try:
            state = catalog.info(alias).state
        except EnvctlError:
            state = "invalid"
        item = SiteTag(tag, mutable, state, description=spec.description)
        if isinstance(spec, PointerTag):
            item.points_to = spec.points_to
            # A pointer is as usable as its target: show the target's state (as 'list' does).
            try:
                item.state = catalog.info(Alias(name, spec.points_to)).state
            except EnvctlError:
                item.state = "invalid"
        else:
            assert isinstance(spec, ConcreteTag)
            item.aliases = catalog.pointers_to(alias)
            item.retired = spec.retired
            item.requested = requested_items(spec)
            item.base = spec.extends
            try:
                item.platforms, item.resolved_at = _platforms(catalog, alias)
                before = predecessor(catalog, alias)
                if before is not None and catalog.lock_bytes(alias) is not None:
                    from envctl.report.diff import diff_locks

                    try:
                        old_lock = lock_of(catalog, before)
                    except EnvctlError:
                        old_lock = None
                    if old_lock is not None:
                        item.diff = diff_locks(old_lock, lock_of(catalog, alias),
                                               old_label=str(before), new_label=str(alias))
                        item.diff_rows, item.diff_cut = package_rows(item.diff, limit=300)
            except EnvctlError as exc:
                item.error = exc.message
        site_env.tags.append(item)
    mutable_tags = [t for t in site_env.tags if t.mutable]
    if mutable_tags and history_from is not None:
        top, subdir, branch, rev = history_from
        try:
            histories = env_history(top, name, {t.tag: True for t in mutable_tags}, rev,
                                    subdir=subdir, branch=branch)
        except EnvctlError as exc:
            for t in mutable_tags:
                t.error = exc.message
        else:
            for t in mutable_tags:
                t.history = histories[t.tag]
    return site_env


def build_site(catalog: Catalog, outdir: Path, *, progress: Progress | None = None,
               title: str | None = None) -> SiteResult:
    """Write the site into ``outdir`` (replaced as a whole: pages of deleted environments
    must not linger). Built in a temporary folder beside it, then moved into place."""
    from envctl.report.render import ARROWS
    from envctl.report.templating import render

    names = catalog.env_names()
    catalog.preload_envs(names)
    history_from = _history_source(catalog)
    envs = []
    for index, name in enumerate(names):
        envs.append(_env_page_data(catalog, name, history_from))
        if progress is not None:
            progress(index + 1, len(names), str(name))
    namespaces: dict[str, list[SiteEnv]] = {}
    for env in envs:
        namespaces.setdefault(env.namespace, []).append(env)
    site_title = title or catalog.config.name or "Environment catalog"
    common: dict[str, Any] = {"title": site_title,
                              "description": catalog.config.description,
                              "arrows": ARROWS}

    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        (staging / "index.html").write_text(
            render("site_index.html.j2", root="", namespaces=sorted(namespaces.items()),
                   total=len(envs), **common),
            encoding="utf-8",
        )
        for env in envs:
            page = staging / env.href
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(
                render("site_env.html.j2", root=_root_prefix(env.href), env=env, **common),
                encoding="utf-8",
            )
        os.chmod(staging, 0o755)
        if outdir.exists():
            _check_replaceable(outdir)
            shutil.rmtree(outdir)
        os.replace(staging, outdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SiteResult(outdir, len(envs) + 1, len(envs))


def _check_replaceable(outdir: Path) -> None:
    """Refuse to wipe a folder that is not a site envctl wrote (a typo must not delete
    someone's work)."""
    entries = {p.name for p in outdir.iterdir()}
    if entries and not (entries <= {"index.html", "envs"}):
        raise EnvctlError(
            f"{outdir} exists and holds files envctl did not write",
            file=str(outdir),
            rule="unsafe-output",
            fix="choose an empty or new folder, or one a previous 'envctl site' wrote",
        )
