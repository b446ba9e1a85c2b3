"""``envctl extend BASE:TAG --add SPEC --name NEW:TAG``: a new tag on top of a locked base.

Metaflow's ``environment create --extend``: the new tag installs every package of the
base's lock exactly as locked (the resolver pins them) plus the additions; the base
is untouched. Here that is an ``extends:`` tag written into the catalog (a round-trip
edit that keeps comments), then resolved. If the resolve fails — an addition that
cannot live with the base's pins gets the resolver's explanation — the environment
file is put back as it was, so a refused extend leaves nothing to clean up.

The resolve is a trial: its locks (and those of a base that had none yet) go to a
throw-away folder, so the work tree gains the environment file and nothing else. Only CI
commits locks; a lock committed by hand is refused at push (``unsigned-lock``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envctl.names import parse_alias

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

    The tag is written by :func:`envctl.edit.new_tag` with ``extends=``, so the file keeps
    its comments, order and indentation, and the same checks apply as for ``envctl new``
    (an ``owners`` list is only for a new environment).

    ``exclude_newer`` is passed to the resolver: the new tag is not committed yet, so
    its commit time is not known (CI re-resolves it with that time once merged).
    """
    from envctl.catalog import Catalog, WorkTreeSource
    from envctl.edit import new_tag

    root = Path(root)
    target = parse_alias(new)
    catalog = Catalog(WorkTreeSource(root))
    base_alias = catalog.resolve(parse_alias(base))  # extends names a concrete tag
    catalog.tag(base_alias)  # a missing tag says so here, not after the write
    path = root / str(target.name.env_file)
    before = path.read_bytes() if path.is_file() else None
    written = new_tag(
        root,
        new,
        deps=add,
        pypi=pypi,
        description=description,
        owners=owners,
        extends=base_alias.tag if base_alias.name == target.name else str(base_alias),
    )
    if not resolve:
        return ExtendResult(str(base_alias), str(target), written, None)
    from envctl.resolve.api import resolve_tag

    try:
        with tempfile.TemporaryDirectory(prefix="envctl-extend-") as scratch:
            result = resolve_tag(
                root,
                target,
                resolved_at=resolved_at,
                resolved_by=resolved_by,
                exclude_newer=exclude_newer,
                output=Path(scratch),
            )
    except BaseException:
        # Put the catalog back: a refused extend must not leave a tag that cannot resolve.
        if before is None:
            written.unlink(missing_ok=True)
        else:
            written.write_bytes(before)
        raise
    result = replace(
        result, lock_path=None, meta_path=None,
        message="resolved as a trial: no lock written (CI locks the tag once it is merged)",
    )
    return ExtendResult(str(base_alias), str(target), written, result)
