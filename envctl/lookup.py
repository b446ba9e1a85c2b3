"""Finding what an environment reference means: in a catalog, in the store, or by run.

A catalog is a work tree (a path, ``$ENVCTL_CATALOG``, or the nearest parent with a
catalog.yaml) or a git URL (a cached bare clone under ``$ENVCTL_HOME/catalogs``;
``URL#REV`` picks a branch or tag). ``fetch=True`` reads the catalog at its remote
branch tip (``git fetch``), so mutable tags follow it; that is the default for a git
URL, never for a work tree, whose files are used as they are. Without a catalog the
artifact store's alias and environment records answer (a remote task needs no clone).

The lock found is always checked against the id recorded for it: its packages must
hash to the full_id, so a name can never install other bits than its id says.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from envctl.errors import CatalogError, EnvctlError, LockfileError, NotFoundError
from envctl.names import Alias, EnvId, parse_ref

if TYPE_CHECKING:
    from pathlib import Path

    from envctl.catalog import Catalog
    from envctl.resolve.lockfile import LockData
    from envctl.store.base import Store

STORE_ENV = "ENVCTL_STORE"


@dataclass(frozen=True)
class ResolvedRef:
    """What a reference means right now: the concrete tag, the ids, and the lock."""

    asked: str
    alias: str | None  # the concrete name:tag; None for an id no catalog or store names
    req_id: str
    full_id: str
    platform: str
    lock: LockData = field(repr=False)
    lock_sha256: str | None = None
    lock_bytes: bytes = field(default=b"", repr=False, compare=False)
    mutable: bool = False  # whether the *asked* tag may move (then pin the id)
    source: str = "catalog"  # "catalog" | "store"
    pathspec: str | None = None
    store: Store | None = field(default=None, repr=False, compare=False)

    @property
    def env_id(self) -> str:
        return f"{self.req_id}:{self.full_id}"

    def identity(self) -> dict[str, Any]:
        """The fields a record of an environment made from this reference keeps (the
        prefix record, a run record): what was asked, the alias, the ids, the lock."""
        return {
            "asked": self.asked,
            "alias": self.alias,
            "req_id": self.req_id,
            "full_id": self.full_id,
            "platform": self.platform,
            "lock_sha256": self.lock_sha256,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "alias": self.alias,
            "id": self.env_id,
            "req_id": self.req_id,
            "full_id": self.full_id,
            "platform": self.platform,
            "mutable": self.mutable,
            "source": self.source,
            "pathspec": self.pathspec,
            "lock_sha256": self.lock_sha256,
        }


# -- catalogs -------------------------------------------------------------------------------


def is_git_url(text: str) -> bool:
    """A URL git fetches (``https://``, ``ssh://``, ``file://``, ``git@host:path``)."""
    if "://" in text:
        return True
    head, sep, _ = text.partition(":")
    return bool(sep) and "@" in head and "/" not in head


def open_catalog(catalog: Catalog | str | os.PathLike[str] | None = None, *,
                 fetch: bool | None = None) -> Catalog:
    """A :class:`~envctl.catalog.Catalog` from an object, a path, a git URL or the defaults."""
    from envctl.catalog import Catalog
    from envctl.catalog import open_catalog as open_path

    if isinstance(catalog, Catalog):
        return catalog
    text = os.fspath(catalog) if catalog is not None else os.environ.get("ENVCTL_CATALOG") or None
    if text is not None and is_git_url(str(text)):
        return _git_catalog(str(text), fetch=True if fetch is None else fetch)
    opened = open_path(text)
    if fetch:
        return _fetched_worktree(opened)
    return opened


def _git_catalog(url: str, *, fetch: bool) -> Catalog:
    """A catalog read from a cached bare clone of ``url`` (``URL#REV`` for a branch/tag)."""
    from envctl.catalog import Catalog, GitSource
    from envctl.git import rev_parse, run_git
    from envctl.materialize import envctl_home
    from envctl.resolve.channels import redact

    base, _, rev = url.partition("#")
    repo = envctl_home() / "catalogs" / (hashlib.sha1(url.encode()).hexdigest()[:16] + ".git")
    tip = "refs/envctl/tip"
    if not (repo / "HEAD").is_file():
        repo.mkdir(parents=True, exist_ok=True)
        run_git(repo, ["init", "--quiet", "--bare"])
        fetch = True
    if fetch:
        run_git(repo, ["fetch", "--quiet", "--depth", "1", "--no-tags", base, rev or "HEAD"],
                timeout=300)
        run_git(repo, ["update-ref", tip, "FETCH_HEAD"])
    catalog = Catalog(GitSource(repo, rev_parse(repo, tip)))
    catalog.source.label = f"{redact(base)}{'#' + rev if rev else ''}"
    return catalog


def _fetched_worktree(catalog: Catalog) -> Catalog:
    """The same catalog at its remote branch tip (``git fetch``; the work tree is untouched)."""
    from envctl.catalog import Catalog, GitSource, WorkTreeSource
    from envctl.git import rev_parse, run_git, toplevel

    source = catalog.source
    if not isinstance(source, WorkTreeSource):
        return catalog
    top = toplevel(source.root)
    if top is None:
        raise CatalogError(
            f"{source.root} is not a git repository, so --fetch has nothing to fetch",
            rule="not-a-repo",
            fix="drop --fetch, or use the catalog's git URL",
        )
    branch = catalog.config.branch
    run_git(top, ["fetch", "--quiet", "origin", branch], timeout=300)
    subdir = source.root.resolve().relative_to(top.resolve()).as_posix()
    return Catalog(GitSource(top, rev_parse(top, "FETCH_HEAD"),
                             subdir="" if subdir == "." else subdir))


def _catalog_root(catalog: Catalog) -> Path | None:
    from envctl.catalog import WorkTreeSource

    return catalog.source.root if isinstance(catalog.source, WorkTreeSource) else None


# -- stores -----------------------------------------------------------------------------------


def open_store(store: Store | str | None = None, *, catalog: Catalog | None = None) -> Store | None:
    """The store to use: ``store``, else ``$ENVCTL_STORE``, else catalog.yaml's ``store:``."""
    from envctl.store import open_store as open_url
    from envctl.store.base import Store

    if isinstance(store, Store):
        return store
    if store:
        return open_url(store, where="--store")
    if os.environ.get(STORE_ENV):
        return open_url(os.environ[STORE_ENV], where=STORE_ENV)
    if catalog is not None:
        try:
            url = catalog.config.store
        except EnvctlError:
            return None
        if url:
            return open_url(url, base_dir=_catalog_root(catalog))
    return None


# -- resolving --------------------------------------------------------------------------------


def resolve_ref(
    ref: str | None = None,
    *,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    store: Store | str | None = None,
    platform: str | None = None,
    fetch: bool | None = None,
    pathspec: str | None = None,
    any_platform: bool = False,
) -> ResolvedRef:
    """What ``ref`` (``name``, ``name:tag``, ``req_id:full_id``) or ``pathspec`` means now.

    The catalog is asked first; without one (none found, none given) the store's
    alias and environment records answer. ``platform`` defaults to this machine's;
    with ``any_platform`` (exports) to the tag's first platform when this machine's
    is not among them.
    """
    from envctl.materialize import host_platform

    if (ref is None) == (pathspec is None):
        raise EnvctlError(
            "give exactly one of an environment reference and a pathspec",
            rule="invalid-arguments",
            fix="NAME[:TAG], REQ_ID:FULL_ID, or --pathspec Flow/run/step",
        )
    cat, cat_error = try_catalog(catalog, fetch)
    st = open_store(store, catalog=cat)
    if pathspec is not None:
        from envctl.runs import lookup_run

        run = lookup_run(pathspec, store=st)
        platform = platform or run.platform
        if platform != run.platform:
            raise NotFoundError(
                f"{pathspec} ran on {run.platform}, not {platform}",
                rule="unknown-platform",
                fix=f"drop --platform or use --platform {run.platform}",
            )
        found = _by_id(EnvId(run.req_id, run.full_id), cat, st, platform, cat_error)
        return _replace(found, asked=pathspec, pathspec=str(pathspec),
                        alias=found.alias or run.alias)
    assert ref is not None
    # Not stripped: a stray space or newline is refused with the name parser's own message.
    parsed = parse_ref(ref)
    if isinstance(parsed, EnvId):
        return _by_id(parsed, cat, st, platform, cat_error, asked=ref)
    fallback = any_platform and platform is None
    platform = platform or host_platform()
    try:
        if cat is not None:
            return _alias_from_catalog(cat, parsed, platform, ref, st, fallback=fallback)
        if st is not None:
            return _alias_from_store(st, parsed, platform, ref, fallback=fallback)
    except EnvctlError as exc:
        hint = short_id_error(ref) if exc.rule in _NOT_FOUND_RULES else None
        if hint is not None:
            raise hint from None
        raise
    assert cat_error is not None
    raise cat_error


#: The rules of "no such name or tag" (catalog) and "not published" (store).
_NOT_FOUND_RULES = frozenset({"not-found", "missing-object"})
_SHORT_ID = re.compile(r"[0-9a-f]{1,39}:[0-9a-f]{1,39}")


def short_id_error(ref: str) -> NotFoundError | None:
    """What to say when ``ref`` names nothing and looks like a shortened resolved id
    (``17f25f8d:65eecdc3``, as ``envctl envs`` prints): ids are only ever whole. None
    when it does not look like one (the caller's own not-found error stands)."""
    if not _SHORT_ID.fullmatch(ref):
        return None
    return NotFoundError(
        f"{ref} names no environment, and a resolved id must be whole: req_id:full_id, "
        "40 hex digits each (a shortened id is only for reading)",
        rule="short-id",
        fix="'envctl envs --full' (or --json) prints the whole ids of local environments, "
            "'envctl info --prefix DIR' the id of one, 'envctl show NAME:TAG' those of a tag",
    )


def _replace(found: ResolvedRef, **changes: Any) -> ResolvedRef:
    return replace(found, **changes)


def try_catalog(
    catalog: Catalog | str | os.PathLike[str] | None, fetch: bool | None
) -> tuple[Catalog | None, EnvctlError | None]:
    """The catalog, or (when none was named and none is found) the reason, for later."""
    try:
        return open_catalog(catalog, fetch=fetch), None
    except CatalogError as exc:
        if catalog is not None or os.environ.get("ENVCTL_CATALOG") or exc.rule != "not-a-catalog":
            raise
        return None, exc


def _read_lock(data: bytes, where: str) -> LockData:
    from envctl.resolve.lockfile import read_lock

    return read_lock(data, file=where)


def _check_lock(lock: LockData, platform: str, full_id: str, where: str) -> None:
    if platform not in lock.platforms and not lock.for_platform(platform):
        raise NotFoundError(
            f"{where} has no environment for {platform}",
            rule="unknown-platform",
            fix=f"use --platform with one of: {', '.join(lock.platforms) or '(none)'}",
        )
    actual = lock.full_id(platform)
    if actual != full_id:
        raise LockfileError(
            f"{where}: the packages for {platform} give full_id {actual}, but {full_id} is "
            "recorded",
            rule="lock-mismatch",
            fix="the lock and its record disagree: fetch the catalog again or report it",
        )


def _alias_from_catalog(
    cat: Catalog, alias: Alias, platform: str, asked: str, st: Store | None,
    *, fallback: bool = False,
) -> ResolvedRef:
    from envctl.spec import PointerTag

    concrete = cat.resolve(alias)
    if isinstance(cat.tag(concrete), PointerTag):
        raise CatalogError(
            f"{alias} points to {concrete}, which is a pointer too; pointers cannot chain",
            file=str(alias.name.env_file),
            tag=alias.tag,
            rule="pointer-chain",
            fix="point it at a concrete immutable tag",
        )
    mutable = cat.is_mutable(alias.tag)
    meta = cat.meta(concrete)
    if fallback and meta is not None and meta.platforms and platform not in meta.platforms:
        platform = sorted(meta.platforms)[0]
    return _concrete_from_catalog(cat, concrete, platform, asked, st, mutable=mutable)


def _concrete_from_catalog(
    cat: Catalog, concrete: Alias, platform: str, asked: str, st: Store | None,
    *, mutable: bool
) -> ResolvedRef:
    meta = cat.meta(concrete)
    data = cat.lock_bytes(concrete)
    if meta is None or data is None:
        raise NotFoundError(
            f"{concrete} is not locked yet (pending: CI resolves it after it is merged)",
            file=str(concrete.meta_path),
            tag=concrete.tag,
            rule="pending",
            fix=f"wait for CI, use another tag, or try it locally with 'envctl resolve "
            f"{concrete} --exclude-newer now'",
        )
    if platform not in meta.platforms:
        raise NotFoundError(
            f"{concrete} is not resolved for {platform}",
            file=str(concrete.meta_path),
            tag=concrete.tag,
            rule="unknown-platform",
            fix=f"use --platform with one of: {', '.join(meta.platforms)}",
        )
    recorded = meta.platforms[platform]
    lock = _read_lock(data, str(concrete.lock_path))
    _check_lock(lock, platform, recorded.full_id, str(concrete.lock_path))
    return ResolvedRef(
        asked=asked,
        alias=str(concrete),
        req_id=recorded.req_id,
        full_id=recorded.full_id,
        platform=platform,
        lock=lock,
        lock_sha256=hashlib.sha256(data).hexdigest(),
        lock_bytes=data,
        mutable=mutable,
        source="catalog",
        store=st,
    )


def _by_id(
    env_id: EnvId,
    cat: Catalog | None,
    st: Store | None,
    platform: str | None,
    cat_error: EnvctlError | None,
    *,
    asked: str | None = None,
) -> ResolvedRef:
    from envctl.describe import find_by_id

    asked = asked or str(env_id)
    if cat is not None:
        try:
            alias, id_platform = find_by_id(cat, env_id)
        except NotFoundError:
            if st is None:
                raise
        else:
            if platform is not None and platform != id_platform:
                raise NotFoundError(
                    f"{env_id} is an environment for {id_platform}, not {platform}",
                    rule="unknown-platform",
                    fix=f"drop --platform or use --platform {id_platform}",
                )
            found = _concrete_from_catalog(cat, alias, id_platform, asked, st, mutable=False)
            if (found.req_id, found.full_id) != (env_id.req_id, env_id.full_id):
                raise LockfileError(f"{alias} does not record {env_id}", rule="lock-mismatch")
            return found
    if st is not None:
        return _id_from_store(st, env_id, platform, asked)
    assert cat_error is not None
    raise cat_error


def _id_from_store(st: Store, env_id: EnvId, platform: str | None, asked: str) -> ResolvedRef:
    from envctl.config import KNOWN_PLATFORMS
    from envctl.store.base import MissingObjectError, env_record_key

    candidates = [platform] if platform else sorted(KNOWN_PLATFORMS)
    for candidate in candidates:
        if st.exists(env_record_key(candidate, env_id.req_id, env_id.full_id)):
            record = st.get_env_record(candidate, env_id.req_id, env_id.full_id)
            try:
                data = st.get_lock(record.lock_sha256)
            except MissingObjectError:
                break
            lock = _read_lock(data, st.describe(f"locks/{record.lock_sha256}.conda-lock.yml"))
            _check_lock(lock, candidate, env_id.full_id, f"the lock of {env_id}")
            return ResolvedRef(
                asked=asked,
                alias=record.alias,
                req_id=env_id.req_id,
                full_id=env_id.full_id,
                platform=candidate,
                lock=lock,
                lock_sha256=record.lock_sha256,
                lock_bytes=data,
                source="store",
                store=st,
            )
    raise NotFoundError(
        f"no environment {env_id}{' for ' + platform if platform else ''} in the store "
        f"{st.url}",
        rule="unknown-id",
        fix="check the id (and --platform); CI publishes environments after it locks them",
    )


def _alias_from_store(
    st: Store, alias: Alias, platform: str, asked: str, *, fallback: bool = False
) -> ResolvedRef:
    record = st.get_alias(str(alias.name), alias.tag)
    if fallback and platform not in record.platforms:
        platform = sorted(record.platforms)[0]
    target = record.platforms.get(platform)
    if target is None:
        raise NotFoundError(
            f"{alias} is not published for {platform}",
            rule="unknown-platform",
            fix=f"use --platform with one of: {', '.join(record.platforms)}",
        )
    found = _id_from_store(st, EnvId(target.req_id, target.full_id), platform, asked)
    concrete = f"{alias.name}:{record.target}" if record.target else f"{alias.name}:{alias.tag}"
    return _replace(found, alias=concrete, mutable=record.mutable)
