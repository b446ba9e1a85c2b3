"""Logical channel names -> URLs, and keeping credentials out of locks and logs.

``catalog.yaml`` maps each logical channel name to one of:

- a URL (``https://...``, ``file:///...``, ``s3://...``): used as is;
- a path: absolute, or relative to the catalog root (the demo keeps its channel
  beside the catalog), turned into a ``file://`` URL;
- a bare conda channel name (``conda-forge``) that is not a directory of the
  catalog: rattler's usual ``https://conda.anaconda.org/<name>``.

Credentials come from the environment (``${VAR}`` in the URL, expanded only
when solving) or from rattler's auth storage / netrc; :func:`redact` removes
user info, ``/t/<token>`` segments and query strings from every URL envctl
writes or prints.

Standard library only: the hook and lint use this too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from envctl.errors import CatalogError

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_TOKEN_SEGMENT = re.compile(r"/t/[^/]+(?=/|$)")


@dataclass(frozen=True)
class ChannelRef:
    """One channel of a request: its logical name, the URL to solve with, the URL to record."""

    name: str
    url: str  # credentials expanded: only ever handed to rattler
    public_url: str  # no credentials: what locks, metas and messages show

    def __repr__(self) -> str:  # never show ``url``: it may hold a token
        return f"ChannelRef(name={self.name!r}, public_url={self.public_url!r})"


def redact(url: str) -> str:
    """``url`` without user info, ``/t/<token>`` segments, query or fragment."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    path = _TOKEN_SEGMENT.sub("", parts.path)
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _expand(value: str, name: str, environ: Mapping[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        var = match.group(1) or match.group(2)
        if not environ.get(var):
            raise CatalogError(
                f"channel {name!r} needs the environment variable {var}, which is not set",
                file="catalog.yaml",
                rule="channel-credentials",
                fix=f"export {var} (credentials never go into catalog.yaml or a lock)",
            )
        return environ[var]

    return _VAR.sub(sub, value)


def channel_url(name: str, value: str, root: Path | None, *, environ: Mapping[str, str]) -> str:
    """The URL rattler should read channel ``name`` from (see the module doc)."""
    if "://" in value:
        return _expand(value, name, environ).rstrip("/")
    path = Path(os.path.expanduser(value))
    looks_like_path = value.startswith(("/", ".", "~")) or "/" in value or "\\" in value
    if not path.is_absolute():
        if root is None:
            raise CatalogError(
                f"channel {name!r} is a relative path ({value}) but no catalog root is known",
                file="catalog.yaml",
                rule="relative-channel",
                fix="use an absolute URL, or resolve from inside the catalog",
            )
        path = root / path
    if path.is_dir():
        return path.resolve().as_uri()
    if looks_like_path:
        raise CatalogError(
            f"channel {name!r} points at {path}, which is not a directory",
            file="catalog.yaml",
            rule="missing-channel",
            fix="build or copy the channel there, or fix the path (relative to the catalog root)",
        )
    return f"{DEFAULT_CHANNEL_ALIAS}/{value}"


def channel_refs(
    names: Sequence[str],
    configured: Mapping[str, str],
    root: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> list[ChannelRef]:
    """:class:`ChannelRef` for each logical name, in the order given (the priority)."""
    env = os.environ if environ is None else environ
    refs = []
    for name in names:
        if name not in configured:
            raise CatalogError(
                f"channel {name!r} is not declared in catalog.yaml",
                file="catalog.yaml",
                rule="unknown-channel",
                fix=f"declare it under 'channels:' or use one of: {', '.join(configured)}",
            )
        url = channel_url(name, configured[name], root, environ=env)
        refs.append(ChannelRef(name=name, url=url, public_url=redact(url)))
    return refs


def _norm(url: str) -> str:
    return redact(url).rstrip("/") + "/"


def channel_of(url: str, refs: Sequence[ChannelRef]) -> ChannelRef | None:
    """The channel a package or channel URL belongs to (longest matching prefix)."""
    target = _norm(url)
    best: ChannelRef | None = None
    for ref in refs:
        base = _norm(ref.public_url)
        if target.startswith(base) and (best is None or len(base) > len(_norm(best.public_url))):
            best = ref
    return best
