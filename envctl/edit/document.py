"""An environment file open for a round-trip edit: load, add a tag, validate, save.

The file is first read with the safe loader (:mod:`envctl.yamlio`) and checked as an
:class:`~envctl.spec.EnvFile`, so a broken file is reported with lint's messages instead
of being edited. It is then loaded with ruamel.yaml round-trip (comments, key order,
quotes, flow or block style all kept), so every line the edit does not touch is written
back byte for byte; comments and a ``---`` line before the document, and CRLF line
ends, are kept too. The result is read back with the safe loader and validated before
it replaces the file atomically (temp file in the same folder, ``os.replace``), after a
re-check that nobody changed the file meanwhile.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from envctl import yamlio
from envctl.edit.yamlstyle import (
    Indent,
    detect_indent,
    quoted,
    round_trip_yaml,
    split_prelude,
    to_block,
)
from envctl.errors import CatalogError
from envctl.fsutil import atomic_write
from envctl.names import EnvName
from envctl.spec import EnvFile, parse_env_file

__all__ = ["EnvDoc", "add_tag", "check_env_path", "load_doc", "new_doc", "save_doc"]


@dataclass
class EnvDoc:
    """One environment file as ruamel nodes, with what is needed to write it back alike."""

    root: Path
    rel: str
    original: bytes | None  # None for a file this edit creates
    data: CommentedMap
    indent: Indent = field(default_factory=Indent)
    prelude: str = ""
    crlf: bool = False
    separate_tags: bool = False

    @property
    def path(self) -> Path:
        return self.root / self.rel

    @property
    def tags(self) -> CommentedMap:
        return self.data["tags"]


def check_env_path(root: Path, name: EnvName) -> None:
    """Refuse an env file path that a symlink, a file or a folder is already in the way of."""
    rel = name.env_file
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            raise CatalogError(
                f"{current.relative_to(root).as_posix()} is in the way of {rel}: it is not a "
                "plain folder",
                file=str(rel),
                rule="path-clash",
                fix="remove or rename it; the catalog tree holds only folders and env files",
            )
    path = root / rel
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise CatalogError(
            f"{rel} exists but is not a plain file",
            file=str(rel),
            rule="path-clash",
            fix="remove it; environment files are plain files, never symlinks or folders",
        )
    stray = path.with_suffix(".yml")
    if stray.exists():
        raise CatalogError(
            f"{stray.relative_to(root).as_posix()} exists next to {rel}",
            file=str(rel),
            rule="path-clash",
            fix=f"rename it to {rel}; environment files end in .yaml",
        )


def load_doc(root: Path, name: EnvName) -> EnvDoc | None:
    """The env file of ``name`` ready to edit, or None when the environment is new."""
    check_env_path(root, name)
    rel = str(name.env_file)
    path = root / rel
    if not path.exists():
        return None
    raw = path.read_bytes()
    safe = yamlio.load(raw, file=rel)
    parse_env_file(safe, file=rel)  # a broken file is reported, not edited
    text = raw.decode("utf-8")
    prelude, body = split_prelude(text.replace("\r\n", "\n"))
    indent = detect_indent(body)
    data = round_trip_yaml(indent).load(body)
    return EnvDoc(
        root=root,
        rel=rel,
        original=raw,
        data=data,
        indent=indent,
        prelude=prelude,
        crlf="\r\n" in text,
        separate_tags=_tags_separated(text, safe),
    )


def _tags_separated(text: str, safe: Any) -> bool:
    """Whether every tag after the first has a blank line before it."""
    key_lines = sorted(getattr(safe.get("tags"), "key_lines", {}).values())
    if len(key_lines) < 2:
        return False
    lines = text.splitlines()
    return all(line >= 2 and not lines[line - 2].strip() for line in key_lines[1:])


def new_doc(
    root: Path, name: EnvName, *, description: str | None, owners: Sequence[str]
) -> EnvDoc:
    """The document of a new environment: description, owners and no tags yet."""
    data = CommentedMap()
    if description:
        data["description"] = quoted(description)
    if owners:
        data["owners"] = to_block(list(dict.fromkeys(owners)))
    data["tags"] = CommentedMap()
    return EnvDoc(root=root, rel=str(name.env_file), original=None, data=data)


def add_tag(doc: EnvDoc, tag: str, spec: dict[str, Any]) -> None:
    """Append ``tag`` at the end of ``tags:`` (block style), spaced like the tags before it."""
    tags = doc.tags
    key = quoted(tag)
    tags[key] = to_block(spec)
    if doc.separate_tags:
        tags.yaml_set_comment_before_after_key(key, before="\n")


def _render(doc: EnvDoc) -> str:
    buf = io.StringIO()
    round_trip_yaml(doc.indent).dump(doc.data, buf)
    text = doc.prelude + buf.getvalue()
    return text.replace("\n", "\r\n") if doc.crlf else text


def save_doc(doc: EnvDoc) -> EnvFile:
    """Validate the new text as an env file, then replace the file atomically."""
    text = _render(doc)
    env = parse_env_file(yamlio.load(text, file=doc.rel), file=doc.rel)
    atomic_write(doc.path, text.encode("utf-8"), expected=doc.original, rel=doc.rel)
    return env
