"""``envctl new`` (and the tag ``envctl extend`` writes): add a tag, creating the file of a
new environment."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envctl.catalog import Catalog
from envctl.edit.checks import (
    check_channels,
    check_conda,
    check_env_free,
    check_platforms,
    check_pypi,
    check_tag_free,
    open_catalog,
    with_place,
)
from envctl.edit.document import add_tag, load_doc, new_doc, save_doc
from envctl.edit.envyml import ImportedEnv, read_environment_yml
from envctl.errors import CatalogError, EnvctlError, InvalidNameError
from envctl.names import Alias, parse_alias, parse_tag
from envctl.spec import PointerTag

__all__ = ["new_tag"]


def new_tag(
    root: str | os.PathLike[str],
    alias: str,
    *,
    deps: Sequence[str] = (),
    pypi: Sequence[str] = (),
    platforms: Sequence[str] = (),
    channels: Sequence[str] = (),
    description: str | None = None,
    owners: Sequence[str] = (),
    from_file: str | os.PathLike[str] | None = None,
    extends: str | None = None,
) -> Path:
    """Add tag ``alias`` (``name:tag``) to its env file, creating the file for a new env.

    ``description`` and ``owners`` describe a new environment; for an existing one
    ``description`` becomes the tag's own and ``owners`` is refused (change owners in a
    reviewed edit of the file). Requirements are checked but written as given.

    ``extends`` (``v1`` for a tag of the same environment, ``team/env:v3`` for another
    one) makes a tag on top of that concrete tag: the base's lock is pinned and the
    dependencies given here are added. Such a tag inherits the base's channels and
    platforms, so giving its own (``channels``, ``platforms`` or those of ``from_file``)
    is refused. Returns the path of the file written.
    """
    root = Path(root)
    catalog, config = open_catalog(root)
    target = parse_alias(alias)
    if not target.explicit_tag:
        raise InvalidNameError(
            f"{alias!r} names no tag",
            rule="missing-tag",
            fix=f"give the tag to create, e.g. {target.name}:v1",
        )
    rel = str(target.name.env_file)
    base = _check_base(catalog, target, extends) if extends is not None else None
    doc = load_doc(root, target.name)
    if doc is None:
        check_env_free(catalog, target.name)
    else:
        check_tag_free(doc, target)
        if owners:
            raise CatalogError(
                f"{target.name} already exists; --owner only applies to a new environment",
                file=rel,
                tag=target.tag,
                rule="owners-existing",
                fix=f"edit 'owners:' in {rel} in its own reviewed change",
            )

    imported = read_environment_yml(from_file, config) if from_file is not None else ImportedEnv()
    all_channels = list(dict.fromkeys([*imported.channels, *channels]))
    all_platforms = list(dict.fromkeys([*imported.platforms, *platforms]))
    all_deps = [*imported.dependencies, *deps]
    all_pypi = [*imported.pypi, *pypi]
    if base is not None and (all_channels or all_platforms):
        raise CatalogError(
            f"{target} extends {base}, so it uses the base's channels and platforms; it "
            "cannot set its own",
            file=rel,
            tag=target.tag,
            rule="extends-inherits",
            fix="leave out channels and platforms (also those of an environment.yml), or "
            "write a tag that does not extend another",
        )
    check_channels(all_channels, config, file=rel, tag=target.tag)
    check_platforms(all_platforms, file=rel, tag=target.tag)
    place = os.fspath(from_file) if from_file is not None else rel
    check_conda(imported.dependencies, config, file=place, tag=target.tag)
    check_pypi(imported.pypi, file=place, tag=target.tag)
    check_conda(deps, config, file=rel, tag=target.tag)
    check_pypi(pypi, file=rel, tag=target.tag)
    if not all_deps and not all_pypi:
        raise CatalogError(
            f"{target} would have no dependencies" if base is None
            else f"{target} would add nothing to {base}",
            file=rel,
            tag=target.tag,
            rule="empty-tag",
            fix="add --dep SPEC, --pypi REQ or --from environment.yml" if base is None
            else "add --add SPEC or --pypi REQ (a pointer, not a copy, names the same env)",
        )

    spec: dict[str, Any] = {}
    if doc is not None and description:
        spec["description"] = description
    if extends is not None:
        spec["extends"] = extends
    if all_channels:
        spec["channels"] = all_channels
    if all_platforms:
        spec["platforms"] = all_platforms
    if all_deps:
        spec["dependencies"] = all_deps
    if all_pypi:
        spec["pypi"] = all_pypi
    if doc is None:
        doc = new_doc(root, target.name, description=description, owners=owners)
    add_tag(doc, target.tag, spec)
    save_doc(doc)
    return doc.path


def _check_base(catalog: Catalog, target: Alias, extends: str) -> Alias:
    """The tag ``extends`` names (``v1`` in the same env, or ``team/env:v3``): it must exist
    and be concrete, since the base's lock is what the new tag pins."""
    rel = str(target.name.env_file)
    try:
        base = parse_alias(extends) if ":" in extends else Alias(target.name, parse_tag(extends))
    except EnvctlError as exc:
        raise with_place(exc, file=rel, tag=target.tag) from None
    spec = catalog.tag(base)
    if isinstance(spec, PointerTag):
        raise CatalogError(
            f"{base} is a pointer; extends must name a concrete tag",
            file=rel,
            tag=target.tag,
            rule="extends-pointer",
            fix=f"extend the tag it points to: {spec.points_to}",
        )
    return base
