"""Edit environment files the way a careful person would: ``new``, ``tag`` and ``bump``.

An environment file is human-owned, so an edit changes only what it must:

- The file is first read with the safe loader (:mod:`envctl.yamlio`) and checked as an
  :class:`~envctl.spec.EnvFile`, so a broken file is reported with lint's messages
  instead of being edited.
- It is then loaded with ruamel.yaml round-trip (comments, key order, quotes, flow or
  block style all kept) through a resolver that reads every plain scalar as a string
  (only null stays null). So an existing tag ``1.10`` is the key ``"1.10"``, never the
  float 1.1, and every line the edit does not touch is written back byte for byte.
- Indentation is detected from the file (mapping indent, block-sequence indent and dash
  offset; see :func:`detect_indent`); new files use 2 for mappings and ``  - item``
  for sequences (sequence 4, offset 2), the layout of conda's environment.yml.
- New content is block style and appended at the end of ``tags:``, with a blank line
  before it when the existing tags are separated by blank lines. New scalars that a
  YAML 1.1 or 1.2 reader would retype (``1.10``, ``no``, ``on``, ``2024-01-01``,
  ``1e3``) are written double-quoted.
- The result is read back with the safe loader and validated as an EnvFile before it
  replaces the file atomically (temp file in the same folder, ``os.replace``), after a
  re-check that nobody changed the file meanwhile.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tag import Tag

from envctl import yamlio
from envctl.catalog import Catalog, WorkTreeSource
from envctl.config import CatalogConfig, check_platform
from envctl.errors import CatalogError, EnvctlError, InvalidNameError, NotFoundError, PolicyError
from envctl.names import (
    DEFAULT_TAG,
    Alias,
    EnvName,
    canonical_key,
    parse_alias,
    parse_tag,
)
from envctl.spec import (
    EnvFile,
    normalize_conda_spec,
    normalize_pypi_requirement,
    parse_env_file,
)

__all__ = [
    "BumpResult",
    "ImportedEnv",
    "Indent",
    "PointerMove",
    "bump",
    "detect_indent",
    "needs_quotes",
    "new_tag",
    "read_environment_yml",
    "set_pointer",
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


def _q(text: str) -> str:
    return DoubleQuotedScalarString(text) if needs_quotes(text) else text


def _block(value: Any) -> Any:
    """Plain data -> ruamel nodes in block style, quoting what could be retyped."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for key, item in value.items():
            out[_q(str(key))] = _block(item)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq([_block(item) for item in value])
    if value is None:
        return None
    return _q(str(value))


def _plain(node: Any) -> Any:
    """ruamel nodes -> plain dicts, lists and str (comments and styles dropped)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
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


def _yaml(indent: Indent) -> YAML:
    y = YAML(typ="rt")
    y.Resolver = _StringResolver
    y.preserve_quotes = True
    y.width = 1 << 16  # never re-wrap a long line the user wrote on one line
    y.indent(mapping=indent.mapping, sequence=indent.sequence, offset=indent.offset)
    return y


def _split_prelude(text: str) -> tuple[str, str]:
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


# --------------------------------------------------------------------------- documents


@dataclass
class _Doc:
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


def _check_env_path(root: Path, name: EnvName) -> None:
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


def _load_doc(root: Path, name: EnvName) -> _Doc | None:
    _check_env_path(root, name)
    rel = str(name.env_file)
    path = root / rel
    if not path.exists():
        return None
    raw = path.read_bytes()
    safe = yamlio.load(raw, file=rel)
    parse_env_file(safe, file=rel)  # a broken file is reported, not edited
    text = raw.decode("utf-8")
    prelude, body = _split_prelude(text.replace("\r\n", "\n"))
    indent = detect_indent(body)
    data = _yaml(indent).load(body)
    return _Doc(
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


def _new_doc(root: Path, name: EnvName, *, description: str | None, owners: Sequence[str]) -> _Doc:
    data = CommentedMap()
    if description:
        data["description"] = _q(description)
    if owners:
        data["owners"] = _block(list(dict.fromkeys(owners)))
    data["tags"] = CommentedMap()
    return _Doc(root=root, rel=str(name.env_file), original=None, data=data)


def _require_doc(root: Path, name: EnvName, catalog: Catalog) -> _Doc:
    doc = _load_doc(root, name)
    if doc is None:
        known = [str(n) for n in catalog.env_names()]
        close = difflib.get_close_matches(str(name), known, n=3)
        raise NotFoundError(
            f"no environment named {name}",
            file=str(name.env_file),
            fix=f"did you mean {', '.join(close)}?" if close
            else f"create it with 'envctl new {name}:v1 --dep ...'",
        )
    return doc


def _add_tag(doc: _Doc, tag: str, spec: CommentedMap) -> None:
    tags = doc.tags
    key = _q(tag)
    tags[key] = spec
    if doc.separate_tags:
        tags.yaml_set_comment_before_after_key(key, before="\n")


def _render(doc: _Doc) -> str:
    buf = io.StringIO()
    _yaml(doc.indent).dump(doc.data, buf)
    text = doc.prelude + buf.getvalue()
    return text.replace("\n", "\r\n") if doc.crlf else text


def _save(doc: _Doc) -> EnvFile:
    """Validate the new text as an env file, then replace the file atomically."""
    text = _render(doc)
    env = parse_env_file(yamlio.load(text, file=doc.rel), file=doc.rel)
    _atomic_write(doc.path, text.encode("utf-8"), expected=doc.original, rel=doc.rel)
    return env


def _atomic_write(path: Path, data: bytes, *, expected: bytes | None, rel: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    current = path.read_bytes() if path.exists() else None
    if current != expected:
        raise CatalogError(
            f"{rel} changed while envctl was editing it",
            file=rel,
            rule="concurrent-edit",
            fix="run the command again",
        )
    mode = path.stat().st_mode & 0o777 if current is not None else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- checks


def _open(root: Path) -> tuple[Catalog, CatalogConfig]:
    catalog = Catalog(WorkTreeSource(root))
    return catalog, catalog.config


def _is_pointer(spec: Any) -> bool:
    return isinstance(spec, Mapping) and "points_to" in spec


def _check_tag_free(doc: _Doc, alias: Alias) -> None:
    if alias.tag in doc.tags:
        raise CatalogError(
            f"{alias} already exists",
            file=doc.rel,
            tag=alias.tag,
            rule="tag-exists",
            fix=f"use 'envctl bump {alias} --to NEWTAG'",
        )
    _check_not_near_duplicate(doc, alias.tag)


def _check_not_near_duplicate(doc: _Doc, tag: str) -> None:
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


def _check_env_free(catalog: Catalog, name: EnvName) -> None:
    for existing in catalog.env_names():
        if existing != name and canonical_key(str(existing)) == canonical_key(str(name)):
            raise CatalogError(
                f"environment {name} is too close to the existing {existing} "
                "('-', '_', '.' and case are treated alike)",
                file=str(name.env_file),
                rule="near-duplicate",
                fix=f"add a tag to {existing}, or pick a clearly different name",
            )


def _with_place(exc: EnvctlError, *, file: str, tag: str | None) -> EnvctlError:
    """The same error, said about a file and tag (normalisers know neither)."""
    return type(exc)(
        exc.message, file=file, line=exc.line, tag=tag, rule=exc.rule, fix=exc.fix
    )


def _check_channels(channels: Iterable[str], config: CatalogConfig, *, file: str, tag: str) -> None:
    for channel in channels:
        if channel not in config.channels:
            raise CatalogError(
                f"channel {channel!r} is not declared in catalog.yaml",
                file=file,
                tag=tag,
                rule="unknown-channel",
                fix="declare it under 'channels:' in catalog.yaml, or use one of: "
                + (", ".join(config.channels) or "(none declared)"),
            )


def _check_platforms(platforms: Iterable[str], *, file: str, tag: str) -> None:
    for platform in platforms:
        try:
            check_platform(platform)
        except ValueError as exc:
            raise CatalogError(str(exc), file=file, tag=tag, rule="unknown-platform") from None


def _check_conda(specs: Iterable[str], config: CatalogConfig, *, file: str, tag: str) -> None:
    for spec in specs:
        try:
            normalize_conda_spec(spec, channels=config.channels)
        except EnvctlError as exc:
            raise _with_place(exc, file=file, tag=tag) from None


def _check_pypi(reqs: Iterable[str], *, file: str, tag: str) -> None:
    for req in reqs:
        try:
            normalize_pypi_requirement(req)
        except EnvctlError as exc:
            raise _with_place(exc, file=file, tag=tag) from None


# --------------------------------------------------------------------------- environment.yml


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
    raise CatalogError(
        f"channel {text!r} is not declared in catalog.yaml",
        file=file,
        line=line,
        rule="unknown-channel",
        fix="declare it under 'channels:' in catalog.yaml (name: URL), or use one of: "
        + (", ".join(config.channels) or "(none declared)"),
    )


# --------------------------------------------------------------------------- new


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
) -> Path:
    """Add tag ``alias`` (``name:tag``) to its env file, creating the file for a new env.

    ``description`` and ``owners`` describe a new environment; for an existing one
    ``description`` becomes the tag's own and ``owners`` is refused (change owners in a
    reviewed edit of the file). Requirements are checked but written as given.
    Returns the path of the file written.
    """
    root = Path(root)
    catalog, config = _open(root)
    target = parse_alias(alias)
    if not target.explicit_tag:
        raise InvalidNameError(
            f"{alias!r} names no tag",
            rule="missing-tag",
            fix=f"give the tag to create, e.g. {target.name}:v1",
        )
    rel = str(target.name.env_file)
    doc = _load_doc(root, target.name)
    if doc is None:
        _check_env_free(catalog, target.name)
    else:
        _check_tag_free(doc, target)
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
    _check_channels(all_channels, config, file=rel, tag=target.tag)
    _check_platforms(all_platforms, file=rel, tag=target.tag)
    place = os.fspath(from_file) if from_file is not None else rel
    _check_conda(imported.dependencies, config, file=place, tag=target.tag)
    _check_pypi(imported.pypi, file=place, tag=target.tag)
    _check_conda(deps, config, file=rel, tag=target.tag)
    _check_pypi(pypi, file=rel, tag=target.tag)
    if not all_deps and not all_pypi:
        raise CatalogError(
            f"{target} would have no dependencies",
            file=rel,
            tag=target.tag,
            rule="empty-tag",
            fix="add --dep SPEC, --pypi REQ or --from environment.yml",
        )

    spec: dict[str, Any] = {}
    if doc is not None and description:
        spec["description"] = description
    if all_channels:
        spec["channels"] = all_channels
    if all_platforms:
        spec["platforms"] = all_platforms
    if all_deps:
        spec["dependencies"] = all_deps
    if all_pypi:
        spec["pypi"] = all_pypi
    if doc is None:
        doc = _new_doc(root, target.name, description=description, owners=owners)
    _add_tag(doc, target.tag, _block(spec))
    _save(doc)
    return doc.path


# --------------------------------------------------------------------------- pointers


def _point(doc: _Doc, config: CatalogConfig, name: EnvName, tag: str, target: str) -> str | None:
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
        close = difflib.get_close_matches(target, [str(t) for t in tags], n=3)
        raise NotFoundError(
            f"{name} has no tag {target!r} to point at",
            file=doc.rel,
            tag=tag,
            rule="missing-target",
            fix=f"did you mean {', '.join(close)}?" if close
            else f"{name} has tags: {', '.join(str(t) for t in tags)}",
        )
    spec = tags[target]
    if _is_pointer(spec):
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
        if not _is_pointer(current):
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
            current["points_to"] = _q(target)
        return old
    _check_not_near_duplicate(doc, tag)
    _add_tag(doc, tag, _block({"points_to": target}))
    return None


def set_pointer(root: str | os.PathLike[str], alias: str, points_to: str) -> tuple[str | None, str]:
    """Create or move the pointer ``alias`` (a mutable tag) to ``points_to`` (an immutable
    tag of the same environment). Returns ``(old target or None, new target)``; the file
    is not rewritten when the pointer already points there."""
    root = Path(root)
    catalog, config = _open(root)
    pointer = parse_alias(alias)
    target = parse_tag(points_to)
    doc = _require_doc(root, pointer.name, catalog)
    old = _point(doc, config, pointer.name, pointer.tag, target)
    if old != target:
        _save(doc)
    return old, target


# --------------------------------------------------------------------------- bump


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


def _resolve_source(doc: _Doc, catalog: Catalog, source: Alias) -> str:
    """The concrete tag to copy: ``source`` itself, or the tag its pointer names."""
    tag = source.tag
    if tag not in doc.tags and tag == DEFAULT_TAG and not source.explicit_tag:
        tag = catalog.resolve(source).tag  # the newest locked immutable tag
    if tag not in doc.tags:
        close = difflib.get_close_matches(tag, [str(t) for t in doc.tags], n=3)
        raise NotFoundError(
            f"{source.name} has no tag {tag!r}",
            file=doc.rel,
            tag=tag,
            fix=f"did you mean {', '.join(close)}?" if close
            else f"{source.name} has tags: {', '.join(str(t) for t in doc.tags)}",
        )
    spec = doc.tags[tag]
    if _is_pointer(spec):
        target = str(spec["points_to"])
        if target not in doc.tags:
            raise NotFoundError(
                f"{source.name}:{tag} points to {target!r}, which does not exist",
                file=doc.rel,
                tag=tag,
                rule="missing-target",
                fix=f"bump from an existing tag: {', '.join(str(t) for t in doc.tags)}",
            )
        return target
    return tag


def _apply(
    current: list[str], wanted: Sequence[str], name_of: Any
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
    catalog, config = _open(root)
    source = parse_alias(alias)
    new = Alias(source.name, parse_tag(to))
    doc = _require_doc(root, source.name, catalog)
    from_tag = _resolve_source(doc, catalog, source)
    _check_tag_free(doc, new)
    if config.is_mutable(new.tag):
        raise PolicyError(
            f"{new.tag!r} is a mutable tag; bump creates immutable tags",
            file=doc.rel,
            tag=new.tag,
            rule="mutable-bump",
            fix=f"bump to an immutable tag (such as v2) and add '--move {new.tag}'; "
            "write a rolling spec with 'envctl new'",
        )

    spec = _plain(doc.tags[from_tag])
    spec.pop("retired", None)
    spec.pop("description", None)
    conda = list(spec.get("dependencies") or [])
    pip = list(spec.get("pypi") or [])

    dropped: list[str] = []
    for name in drop:
        c_key, p_key = _conda_name(name), _pypi_name(name)
        gone = [d for d in conda if c_key is not None and _conda_name(d) == c_key]
        gone += [r for r in pip if p_key is not None and _pypi_name(r) == p_key]
        if not gone:
            own = ", ".join([*conda, *pip]) or "(none)"
            raise NotFoundError(
                f"{source.name}:{from_tag} has no dependency named {name!r} to drop",
                file=doc.rel,
                tag=new.tag,
                rule="not-found",
                fix=f"its own dependencies are: {own}"
                + ("; packages of the tag it extends cannot be dropped" if spec.get("extends")
                   else ""),
            )
        conda = [d for d in conda if d not in gone]
        pip = [r for r in pip if r not in gone]
        dropped.extend(gone)

    _check_conda(deps, config, file=doc.rel, tag=new.tag)
    _check_pypi(pypi, file=doc.rel, tag=new.tag)
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

    _add_tag(doc, new.tag, _block(spec))
    moves = [
        PointerMove(tag, _point(doc, config, source.name, parse_tag(tag), new.tag), new.tag)
        for tag in dict.fromkeys(move)
    ]
    _save(doc)
    return BumpResult(
        file=doc.path,
        source=str(Alias(source.name, from_tag)),
        new=str(new),
        replaced=tuple(replaced + p_replaced),
        added=tuple(added + p_added),
        dropped=tuple(dropped),
        moved=tuple(moves),
    )
