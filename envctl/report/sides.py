"""What one side of ``envctl diff`` names, turned into a lock.

A side is written as one of:

- ``NAME:TAG`` (or ``NAME`` for ``:latest``): the tag's lock; a pointer is followed;
- ``REQ_ID:FULL_ID``: the one platform that id names, found through the metas;
- either of those with ``@REV``: read at that git revision of the catalog instead of
  the work tree (``ranking/base:stable@main``, ``ranking/base:stable@HEAD~3``). Names
  never contain ``@``, so everything after the first ``@`` is the revision;
- the path of a lockfile (an existing file, or anything ending in ``.yml``/``.yaml``
  without a ``:``), including conda-lock files other tools wrote.

Revisions are read with :class:`~envctl.catalog.GitSource`: no checkout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from envctl.catalog import Catalog
from envctl.errors import EnvctlError, InvalidNameError, NotFoundError
from envctl.names import Alias, EnvId, parse_ref
from envctl.resolve.lockfile import LockData
from envctl.spec import ConcreteTag, PointerTag, base_alias

__all__ = ["CatalogOpener", "Side", "load_side", "lock_of", "predecessor", "split_rev"]

#: Opens the catalog at a git revision (None: the work tree).
CatalogOpener = Callable[[str | None], Catalog]

_LOCK_SUFFIXES = (".yml", ".yaml", ".lock")


@dataclass(frozen=True)
class Side:
    label: str
    lock: LockData
    platforms: tuple[str, ...] | None = None  # an id restricts a side to its platform
    alias: Alias | None = None  # the concrete tag, when the side is a catalog entry
    rev: str | None = None


def split_rev(text: str) -> tuple[str, str | None]:
    """``name:tag@rev`` -> (``name:tag``, ``rev``); no ``@`` -> (text, None)."""
    ref, at, rev = text.partition("@")
    if at and not rev:
        raise EnvctlError(f"{text!r} ends with '@' but names no revision", rule="usage",
                          fix="write NAME:TAG@REV, e.g. ranking/base:stable@main")
    return ref, (rev if at else None)


def is_lock_path(text: str) -> bool:
    if ":" in text or "@" in text:
        return Path(text).is_file()
    return Path(text).is_file() or text.endswith(_LOCK_SUFFIXES)


def lock_of(catalog: Catalog, alias: Alias) -> LockData:
    """The lock of a concrete tag; a clear error while it is pending."""
    from envctl.report.locks import read_any_lock

    data = catalog.lock_bytes(alias)
    if data is None:
        raise NotFoundError(
            f"{alias} has no lock yet (pending) in {catalog.source.label}",
            file=str(alias.lock_path),
            tag=alias.tag,
            rule="no-lock",
            fix=f"resolve it with 'envctl resolve {alias}', or wait for CI to lock it",
        )
    return read_any_lock(data, file=str(alias.lock_path))


def load_side(open_at: CatalogOpener, text: str, default_rev: str | None = None, *,
              all_sides: Sequence[str] = ()) -> Side:
    """The lock ``text`` names (see the module docstring). ``default_rev`` applies when the
    text carries no ``@REV`` of its own. A side that is no name but a git revision
    (``HEAD~3``, ``main``) is refused with the ``--rev`` form to use (``all_sides``: every
    side given, to write it out whole)."""
    from envctl.report.locks import read_lock_path

    if is_lock_path(text):
        return Side(label=text, lock=read_lock_path(Path(text)))
    ref_text, rev = split_rev(text)
    rev = rev if rev is not None else default_rev
    catalog = open_at(rev)
    at = f"@{rev}" if rev else ""
    try:
        return _catalog_side(catalog, parse_ref(ref_text), rev, at)
    except (InvalidNameError, NotFoundError) as exc:
        if ref_text != text or exc.rule not in ("invalid-name", "invalid-tag", "not-found") \
                or not is_revision(open_at, text):
            raise
        raise _revision_error(open_at, text, all_sides or (text,)) from None


def _catalog_side(catalog: Catalog, ref: Alias | EnvId, rev: str | None, at: str) -> Side:
    from envctl.describe import find_by_id

    if isinstance(ref, EnvId):
        alias, platform = find_by_id(catalog, ref)
        label = f"{ref.req_id[:8]}:{ref.full_id[:8]}{at} ({alias} {platform})"
        return Side(label, lock_of(catalog, alias), (platform,), alias, rev)
    concrete = catalog.resolve(ref)
    if isinstance(catalog.tag(concrete), PointerTag):
        raise EnvctlError(f"{ref} points to {concrete}, which is a pointer too",
                          rule="pointer-chain", fix="'envctl lint' explains how to fix it")
    label = f"{ref}{at}"
    if concrete != ref:
        label += f" (→{concrete.tag})"
    return Side(label, lock_of(catalog, concrete), None, concrete, rev)


def is_revision(open_at: CatalogOpener, text: str) -> bool:
    """Whether ``text`` reads as a git revision: git's ``~``/``^`` suffixes, or a name git
    resolves to a commit (``main``, a sha)."""
    if "~" in text or "^" in text:
        return True
    try:
        open_at(text)
    except EnvctlError:
        return False
    return True


def _revision_error(open_at: CatalogOpener, text: str, sides: Sequence[str]) -> EnvctlError:
    if all(is_revision(open_at, s) for s in sides):
        use = "envctl diff " + " ".join(f"--rev {_quote(s)}" for s in sides)
        fix = f"compare the whole catalog at those revisions: {use}"
    else:
        fix = f"name a tag at that revision: NAME:TAG@{text}, or use --rev {_quote(text)}"
    return EnvctlError(f"{text!r} is a git revision, not an environment or a lockfile",
                       rule="usage", fix=fix)


def _quote(text: str) -> str:
    """Shell-quoted only when needed: ``HEAD~3`` and ``main^`` are safe inside a word."""
    import re
    import shlex

    return text if re.fullmatch(r"[\w@%+=:,./^-][\w@%+=:,./~^-]*", text) else shlex.quote(text)


def predecessor(catalog: Catalog, alias: Alias) -> Alias | None:
    """The tag ``alias`` was most likely bumped from, to diff a new version against.

    Its ``extends`` base when it has one (what it adds to the base is the change);
    otherwise the nearest immutable concrete tag declared before it in the same file
    (``envctl bump`` appends new tags, so file order is version order). None for the
    first version, a pointer, or a mutable rolling tag (whose predecessor is its own
    previous lock, in git history).
    """
    try:
        spec = catalog.tag(alias)
    except EnvctlError:
        return None
    if not isinstance(spec, ConcreteTag) or catalog.is_mutable(alias.tag):
        return None
    if spec.extends:
        return base_alias(alias, spec.extends)
    previous = None
    for tag, other in catalog.env(alias.name).tags.items():
        if tag == alias.tag:
            return previous
        if isinstance(other, ConcreteTag) and not catalog.is_mutable(tag):
            previous = Alias(alias.name, tag)
    return None
