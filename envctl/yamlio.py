"""One safe YAML loader for every file envctl reads, and one plain dumper for files it writes.

YAML 1.1 silently retypes values: a tag ``1.10`` becomes the float ``1.1``,
``no`` becomes ``False``, ``0755`` an int, ``2024-01-01`` a date.  envctl never
does: :func:`load` returns every scalar as ``str`` except an explicit null
(``~``, ``null``, ``Null``, ``NULL`` or an empty value, all unquoted), which is
``None``.  Mappings come back as :class:`YamlMap` (a ``dict`` that remembers the
line of every key), sequences as :class:`YamlList`.

Everything that could make a file mean something other than what it says, or
make reading it expensive, is refused with a :class:`~envctl.errors.YamlError`
naming the file, the line and a stable ``rule``:

=====================  ====================================================
rule                   refused
=====================  ====================================================
``file-too-large``     more than ``max_bytes`` bytes (checked before parsing)
``not-text``           invalid UTF-8, a UTF-16 BOM, NUL or control bytes
``yaml-syntax``        anything the YAML parser rejects
``not-a-mapping``      an empty file, or a top-level list or scalar
``multiple-documents`` a second ``---`` document
``yaml-alias``         anchors ``&a`` and aliases ``*a`` (no billion laughs)
``yaml-tag``           explicit tags ``!foo``, ``!!python/object``, ``!!str``
``yaml-merge``         ``<<`` merge keys
``non-scalar-key``     a mapping or a list used as a key
``duplicate-key``      the same key twice in one mapping
``too-deep``           nesting deeper than :data:`MAX_DEPTH`
``file-unreadable``    (:func:`load_path` only) the file cannot be read
=====================  ====================================================

Speed: the events come from libyaml (``yaml._yaml.CParser``) when PyYAML was
built with it, from the pure-Python parser otherwise; one flat loop (no
recursion, so no ``RecursionError``) builds the result and refuses aliases,
anchors and tags at the event they appear in, before anything is constructed.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from envctl.errors import YamlError

__all__ = [
    "HAVE_LIBYAML",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_LOCK_BYTES",
    "YamlList",
    "YamlMap",
    "dump",
    "load",
    "load_path",
]

MAX_BYTES = 1_000_000
"""Default size limit for human-edited files (environment files, catalog.yaml)."""
MAX_LOCK_BYTES = 50_000_000
"""Size limit for lockfiles, which may be large."""
MAX_DEPTH = 32
"""Deepest nesting accepted; the top-level mapping is depth 1."""

try:  # libyaml-accelerated parser and emitter
    from yaml._yaml import CParser as _CParserImpl

    _CParser: Any = _CParserImpl
    _DumperBase: Any = yaml.CSafeDumper
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None
    _DumperBase = yaml.SafeDumper

HAVE_LIBYAML: bool = _CParser is not None

_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class YamlMap(dict):  # type: ignore[type-arg]
    """A mapping read from YAML; ``key_lines`` maps each key to its 1-based line."""

    __slots__ = ("key_lines", "line")

    key_lines: dict[str, int]
    line: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}
        self.line = 0


class YamlList(list):  # type: ignore[type-arg]
    """A sequence read from YAML; ``item_lines[i]`` is the 1-based line of item ``i``."""

    __slots__ = ("item_lines", "line")

    item_lines: list[int]
    line: int

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines = []
        self.line = 0


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """Pure-Python event source, used only when libyaml is missing."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


class _NeedLines(Exception):
    """A duplicate key found with lines=False: load again with lines to name both lines."""


# --------------------------------------------------------------------------- errors

_FIX_SYNTAX = "fix the YAML at that line"
_FIX_ALIAS = "write the value out in full"
_FIX_TAG = "remove the tag: envctl reads every value as a plain string"


def _error(message: str, file: str, line: int | None, rule: str, fix: str) -> YamlError:
    return YamlError(message, file=file, line=line, rule=rule, fix=fix)


def _line(ev: Any) -> int:
    return int(ev.start_mark.line) + 1


def _node_error(ev: Any, file: str) -> YamlError:
    """The refusal for a node event that carries an anchor, a tag, or is an alias."""
    if type(ev) is AliasEvent:
        return _error(
            f"YAML alias '*{ev.anchor}' is not allowed",
            file,
            _line(ev),
            "yaml-alias",
            _FIX_ALIAS,
        )
    if ev.anchor is not None:
        return _error(
            f"YAML anchor '&{ev.anchor}' is not allowed",
            file,
            _line(ev),
            "yaml-alias",
            _FIX_ALIAS,
        )
    return _error(
        f"YAML tag '{ev.tag}' is not allowed",
        file,
        _line(ev),
        "yaml-tag",
        _FIX_TAG,
    )


def _what(ev: Any) -> str:
    if type(ev) is SequenceStartEvent:
        return "a list"
    if type(ev) is MappingStartEvent:
        return "a mapping"
    return "a scalar"


def _line_at(data: bytes | str, offset: int) -> int:
    if isinstance(data, bytes):
        return data.count(b"\n", 0, max(offset, 0)) + 1
    return data.count("\n", 0, max(offset, 0)) + 1


def _syntax_error(exc: yaml.YAMLError, source: bytes | str, file: str) -> YamlError:
    if isinstance(exc, yaml.reader.ReaderError):
        where = _line_at(source, exc.position)
        return _error(
            f"not YAML text: {exc.reason} (character {exc.character!r})",
            file,
            where,
            "not-text",
            "save the file as plain UTF-8 text",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        if exc.problem and "maximum nesting depth" in exc.problem:  # libyaml's own limit
            return _error(
                f"nesting deeper than {MAX_DEPTH} levels",
                file,
                line,
                "too-deep",
                "flatten the structure",
            )
        message = f"invalid YAML: {exc.problem or 'syntax error'}"
        if exc.context:
            context = exc.context
            if exc.context_mark is not None and exc.context_mark is not mark:
                context += f" started at line {int(exc.context_mark.line) + 1}"
            message += f" ({context})"
        return _error(message, file, line, "yaml-syntax", _FIX_SYNTAX)
    return _error(f"invalid YAML: {exc}", file, None, "yaml-syntax", _FIX_SYNTAX)


# --------------------------------------------------------------------------- load


def _to_bytes(text: str | bytes, file: str, max_bytes: int) -> tuple[bytes, str]:
    """Check size and encoding; return the UTF-8 bytes and the text."""
    if isinstance(text, str):
        if len(text) > max_bytes:  # every character is at least one byte
            raise _too_large(len(text), max_bytes, file, at_least=True)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _error(
                "text is not valid Unicode (lone surrogate)",
                file,
                _line_at(text, exc.start),
                "not-text",
                "save the file as UTF-8 text",
            ) from None
        if len(data) > max_bytes:
            raise _too_large(len(data), max_bytes, file)
        decoded = text
    elif isinstance(text, bytes | bytearray | memoryview):
        data = bytes(text)
        if len(data) > max_bytes:
            raise _too_large(len(data), max_bytes, file)
        if data[:2] in _UTF16_BOMS:
            raise _error(
                "file is UTF-16, not UTF-8",
                file,
                1,
                "not-text",
                "save the file as UTF-8 text",
            )
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _error(
                f"file is not UTF-8 text (invalid byte at offset {exc.start})",
                file,
                _line_at(data, exc.start),
                "not-text",
                "save the file as UTF-8 text",
            ) from None
    else:
        raise TypeError(f"load() takes str or bytes, not {type(text).__name__}")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _error(
            "file contains a NUL byte (binary content)",
            file,
            _line_at(data, nul),
            "not-text",
            "save the file as plain UTF-8 text",
        )
    return data, decoded


def _too_large(size: int, max_bytes: int, file: str, *, at_least: bool = False) -> YamlError:
    more = "at least " if at_least else ""
    return _error(
        f"file is {more}{size} bytes, over the {max_bytes}-byte limit",
        file,
        None,
        "file-too-large",
        f"keep the file under {max_bytes} bytes",
    )


def load(
    text: str | bytes,
    *,
    file: str = "<string>",
    max_bytes: int = MAX_BYTES,
    lines: bool = True,
) -> Any:
    """Parse one YAML document that must be a mapping; every scalar is a ``str`` (or ``None``).

    With ``lines=True`` (default) mappings are :class:`YamlMap` and sequences
    :class:`YamlList`, carrying 1-based line numbers; with ``lines=False`` they are
    plain ``dict`` and ``list`` (faster).  Raises :class:`YamlError` and nothing else
    for any ``str`` or ``bytes`` input.
    """
    data, decoded = _to_bytes(text, file, max_bytes)
    source: bytes | str = data if _CParser is not None else decoded
    try:
        try:
            return _build(_new_parser(data, decoded), file, lines)
        except _NeedLines:  # a duplicate key: parse again with lines to name both
            return _build(_new_parser(data, decoded), file, True)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source, file) from None
    except MemoryError:  # libyaml reports its allocation failures as MemoryError
        raise _error(
            "the YAML parser ran out of memory",
            file,
            None,
            "yaml-syntax",
            _FIX_SYNTAX,
        ) from None


def _new_parser(data: bytes, decoded: str) -> Any:
    if _CParser is not None:
        return _CParser(data)
    return _PyParser(decoded)


def load_path(
    path: str | os.PathLike[str],
    *,
    file: str | None = None,
    max_bytes: int = MAX_BYTES,
    lines: bool = True,
) -> Any:
    """Read and :func:`load` a file; ``file`` (default: the path) names it in errors.

    Never reads more than ``max_bytes + 1`` bytes, so a huge file costs nothing.
    """
    name = file if file is not None else os.fspath(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise _too_large(size, max_bytes, name)
            data = fh.read(max_bytes + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise _error(
            f"cannot read file: {exc.strerror or exc}",
            name,
            None,
            "file-unreadable",
            "check that the file exists and is readable",
        ) from exc
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes, name, at_least=True)
    return load(data, file=name, max_bytes=max_bytes, lines=lines)


def _build(parser: Any, file: str, lines: bool) -> Any:
    """Turn the parser's events into dicts, lists and strings, refusing what is unsafe."""
    get = parser.get_event
    get()  # StreamStartEvent
    ev = get()
    if type(ev) is StreamEndEvent:
        raise _error(
            "file is empty; expected a mapping",
            file,
            1,
            "not-a-mapping",
            "write the file as a YAML mapping (key: value lines)",
        )
    ev = get()  # the root node; ev before it was DocumentStartEvent
    if type(ev) is AliasEvent or ev.anchor is not None or ev.tag is not None:
        raise _node_error(ev, file)
    if type(ev) is not MappingStartEvent:
        raise _error(
            f"top level is {_what(ev)}, expected a mapping",
            file,
            _line(ev),
            "not-a-mapping",
            "write the file as a YAML mapping (key: value lines)",
        )

    root: Any
    aux: Any  # key_lines of the current YamlMap / item_lines of the current YamlList
    if lines:
        root = YamlMap()
        root.line = ev.start_mark.line + 1
        aux = root.key_lines
    else:
        root = {}
        aux = None
    cur: Any = root
    is_map = True
    key: str | None = None  # pending key of the current mapping
    stack: list[tuple[Any, bool, Any]] = []
    nulls = _NULLS
    max_nested = MAX_DEPTH - 1  # len(stack) of a container at MAX_DEPTH

    while True:
        ev = get()
        t = type(ev)
        if t is ScalarEvent:
            if ev.anchor is not None or ev.tag is not None:
                raise _node_error(ev, file)
            value = ev.value
            if is_map:
                if key is None:
                    if value in cur:
                        if aux is None:
                            raise _NeedLines
                        raise _error(
                            f"duplicate key '{value}' (lines {aux[value]} and {_line(ev)})",
                            file,
                            _line(ev),
                            "duplicate-key",
                            f"keep only one '{value}' entry in this mapping",
                        )
                    if value == "<<" and not ev.style:
                        raise _error(
                            "YAML merge key '<<' is not allowed",
                            file,
                            _line(ev),
                            "yaml-merge",
                            "write the merged keys out in full",
                        )
                    key = value
                    if aux is not None:
                        aux[value] = ev.start_mark.line + 1
                    continue
                if value in nulls and not ev.style:
                    value = None
                cur[key] = value
                key = None
            else:
                if value in nulls and not ev.style:
                    value = None
                cur.append(value)
                if aux is not None:
                    aux.append(ev.start_mark.line + 1)
        elif t is MappingEndEvent or t is SequenceEndEvent:
            if not stack:
                break
            cur, is_map, aux = stack.pop()
            key = None
        elif t is MappingStartEvent or t is SequenceStartEvent:
            if ev.anchor is not None or ev.tag is not None:
                raise _node_error(ev, file)
            if is_map and key is None:
                raise _error(
                    f"{_what(ev)} cannot be a key",
                    file,
                    _line(ev),
                    "non-scalar-key",
                    "use a plain string as the key",
                )
            if len(stack) >= max_nested:
                raise _error(
                    f"nesting deeper than {MAX_DEPTH} levels",
                    file,
                    _line(ev),
                    "too-deep",
                    "flatten the structure",
                )
            child: Any
            child_aux: Any
            if aux is not None:
                line = ev.start_mark.line + 1
                if t is MappingStartEvent:
                    child = YamlMap()
                    child_aux = child.key_lines
                else:
                    child = YamlList()
                    child_aux = child.item_lines
                child.line = line
            else:
                child = {} if t is MappingStartEvent else []
                child_aux = None
            if is_map:
                cur[key] = child
            else:
                cur.append(child)
                if aux is not None:
                    aux.append(line)
            stack.append((cur, is_map, aux))
            cur, is_map, aux, key = child, t is MappingStartEvent, child_aux, None
        elif t is AliasEvent:
            raise _node_error(ev, file)
        else:  # pragma: no cover - the parser never emits anything else inside a node
            raise _error(
                f"unexpected YAML event {t.__name__}",
                file,
                _line(ev),
                "yaml-syntax",
                _FIX_SYNTAX,
            )

    get()  # DocumentEndEvent
    ev = get()
    if type(ev) is DocumentStartEvent:
        raise _error(
            "a second YAML document starts here",
            file,
            _line(ev),
            "multiple-documents",
            "keep one document per file (remove the extra '---' and what follows)",
        )
    return root


# --------------------------------------------------------------------------- dump

# Plain strings a YAML 1.2 or strict YAML 1.1 reader might still retype although
# PyYAML's resolver would not (``1e3``, ``0o17``, ``y``, ``n``...): quote them too.
_RETYPE_RISK = re.compile(r"[-+]?\.?[0-9]|[yYnN]\Z|[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)\Z")
_NEEDS_ESCAPE = re.compile("[\r\x85\u2028\u2029]")


class _Dumper(_DumperBase):  # type: ignore[misc,valid-type]
    """Safe dumper that never writes anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: Any, data: str) -> Any:
    style: str | None = None
    if _NEEDS_ESCAPE.search(data):
        style = '"'
    elif "\n" in data:
        style = "|"
    elif _RETYPE_RISK.match(data):
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_list(dumper: Any, data: Any) -> Any:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(data))


def _represent_dict(dumper: Any, data: Any) -> Any:
    return dumper.represent_dict(data)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(tuple, _represent_list)
_Dumper.add_multi_representer(list, _represent_list)
_Dumper.add_multi_representer(dict, _represent_dict)


def dump(data: Any) -> str:
    """Deterministic plain YAML for files envctl writes (meta.yaml).

    Block style, keys in insertion order, no anchors or aliases, unicode kept,
    and every string a YAML 1.1 (or 1.2) reader could retype is quoted, so
    ``load(dump(d)) == d`` for nested dicts/lists of strings and ``None``.
    """
    try:
        out = yaml.dump(
            data,
            Dumper=_Dumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
            width=1 << 20,
            line_break="\n",
        )
    except yaml.representer.RepresenterError as exc:
        raise TypeError(f"cannot write as YAML: {exc}") from None
    return str(out)
