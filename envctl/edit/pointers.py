"""``envctl tag``: create or move a pointer (a mutable tag) to an immutable tag."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from envctl.config import CatalogConfig
from envctl.edit.checks import (
    check_not_near_duplicate,
    did_you_mean,
    is_pointer,
    open_catalog,
    require_doc,
)
from envctl.edit.document import EnvDoc, add_tag, save_doc
from envctl.edit.yamlstyle import quoted
from envctl.errors import NotFoundError, PolicyError
from envctl.names import Alias, EnvName, parse_alias, parse_tag

__all__ = ["point", "set_pointer"]


def point(doc: EnvDoc, config: CatalogConfig, name: EnvName, tag: str, target: str) -> str | None:
    """Make ``tag`` point at ``target`` in ``doc``; return the old target (None if new)."""
    alias = Alias(name, tag)
    if not config.is_mutable(tag):
        raise PolicyError(
            f"{alias} cannot be a pointer: {tag!r} is not a mutable tag",
            file=doc.rel,
            tag=tag,
            rule="immutable-tag",
            fix="pointers must be mutable tags such as stable; add the pattern to "
            "mutable_tags",
        )
    tags = doc.tags
    if target not in tags:
        raise NotFoundError(
            f"{name} has no tag {target!r} to point at",
            file=doc.rel,
            tag=tag,
            rule="missing-target",
            fix=did_you_mean(target, tags, f"{name} has tags: {', '.join(str(t) for t in tags)}"),
        )
    spec = tags[target]
    if is_pointer(spec):
        raise PolicyError(
            f"{name}:{target} is itself a pointer (to {spec['points_to']}); pointers do not chain",
            file=doc.rel,
            tag=tag,
            rule="pointer-chain",
            fix=f"point at the tag it names: --points-to {spec['points_to']}",
        )
    if config.is_mutable(target):
        raise PolicyError(
            f"{name}:{target} is a mutable tag; a pointer names an immutable tag",
            file=doc.rel,
            tag=tag,
            rule="mutable-target",
            fix="point at an immutable tag such as v1",
        )
    if isinstance(spec, Mapping) and spec.get("retired"):
        raise PolicyError(
            f"{name}:{target} is retired",
            file=doc.rel,
            tag=tag,
            rule="retired-target",
            fix="point at a tag that is not retired",
        )
    if tag in tags:
        current = tags[tag]
        if not is_pointer(current):
            raise PolicyError(
                f"{alias} is a rolling spec, not a pointer",
                file=doc.rel,
                tag=tag,
                rule="not-a-pointer",
                fix=f"to replace the spec with a pointer, edit {doc.rel} by hand "
                f"('{tag}: {{points_to: {target}}}')",
            )
        old = str(current["points_to"])
        if old != target:
            current["points_to"] = quoted(target)
        return old
    check_not_near_duplicate(doc, tag)
    add_tag(doc, tag, {"points_to": target})
    return None


def set_pointer(root: str | os.PathLike[str], alias: str, points_to: str) -> tuple[str | None, str]:
    """Create or move the pointer ``alias`` (a mutable tag) to ``points_to`` (an immutable
    tag of the same environment). Returns ``(old target or None, new target)``; the file
    is not rewritten when the pointer already points there."""
    root = Path(root)
    catalog, config = open_catalog(root)
    pointer = parse_alias(alias)
    target = parse_tag(points_to)
    doc = require_doc(root, pointer.name, catalog)
    old = point(doc, config, pointer.name, pointer.tag, target)
    if old != target:
        save_doc(doc)
    return old, target
