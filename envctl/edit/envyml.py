"""Read a conda ``environment.yml`` for ``envctl new --from``.

Channels become the catalog's logical names (by name or URL), a nested ``pip:`` list
becomes ``pypi``, conda-lock's ``platforms`` are kept; ``name`` and ``prefix`` are
ignored and any other key is refused rather than silently dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from envctl import yamlio
from envctl.config import CatalogConfig
from envctl.edit.checks import unknown_channel
from envctl.errors import CatalogError

__all__ = ["ImportedEnv", "read_environment_yml"]


@dataclass(frozen=True)
class ImportedEnv:
    """What a conda ``environment.yml`` asks for, with channels as the catalog's names."""

    channels: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    pypi: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()


_ENV_YML_KEYS = ("name", "prefix", "channels", "dependencies", "platforms")


def read_environment_yml(path: str | os.PathLike[str], config: CatalogConfig) -> ImportedEnv:
    """Read a conda environment.yml: channels, dependencies with a nested ``pip:`` list
    (-> pypi), and conda-lock's ``platforms``. ``name`` and ``prefix`` are ignored."""
    label = os.fspath(path)
    data = yamlio.load_path(path, file=label)
    lines = data.key_lines
    for key in data:
        if key not in _ENV_YML_KEYS:
            raise CatalogError(
                f"{key!r} in an environment.yml is not supported",
                file=label,
                line=lines.get(key),
                rule="unsupported-key",
                fix="remove it; envctl reads channels, dependencies (with a 'pip:' list) "
                "and platforms",
            )
    channels: list[str] = []
    for text, line in _strings(data, "channels", label):
        logical = _logical_channel(text, config, file=label, line=line)
        if logical is not None and logical not in channels:
            channels.append(logical)
    platforms = [text for text, _ in _strings(data, "platforms", label)]
    deps: list[str] = []
    pypi: list[str] = []
    items = data.get("dependencies") or []
    if not isinstance(items, list):
        raise _shape_error(label, lines.get("dependencies"), "dependencies", "a list")
    for i, item in enumerate(items):
        line = items.item_lines[i] if i < len(getattr(items, "item_lines", [])) else None
        if isinstance(item, str):
            deps.append(item)
        elif isinstance(item, dict) and list(item) == ["pip"]:
            pypi.extend(_pip_list(item, label))
        else:
            raise _shape_error(label, line, "dependencies", "package specs and one 'pip:' list")
    return ImportedEnv(tuple(channels), tuple(deps), tuple(pypi), tuple(platforms))


def _strings(data: Any, key: str, label: str) -> list[tuple[str, int | None]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _shape_error(label, data.key_lines.get(key), key, "a list of strings")
    item_lines = getattr(value, "item_lines", [])
    return [(v, item_lines[i] if i < len(item_lines) else None) for i, v in enumerate(value)]


def _pip_list(item: Any, label: str) -> list[str]:
    reqs = item["pip"] or []
    line = item.key_lines.get("pip")
    if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
        raise _shape_error(label, line, "pip", "a list of requirements")
    for req in reqs:
        if req.lstrip().startswith("-"):
            raise CatalogError(
                f"pip option {req!r} is not supported",
                file=label,
                line=line,
                rule="unsupported-key",
                fix="list requirements only; the index comes from pypi_index in catalog.yaml",
            )
    return list(reqs)


def _shape_error(label: str, line: int | None, key: str, expected: str) -> CatalogError:
    return CatalogError(
        f"'{key}' must be {expected}", file=label, line=line, rule="schema",
        fix="see conda's environment.yml format",
    )


def _logical_channel(
    text: str, config: CatalogConfig, *, file: str, line: int | None
) -> str | None:
    """A channel of an environment.yml as a logical name of the catalog (by name or URL)."""
    if text in config.channels:
        return text
    if text == "nodefaults":  # conda's "do not add defaults" marker, nothing to import
        return None
    wanted = {text.rstrip("/")}
    if "://" not in text and not text.startswith("/"):
        wanted.add(f"https://conda.anaconda.org/{text}")  # conda's shorthand for a name
    for name, url in config.channels.items():
        if url.rstrip("/") in wanted:
            return name
    raise unknown_channel(text, config, file=file, line=line, declare=" (name: URL)")
