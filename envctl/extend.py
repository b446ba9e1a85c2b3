"""``envctl extend BASE:TAG --add SPEC --name NEW:TAG``: a new tag on top of a locked base.

Metaflow's ``environment create --extend``: the new tag installs every package of the
base's lock exactly as locked (the resolver pins them) plus the additions; the base
is untouched. Here that is an ``extends:`` tag written into the catalog (a round-trip
edit that keeps comments), then resolved. If the resolve fails — an addition that
cannot live with the base's pins gets the resolver's explanation — the environment
file is put back as it was, so a refused extend leaves nothing to clean up.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl.errors import CatalogError, InvalidNameError
from envctl.names import Alias, parse_alias

if TYPE_CHECKING:
    from envctl.resolve.api import TagResult


@dataclass(frozen=True)
class ExtendResult:
    base: str  # the concrete base tag (a pointer is followed)
    new: str
    file: Path
    resolved: TagResult | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "new": self.new,
            "file": str(self.file),
            "resolve": self.resolved.to_dict() if self.resolved else None,
        }


def write_extends_tag(
    root: Path,
    base: str,
    new: str,
    *,
    add: Sequence[str] = (),
    pypi: Sequence[str] = (),
    description: str | None = None,
    owners: Sequence[str] = (),
) -> tuple[Alias, Alias, Path]:
    """Add tag ``new`` with ``extends: <base>`` and the additions; returns (base, new, file).

    Uses :mod:`envctl.edit`'s document helpers, so the file keeps its comments, order
    and indentation, and the same checks apply as for ``envctl new``.
    """
    from envctl import edit

    catalog, config = edit._open(root)
    base_alias = catalog.resolve(parse_alias(base))  # extends names a concrete tag
    catalog.tag(base_alias)  # a missing tag says so here, not after the write
    target = parse_alias(new)
    if not target.explicit_tag:
        raise InvalidNameError(
            f"{new!r} names no tag",
            rule="missing-tag",
            fix=f"give the tag to create, e.g. {target.name}:v1",
        )
    rel = str(target.name.env_file)
    if not add and not pypi:
        raise CatalogError(
            f"{target} would add nothing to {base_alias}",
            file=rel,
            tag=target.tag,
            rule="empty-tag",
            fix="add --add SPEC or --pypi REQ (a pointer, not a copy, names the same env)",
        )
    edit._check_conda(add, config, file=rel, tag=target.tag)
    edit._check_pypi(pypi, file=rel, tag=target.tag)
    doc = edit._load_doc(root, target.name)
    if doc is None:
        edit._check_env_free(catalog, target.name)
        doc = edit._new_doc(root, target.name, description=description, owners=owners)
        spec: dict[str, Any] = {}
    else:
        edit._check_tag_free(doc, target)
        spec = {"description": description} if description else {}
    spec["extends"] = base_alias.tag if base_alias.name == target.name else str(base_alias)
    if add:
        spec["dependencies"] = list(add)
    if pypi:
        spec["pypi"] = list(pypi)
    edit._add_tag(doc, target.tag, edit._block(spec))
    edit._save(doc)
    return base_alias, target, doc.path


def extend(
    root: str | os.PathLike[str],
    base: str,
    new: str,
    *,
    add: Sequence[str] = (),
    pypi: Sequence[str] = (),
    description: str | None = None,
    owners: Sequence[str] = (),
    resolve: bool = True,
    resolved_at: datetime,
    resolved_by: str,
    exclude_newer: Any = None,
) -> ExtendResult:
    """Write the extending tag and (unless ``resolve=False``) resolve it; see the module doc.

    ``exclude_newer`` is passed to the resolver: the new tag is not committed yet, so
    its commit time is not known (CI re-resolves it with that time once merged).
    """
    root = Path(root)
    target = parse_alias(new)
    path = root / str(target.name.env_file)
    before = path.read_bytes() if path.is_file() else None
    base_alias, target, written = write_extends_tag(
        root, base, new, add=add, pypi=pypi, description=description, owners=owners
    )
    if not resolve:
        return ExtendResult(str(base_alias), str(target), written, None)
    from envctl.resolve.api import resolve_tag

    try:
        result = resolve_tag(
            root,
            target,
            resolved_at=resolved_at,
            resolved_by=resolved_by,
            exclude_newer=exclude_newer,
        )
    except BaseException:
        # Put the catalog back: a refused extend must not leave a tag that cannot resolve.
        if before is None:
            written.unlink(missing_ok=True)
        else:
            written.write_bytes(before)
        raise
    return ExtendResult(str(base_alias), str(target), written, result)
