"""What an edit checks before it writes: free names and tags, known channels and platforms,
requirements that parse, and environments and tags that exist."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from envctl.catalog import Catalog, WorkTreeSource
from envctl.config import CatalogConfig, check_platform
from envctl.edit.document import EnvDoc, load_doc
from envctl.errors import CatalogError, EnvctlError, NotFoundError
from envctl.names import Alias, EnvName, canonical_key
from envctl.spec import normalize_conda_spec, normalize_pypi_requirement

__all__ = [
    "check_channels",
    "check_conda",
    "check_env_free",
    "check_not_near_duplicate",
    "check_platforms",
    "check_pypi",
    "check_tag_free",
    "did_you_mean",
    "is_pointer",
    "open_catalog",
    "require_doc",
    "unknown_channel",
    "with_place",
]


def open_catalog(root: Path) -> tuple[Catalog, CatalogConfig]:
    catalog = Catalog(WorkTreeSource(root))
    return catalog, catalog.config


def is_pointer(spec: Any) -> bool:
    return isinstance(spec, Mapping) and "points_to" in spec


def did_you_mean(word: str, choices: Iterable[object], otherwise: str) -> str:
    """A fix naming the closest of ``choices`` to ``word``, else ``otherwise``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=3)
    return f"did you mean {', '.join(close)}?" if close else otherwise


def require_doc(root: Path, name: EnvName, catalog: Catalog) -> EnvDoc:
    """The env file of an existing environment; a missing one is NotFoundError."""
    doc = load_doc(root, name)
    if doc is None:
        raise NotFoundError(
            f"no environment named {name}",
            file=str(name.env_file),
            fix=did_you_mean(str(name), catalog.env_names(),
                             f"create it with 'envctl new {name}:v1 --dep ...'"),
        )
    return doc


def check_tag_free(doc: EnvDoc, alias: Alias) -> None:
    if alias.tag in doc.tags:
        raise CatalogError(
            f"{alias} already exists",
            file=doc.rel,
            tag=alias.tag,
            rule="tag-exists",
            fix=f"use 'envctl bump {alias} --to NEWTAG'",
        )
    check_not_near_duplicate(doc, alias.tag)


def check_not_near_duplicate(doc: EnvDoc, tag: str) -> None:
    for existing in doc.tags:
        if canonical_key(str(existing)) == canonical_key(tag):
            raise CatalogError(
                f"tag {tag!r} is too close to the existing tag {str(existing)!r} "
                "('-', '_', '.' and case are treated alike)",
                file=doc.rel,
                tag=tag,
                rule="near-duplicate",
                fix=f"use {str(existing)!r}, or pick a clearly different tag",
            )


def check_env_free(catalog: Catalog, name: EnvName) -> None:
    for existing in catalog.env_names():
        if existing != name and canonical_key(str(existing)) == canonical_key(str(name)):
            raise CatalogError(
                f"environment {name} is too close to the existing {existing} "
                "('-', '_', '.' and case are treated alike)",
                file=str(name.env_file),
                rule="near-duplicate",
                fix=f"add a tag to {existing}, or pick a clearly different name",
            )


def with_place(exc: EnvctlError, *, file: str, tag: str | None) -> EnvctlError:
    """The same error, said about a file and tag (normalisers know neither)."""
    return type(exc)(
        exc.message, file=file, line=exc.line, tag=tag, rule=exc.rule, fix=exc.fix
    )


def unknown_channel(
    channel: str,
    config: CatalogConfig,
    *,
    file: str,
    tag: str | None = None,
    line: int | None = None,
    declare: str = "",
) -> CatalogError:
    """The error for a channel catalog.yaml does not declare; ``declare`` adds a hint on
    how to declare it (`` (name: URL)``)."""
    return CatalogError(
        f"channel {channel!r} is not declared in catalog.yaml",
        file=file,
        line=line,
        tag=tag,
        rule="unknown-channel",
        fix=f"declare it under 'channels:' in catalog.yaml{declare}, or use one of: "
        + (", ".join(config.channels) or "(none declared)"),
    )


def check_channels(channels: Iterable[str], config: CatalogConfig, *, file: str, tag: str) -> None:
    for channel in channels:
        if channel not in config.channels:
            raise unknown_channel(channel, config, file=file, tag=tag)


def check_platforms(platforms: Iterable[str], *, file: str, tag: str) -> None:
    for platform in platforms:
        try:
            check_platform(platform)
        except ValueError as exc:
            raise CatalogError(str(exc), file=file, tag=tag, rule="unknown-platform") from None


def check_conda(specs: Iterable[str], config: CatalogConfig, *, file: str, tag: str) -> None:
    _check_each(specs, lambda spec: normalize_conda_spec(spec, channels=config.channels),
                file=file, tag=tag)


def check_pypi(reqs: Iterable[str], *, file: str, tag: str) -> None:
    _check_each(reqs, normalize_pypi_requirement, file=file, tag=tag)


def _check_each(
    items: Iterable[str], normalize: Callable[[str], object], *, file: str, tag: str
) -> None:
    """Run ``normalize`` on each item; its error is said about ``file`` and ``tag``."""
    for item in items:
        try:
            normalize(item)
        except EnvctlError as exc:
            raise with_place(exc, file=file, tag=tag) from None
