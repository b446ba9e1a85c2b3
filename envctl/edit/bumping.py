"""``envctl bump``: copy a tag to a new immutable tag with changed dependencies."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.catalog import Catalog
from envctl.edit.checks import (
    check_conda,
    check_pypi,
    check_tag_free,
    did_you_mean,
    is_pointer,
    open_catalog,
    require_doc,
)
from envctl.edit.document import EnvDoc, add_tag, save_doc
from envctl.edit.pointers import point
from envctl.edit.yamlstyle import to_plain
from envctl.errors import CatalogError, NotFoundError, PolicyError
from envctl.names import DEFAULT_TAG, Alias, parse_alias, parse_tag

__all__ = ["BumpResult", "PointerMove", "bump"]


@dataclass(frozen=True)
class PointerMove:
    tag: str
    old: str | None
    new: str


@dataclass(frozen=True)
class BumpResult:
    file: Path
    source: str  # the concrete tag copied, after following a pointer: "team/env:v1"
    new: str  # "team/env:v2"
    replaced: tuple[tuple[str, str], ...] = ()
    added: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    moved: tuple[PointerMove, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "source": self.source,
            "new": self.new,
            "replaced": [{"old": old, "new": new} for old, new in self.replaced],
            "added": list(self.added),
            "dropped": list(self.dropped),
            "moved": [{"tag": m.tag, "from": m.old, "to": m.new} for m in self.moved],
        }


def _conda_name(spec: str) -> str | None:
    from rattler import MatchSpec  # lazy: rattler costs ~40 ms to import

    try:
        name = MatchSpec(spec.strip()).name
    except Exception:  # rattler's own parse error; such a spec matches nothing
        return None
    return None if name is None else name.normalized


def _pypi_name(req: str) -> str | None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        return canonicalize_name(Requirement(req.strip()).name)
    except InvalidRequirement:
        return None


def _resolve_source(doc: EnvDoc, catalog: Catalog, source: Alias) -> str:
    """The concrete tag to copy: ``source`` itself, or the tag its pointer names."""
    tag = source.tag
    if tag not in doc.tags and tag == DEFAULT_TAG and not source.explicit_tag:
        tag = catalog.resolve(source).tag  # the newest locked immutable tag
    known = ", ".join(str(t) for t in doc.tags)
    if tag not in doc.tags:
        raise NotFoundError(
            f"{source.name} has no tag {tag!r}",
            file=doc.rel,
            tag=tag,
            fix=did_you_mean(tag, doc.tags, f"{source.name} has tags: {known}"),
        )
    spec = doc.tags[tag]
    if is_pointer(spec):
        target = str(spec["points_to"])
        if target not in doc.tags:
            raise NotFoundError(
                f"{source.name}:{tag} points to {target!r}, which does not exist",
                file=doc.rel,
                tag=tag,
                rule="missing-target",
                fix=f"bump from an existing tag: {known}",
            )
        return target
    return tag


def _apply(
    current: list[str], wanted: Sequence[str], name_of: Callable[[str], str | None]
) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Replace entries with the same package name (the first in place, others removed),
    append the rest. Returns (new list, replaced pairs, added)."""
    out = list(current)
    replaced: list[tuple[str, str]] = []
    added: list[str] = []
    for spec in wanted:
        key = name_of(spec)
        hits = [i for i, existing in enumerate(out) if key is not None and name_of(existing) == key]
        if not hits:
            out.append(spec)
            added.append(spec)
            continue
        replaced.append((out[hits[0]], spec))
        out[hits[0]] = spec
        for i in reversed(hits[1:]):
            replaced.append((out.pop(i), spec))
    return out, replaced, added


def _drop(
    conda: list[str], pip: list[str], drop: Sequence[str], *, doc: EnvDoc, source: Alias,
    new: Alias, extends: bool,
) -> tuple[list[str], list[str], list[str]]:
    """Remove the conda and PyPI entries named in ``drop``; each name must match one.
    Returns (conda, pip, dropped)."""
    dropped: list[str] = []
    for name in drop:
        c_key, p_key = _conda_name(name), _pypi_name(name)
        gone = [d for d in conda if c_key is not None and _conda_name(d) == c_key]
        gone += [r for r in pip if p_key is not None and _pypi_name(r) == p_key]
        if not gone:
            own = ", ".join([*conda, *pip]) or "(none)"
            raise NotFoundError(
                f"{source} has no dependency named {name!r} to drop",
                file=doc.rel,
                tag=new.tag,
                rule="not-found",
                fix=f"its own dependencies are: {own}"
                + ("; packages of the tag it extends cannot be dropped" if extends else ""),
            )
        conda = [d for d in conda if d not in gone]
        pip = [r for r in pip if r not in gone]
        dropped.extend(gone)
    return conda, pip, dropped


def bump(
    root: str | os.PathLike[str],
    alias: str,
    to: str,
    *,
    deps: Sequence[str] = (),
    drop: Sequence[str] = (),
    pypi: Sequence[str] = (),
    move: Sequence[str] = (),
) -> BumpResult:
    """Copy the concrete tag ``alias`` (following a pointer) to the new immutable tag ``to``.

    ``deps`` replace a dependency with the same conda package name or are appended,
    ``pypi`` likewise by PyPI name; ``drop`` removes conda and PyPI entries by name;
    ``move`` points those mutable tags at the new tag in the same write. ``extends``,
    channels, platforms and the rest are kept; ``description`` and ``retired`` are not.
    """
    root = Path(root)
    catalog, config = open_catalog(root)
    source = parse_alias(alias)
    new = Alias(source.name, parse_tag(to))
    doc = require_doc(root, source.name, catalog)
    from_tag = _resolve_source(doc, catalog, source)
    check_tag_free(doc, new)
    if config.is_mutable(new.tag):
        raise PolicyError(
            f"{new.tag!r} is a mutable tag; bump creates immutable tags",
            file=doc.rel,
            tag=new.tag,
            rule="mutable-bump",
            fix=f"bump to an immutable tag (such as v2) and add '--move {new.tag}'; "
            "write a rolling spec with 'envctl new'",
        )

    spec = to_plain(doc.tags[from_tag])
    spec.pop("retired", None)
    spec.pop("description", None)
    conda, pip, dropped = _drop(
        list(spec.get("dependencies") or []), list(spec.get("pypi") or []), drop,
        doc=doc, source=Alias(source.name, from_tag), new=new, extends=bool(spec.get("extends")),
    )
    check_conda(deps, config, file=doc.rel, tag=new.tag)
    check_pypi(pypi, file=doc.rel, tag=new.tag)
    conda, replaced, added = _apply(conda, deps, _conda_name)
    pip, p_replaced, p_added = _apply(pip, pypi, _pypi_name)

    for key, values in (("dependencies", conda), ("pypi", pip)):
        if values:
            spec[key] = values
        else:
            spec.pop(key, None)
    if not conda and not pip and not spec.get("extends"):
        raise CatalogError(
            f"{new} would have no dependencies",
            file=doc.rel,
            tag=new.tag,
            rule="empty-tag",
            fix="keep at least one dependency, or add one with --dep",
        )

    add_tag(doc, new.tag, spec)
    moves = [
        PointerMove(tag, point(doc, config, source.name, parse_tag(tag), new.tag), new.tag)
        for tag in dict.fromkeys(move)
    ]
    save_doc(doc)
    return BumpResult(
        file=doc.path,
        source=str(Alias(source.name, from_tag)),
        new=str(new),
        replaced=tuple(replaced + p_replaced),
        added=tuple(added + p_added),
        dropped=tuple(dropped),
        moved=tuple(moves),
    )
