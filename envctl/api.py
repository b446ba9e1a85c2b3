"""The Python API for consumers: flows, notebooks, services, and envctl's own CLI.

::

    from envctl import api

    ref = api.resolve_ref("ranking/base:stable")        # what the name means now
    print(ref.alias, ref.env_id)                        # pin runs with the id
    prefix = api.create("ranking/base:v3", name="ranking-v3")
    api.run("ranking/base:v3", ["python", "-c", "import numpy"])

Lookup (catalogs, git URLs, the store, pathspecs) is :mod:`envctl.lookup`; building
the prefix is :mod:`envctl.materialize`. Every function returns values and raises
:class:`~envctl.errors.EnvctlError`; nothing prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from envctl.activate import activation_env
from envctl.errors import EnvctlError, NotFoundError
from envctl.lookup import ResolvedRef, open_catalog, open_store, try_catalog
from envctl.lookup import resolve_ref as _lookup_ref

if TYPE_CHECKING:
    from envctl.catalog import Catalog
    from envctl.describe import EnvView
    from envctl.materialize import MaterializeResult, PrefixRecord, Reporter
    from envctl.store.base import Store

__all__ = [
    "ResolvedRef",
    "activation_env",
    "create",
    "info",
    "install",
    "open_catalog",
    "open_store",
    "resolve_ref",
    "run",
    "show",
    "target_prefix",
]


# -- resolving ----------------------------------------------------------------------------------


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
    """What a reference means now (:func:`envctl.lookup.resolve_ref`), with the catalog's
    ``retired_policy`` applied: a retired tag warns (``RetiredTagWarning``) or is refused."""
    from envctl.lifecycle.retire import check_retired

    # No catalog found and none asked for: lookup falls back to the store.
    cat, _ = try_catalog(catalog, fetch)
    resolved = _lookup_ref(ref, catalog=cat if cat is not None else catalog, store=store,
                           platform=platform, fetch=fetch, pathspec=pathspec,
                           any_platform=any_platform)
    check_retired(resolved, cat)
    return resolved


# -- creating -----------------------------------------------------------------------------------


def target_prefix(
    resolved: ResolvedRef, *, prefix: str | os.PathLike[str] | None = None,
    name: str | None = None, home: Path | None = None,
) -> Path:
    """``prefix``, or the named local env ``name``, or the cache of env ids."""
    from envctl.local_envs import by_id_prefix, named_prefix

    if prefix is not None and name is not None:
        raise EnvctlError(
            "give --prefix or --name, not both",
            rule="invalid-arguments",
            fix="--prefix DIR installs anywhere; --name LOCAL installs under $ENVCTL_HOME/envs",
        )
    if prefix is not None:
        return Path(os.path.abspath(os.path.expanduser(os.fspath(prefix))))
    if name is not None:
        return named_prefix(name, home)
    return by_id_prefix(resolved.full_id, home)


def install(
    resolved: ResolvedRef,
    *,
    prefix: str | os.PathLike[str] | None = None,
    name: str | None = None,
    store: Store | str | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
    home: Path | None = None,
) -> MaterializeResult:
    """Materialise a resolved reference (see :func:`envctl.materialize.materialize`)."""
    from envctl import __version__
    from envctl.materialize import PrefixRecord, materialize

    st = open_store(store) if store is not None else resolved.store
    record = PrefixRecord(
        **resolved.identity(),
        pathspec=resolved.pathspec,
        created_at=datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        envctl_version=__version__,
    )
    return materialize(
        resolved.lock,
        resolved.platform,
        target_prefix(resolved, prefix=prefix, name=name, home=home),
        record=record,
        store=st,
        home=home,
        force=force,
        reporter=reporter,
    )


def create(
    ref: str | None = None,
    *,
    prefix: str | os.PathLike[str] | None = None,
    name: str | None = None,
    platform: str | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    store: Store | str | None = None,
    fetch: bool | None = None,
    pathspec: str | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
) -> Path:
    """Create the environment ``ref`` (or ``pathspec``) names; returns its prefix.

    Without ``prefix`` or ``name`` it goes to the shared cache of environments by id,
    where a second call finds it ready.
    """
    resolved = resolve_ref(ref, catalog=catalog, store=store, platform=platform, fetch=fetch,
                           pathspec=pathspec)
    return install(resolved, prefix=prefix, name=name, force=force, reporter=reporter).prefix


# -- looking ------------------------------------------------------------------------------------


def show(
    ref: str | None = None,
    *,
    pathspec: str | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    store: Store | str | None = None,
    platform: str | None = None,
    fetch: bool | None = None,
) -> EnvView:
    """What a name, id or pathspec means in the catalog (``envctl show``'s data)."""
    from envctl.describe import show_environment

    cat = open_catalog(catalog, fetch=fetch)
    if pathspec is not None:
        from envctl.runs import lookup_run

        run = lookup_run(pathspec, store=open_store(store, catalog=cat))
        return show_environment(cat, run.env_id, platform=platform)
    if ref is None:
        raise EnvctlError("give an environment reference or a pathspec", rule="invalid-arguments")
    return show_environment(cat, ref, platform=platform)


def info(
    *, prefix: str | os.PathLike[str] | None = None, name: str | None = None
) -> PrefixRecord:
    """The alias and ids recorded inside a created environment."""
    from envctl.local_envs import find_named
    from envctl.materialize import read_record

    if (prefix is None) == (name is None):
        raise EnvctlError("give exactly one of --prefix and --name", rule="invalid-arguments")
    if name is not None:
        found = find_named(name).record
        assert found is not None
        return found
    path = Path(os.path.expanduser(os.fspath(prefix)))  # type: ignore[arg-type]
    record = read_record(path) if path.is_dir() else None
    if record is None:
        raise NotFoundError(
            f"{path} is not an environment envctl created",
            file=str(path),
            rule="not-an-env",
            fix="envctl records conda-meta/envctl.json in every environment it creates",
        )
    return record


# -- running ------------------------------------------------------------------------------------


def run(
    ref: str | None,
    argv: Sequence[str],
    *,
    name: str | None = None,
    prefix: str | os.PathLike[str] | None = None,
    catalog: Catalog | str | os.PathLike[str] | None = None,
    store: Store | str | None = None,
    platform: str | None = None,
    fetch: bool | None = None,
    env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
) -> int:
    """Run ``argv`` inside the environment, creating it first if needed; its exit code.

    ``ref`` alone uses the shared cache of environments by id; with ``name``/``prefix``
    the env is created there if missing. Without ``ref``, ``name``/``prefix`` must
    exist already.
    """
    if not argv:
        raise EnvctlError("no command to run", rule="invalid-arguments",
                          fix="put the command after '--': envctl run NAME:TAG -- python -V")
    if ref is None:
        from envctl.local_envs import named_prefix

        info(prefix=prefix, name=name)  # raises unless it is a complete envctl environment
        path = (Path(os.path.abspath(os.fspath(prefix))) if prefix is not None
                else named_prefix(name))  # type: ignore[arg-type]
    else:
        resolved = resolve_ref(ref, catalog=catalog, store=store, platform=platform, fetch=fetch)
        path = install(resolved, prefix=prefix, name=name, reporter=reporter).prefix
    from envctl.activate import run_activated

    return run_activated(path, argv, env)
