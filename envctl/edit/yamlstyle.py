"""How an edit writes YAML: scalars that keep their type, and the file's own indentation.

- Every plain scalar is read as a string (only null stays null), the way
  :func:`envctl.yamlio.load` reads it; on the way out that also means ruamel never adds
  quotes to a value that was plain, so untouched lines stay as they were.
- New scalars that a YAML 1.1 or 1.2 reader would retype (``1.10``, ``no``, ``on``,
  ``2024-01-01``, ``1e3``) are written double-quoted (:func:`needs_quotes`).
- Indentation is detected from the file (:func:`detect_indent`); new files use 2 for
  mappings and ``  - item`` for sequences, the layout of conda's environment.yml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tag import Tag

__all__ = [
    "Indent",
    "detect_indent",
    "needs_quotes",
    "quoted",
    "round_trip_yaml",
    "split_prelude",
    "to_block",
    "to_plain",
]

# --------------------------------------------------------------------------- scalars

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_NULL_TAG = Tag(suffix="tag:yaml.org,2002:null")
_STR_TAG = "tag:yaml.org,2002:str"
_YAML11 = yaml.resolver.Resolver()
_YAML12 = VersionedResolver(version=(1, 2))


class _StringResolver(VersionedResolver):
    """Every plain scalar is a string, except an explicit null (as :func:`yamlio.load`).

    Used for loading and dumping: on the way out it also means ruamel never adds quotes
    to a value that was plain, so untouched lines stay as they were.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return _NULL_TAG if value in _NULLS else self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


def needs_quotes(text: str) -> bool:
    """Whether a plain ``text`` would be read as something other than that string by a
    YAML 1.1 (PyYAML) or YAML 1.2 reader: ``1.10``, ``no``, ``on``, ``~``, ``1e3``, ``y``."""
    if text in _NULLS or text in ("y", "Y", "n", "N"):
        return True
    if _YAML11.resolve(yaml.ScalarNode, text, (True, False)) != _STR_TAG:
        return True
    return str(_YAML12.resolve(ScalarNode, text, (True, False))) != _STR_TAG


def quoted(text: str) -> str:
    """``text`` as a scalar to write: double-quoted when a reader could retype it."""
    return DoubleQuotedScalarString(text) if needs_quotes(text) else text


def to_block(value: Any) -> Any:
    """Plain data -> ruamel nodes in block style, quoting what could be retyped."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for key, item in value.items():
            out[quoted(str(key))] = to_block(item)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq([to_block(item) for item in value])
    if value is None:
        return None
    return quoted(str(value))


def to_plain(node: Any) -> Any:
    """ruamel nodes -> plain dicts, lists and str (comments and styles dropped)."""
    if isinstance(node, Mapping):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(item) for item in node]
    return None if node is None else str(node)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Indent:
    """ruamel's three numbers: mapping indent, block-sequence item indent, dash offset."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


_TRAILING_COMMENT = re.compile(r"\s+#.*$")


def detect_indent(text: str) -> Indent:
    """The indentation a file already uses, from the first block of each kind.

    A mapping nested under ``key:`` gives the mapping indent; a ``- item`` under
    ``key:`` gives the dash offset and the item indent. What the file does not show
    follows the mapping indent (dash indented by it, item two further).
    """
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    opener: int | None = None  # column of a key ending the previous line with ':'
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith(("---", "...")):
            continue
        line = _TRAILING_COMMENT.sub("", raw).rstrip()
        col = len(line) - len(line.lstrip(" "))
        body = line[col:]
        is_item = body == "-" or body.startswith("- ")
        if opener is not None:
            if is_item and offset is None and col >= opener:
                offset = col - opener
                sequence = col + 1 + (len(body[1:]) - len(body[1:].lstrip(" "))) - opener
            elif not is_item and mapping is None and col > opener:
                mapping = col - opener
        opener = None
        if body.endswith(":"):
            opener = col + (len(body) - len(body[1:].lstrip(" "))) if is_item else col
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    if offset is None or sequence is None:
        offset, sequence = mapping, mapping + 2
    return Indent(mapping=mapping, sequence=max(sequence, offset + 2), offset=offset)


def round_trip_yaml(indent: Indent) -> YAML:
    """A ruamel round-trip loader/dumper: strings only, quotes kept, lines never re-wrapped."""
    y = YAML(typ="rt")
    y.Resolver = _StringResolver
    y.preserve_quotes = True
    y.width = 1 << 16  # never re-wrap a long line the user wrote on one line
    y.indent(mapping=indent.mapping, sequence=indent.sequence, offset=indent.offset)
    return y


def split_prelude(text: str) -> tuple[str, str]:
    """Comments and a ``---`` line before the document: ruamel drops both, so they are
    kept aside verbatim and put back in front of the output."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("%"):
            continue
        if stripped == "---":
            return "".join(lines[: i + 1]), "".join(lines[i + 1 :])
        break
    return "", text
