"""The alias grammar: parse, validate and format environment names, tags and ids.

``<namespace>/.../<env>:<tag>``: one to 16 segments ``[a-z0-9][a-z0-9_.-]*`` of at
most 64 characters (a name is at most 255 characters), then an optional tag of the
same shape (at most 64 characters; the default is ``latest``). Wherever a name is
accepted, a resolved id ``<req_id>:<full_id>`` (two 40-character lower-case hex
halves) is accepted too (``parse_ref``), so a segment of exactly 40 hex characters
is reserved.

A name maps onto the catalog tree: env ``a/b`` is ``envs/a/b.yaml`` and its locks are
``locks/a/b/<tag>.conda-lock.yml`` and ``locks/a/b/<tag>.meta.yaml``; the store keeps
``aliases/a/b/<tag>.json``. So that no file ever has the same path as another
environment's folder, a segment may not end in ``.yaml``, ``.yml`` or ``.json``.

Every refusal is an :class:`~envctl.errors.InvalidNameError` whose message says what
is wrong and, where one exists, suggests the corrected name. ``@{VAR}`` interpolation
(:func:`interpolate`) runs before parsing, in one pass, and refuses values that would
add segments or tags.

This module is on the hook's path: it imports only the standard library.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import NoReturn

from envctl.errors import InvalidNameError

__all__ = [
    "DEFAULT_TAG",
    "ENV_ID_RE",
    "HEX40_RE",
    "MAX_DEPTH",
    "MAX_NAME_LEN",
    "MAX_SEGMENT_LEN",
    "MAX_TAG_LEN",
    "RESERVED_SEGMENT_SUFFIXES",
    "SEGMENT_RE",
    "TAG_RE",
    "Alias",
    "EnvId",
    "EnvName",
    "canonical_key",
    "env_name_from_path",
    "format_alias",
    "interpolate",
    "is_40hex",
    "is_valid_segment",
    "is_valid_tag",
    "parse_alias",
    "parse_env_id",
    "parse_env_name",
    "parse_ref",
    "parse_tag",
]

DEFAULT_TAG = "latest"

MAX_SEGMENT_LEN = 64
MAX_TAG_LEN = 64
MAX_NAME_LEN = 255
MAX_DEPTH = 16
HEX_ID_LEN = 40
# Longest text any parser looks at in detail: a full name, ":" and a full tag.
MAX_REF_LEN = MAX_NAME_LEN + 1 + MAX_TAG_LEN

ENVS_DIR = "envs"
LOCKS_DIR = "locks"
ENV_FILE_SUFFIX = ".yaml"
LOCK_FILE_SUFFIX = ".conda-lock.yml"
META_FILE_SUFFIX = ".meta.yaml"
# File suffixes the catalog tree and the store use; a segment ending in one could be
# both a file and a folder (env "a/b" is envs/a/b.yaml, env "a/b.yaml/c" would need
# a folder envs/a/b.yaml/).
RESERVED_SEGMENT_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")

#: One segment of a name (fullmatch form; length included). 40-hex segments and
#: reserved suffixes are refused on top of this: use :func:`is_valid_segment`.
SEGMENT_RE: re.Pattern[str] = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
#: A tag (fullmatch form; length included).
TAG_RE: re.Pattern[str] = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
HEX40_RE: re.Pattern[str] = re.compile(r"[0-9a-f]{40}")
ENV_ID_RE: re.Pattern[str] = re.compile(r"([0-9a-f]{40}):([0-9a-f]{40})")
VAR_NAME_RE: re.Pattern[str] = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_SEGMENT_CHARS_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_FRAGMENT_RE = re.compile(r"[a-z0-9_.-]+")
_ANY_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_NAME_TEXT_RE = re.compile(r"[a-z0-9_./-]+")
_ALIAS_TEXT_RE = re.compile(r"[a-z0-9_./:-]+")
_TAG_TEXT_RE = re.compile(r"[a-z0-9_.-]+")

_ID_SHAPE = 'a resolved id is two 40-character lower-case hex halves "<req_id>:<full_id>"'
_NAME_SHAPE = '"team/project/env" or "team/project/env:v1"'

# Letters from other scripts that look like ASCII ones (NFKC does not fold these), and
# non-ASCII dashes, slashes and colons.
_LOOKALIKES_FROM = (
    "авекмнорстухѕіјԁԛԝүһӏ"  # Cyrillic lower case
    "АВЕКМНОРСТХЅІЈУ"  # Cyrillic upper case
    "αονικρτυ"  # Greek lower case
    "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"  # Greek upper case
    "‐‑‒–—−∕⁄∶ː"  # punctuation
)
_LOOKALIKES_TO = "abekmhopctyxsijdqwyhlabekmhopctxsijyaovikptuabezhikmnoptyx------//::"
_CONFUSABLES = str.maketrans(_LOOKALIKES_FROM, _LOOKALIKES_TO)


# -- values -------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class EnvName:
    """An environment name: its segments, e.g. ``("team", "proj", "env")``.

    Constructing one validates it; ``parse_env_name`` builds one from text.
    """

    segments: tuple[str, ...]

    def __post_init__(self) -> None:
        segments = self.segments
        if isinstance(segments, str) or not isinstance(segments, tuple | list):
            raise InvalidNameError(
                f"EnvName takes a tuple of segments, not {type(segments).__name__} "
                f"{_q(segments) if isinstance(segments, str) else ''}".rstrip(),
                rule="invalid-name",
                fix='build names from text with parse_env_name("team/env")',
            )
        segments = tuple(segments)
        object.__setattr__(self, "segments", segments)
        whole = "/".join(s if isinstance(s, str) else "?" for s in segments)
        _check_segments(segments, whole)

    @property
    def path(self) -> str:
        """``team/proj/env``."""
        return "/".join(self.segments)

    @property
    def namespace(self) -> tuple[str, ...]:
        return self.segments[:-1]

    @property
    def env(self) -> str:
        return self.segments[-1]

    @property
    def env_file(self) -> PurePosixPath:
        """``envs/team/proj/env.yaml``."""
        return PurePosixPath(ENVS_DIR, *self.namespace, self.env + ENV_FILE_SUFFIX)

    @property
    def lock_dir(self) -> PurePosixPath:
        """``locks/team/proj/env``: the folder holding this environment's locks and metas."""
        return PurePosixPath(LOCKS_DIR, *self.segments)

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, order=True)
class Alias:
    """``name:tag``. ``explicit_tag`` records whether the text named the tag (it takes no
    part in equality, ordering or hashing)."""

    name: EnvName
    tag: str
    explicit_tag: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, EnvName):
            raise InvalidNameError(
                f"Alias takes an EnvName, not {type(self.name).__name__}",
                rule="invalid-name",
                fix='build aliases from text with parse_alias("team/env:v1")',
            )
        _check_tag(self.tag, whole=None)

    @property
    def env_file(self) -> PurePosixPath:
        return self.name.env_file

    @property
    def lock_path(self) -> PurePosixPath:
        """``locks/team/proj/env/<tag>.conda-lock.yml``."""
        return self.name.lock_dir / (self.tag + LOCK_FILE_SUFFIX)

    @property
    def meta_path(self) -> PurePosixPath:
        """``locks/team/proj/env/<tag>.meta.yaml``."""
        return self.name.lock_dir / (self.tag + META_FILE_SUFFIX)

    def __str__(self) -> str:
        return f"{self.name.path}:{self.tag}"


@dataclass(frozen=True, order=True)
class EnvId:
    """A resolved environment id ``req_id:full_id`` (40 lower-case hex each)."""

    req_id: str
    full_id: str

    def __post_init__(self) -> None:
        if is_40hex(self.req_id) and is_40hex(self.full_id):
            return
        if not (isinstance(self.req_id, str) and isinstance(self.full_id, str)):
            _fail(
                f"EnvId takes two texts, not {type(self.req_id).__name__} and "
                f"{type(self.full_id).__name__}",
                rule="invalid-id",
                fix='build ids from text with parse_env_id("<req_id>:<full_id>")',
            )
        _diagnose_id(f"{self.req_id}:{self.full_id}")

    def __str__(self) -> str:
        return f"{self.req_id}:{self.full_id}"


# -- public functions -----------------------------------------------------------------


def is_40hex(s: object) -> bool:
    """Whether ``s`` is exactly 40 lower-case hex characters (one half of an id)."""
    return isinstance(s, str) and HEX40_RE.fullmatch(s) is not None


def is_valid_segment(s: object) -> bool:
    """Whether ``s`` is a valid name segment (grammar, length, not reserved)."""
    return (
        isinstance(s, str)
        and SEGMENT_RE.fullmatch(s) is not None
        and not is_40hex(s)
        and not s.endswith(RESERVED_SEGMENT_SUFFIXES)
    )


def is_valid_tag(s: object) -> bool:
    return isinstance(s, str) and TAG_RE.fullmatch(s) is not None


def parse_env_name(text: str) -> EnvName:
    """``team/proj/env`` -> :class:`EnvName`; a ``:tag`` is refused."""
    return _parse_name(text, suggest=True)


def parse_tag(text: str) -> str:
    """Validate a bare tag (``v1``, ``latest``) and return it."""
    if type(text) is str and TAG_RE.fullmatch(text):
        return text  # the common case, without building the checks that explain a refusal
    return _parse_tag(text, suggest=True)


def parse_alias(text: str, *, default_tag: str = DEFAULT_TAG) -> Alias:
    """``team/env`` or ``team/env:tag`` -> :class:`Alias` (``default_tag`` when none given)."""
    return _parse_alias(text, default_tag, suggest=True)


def parse_env_id(text: str) -> EnvId:
    """``<req_id>:<full_id>`` -> :class:`EnvId`."""
    return _parse_id(text, suggest=True)


def parse_ref(text: str, *, default_tag: str = DEFAULT_TAG) -> Alias | EnvId:
    """Either form: a resolved id (two hex halves) -> :class:`EnvId`, else an alias."""
    text = _require_str(text, "an environment name or resolved id", "invalid-name")
    if _looks_like_id(text.strip()):
        return _parse_id(text, suggest=True)
    return _parse_alias(text, default_tag, suggest=True)


def format_alias(name: EnvName, tag: str) -> str:
    """``team/env:tag``; the inverse of :func:`parse_alias` for an explicit tag."""
    if not isinstance(name, EnvName):
        raise InvalidNameError(
            f"format_alias takes an EnvName, not {type(name).__name__}",
            rule="invalid-name",
            fix='parse the name first with parse_env_name("team/env")',
        )
    return str(Alias(name, tag))


def canonical_key(s: str) -> str:
    """Fold case and runs of ``-``, ``_``, ``.`` to one ``-`` (as PEP 503 does), so that
    near-duplicates such as ``my-env`` / ``my_env`` / ``My.Env`` share a key."""
    if type(s) is str:
        return _canonical_key(s)
    s = _require_str(s, "a name or tag", "invalid-name")
    return _SEPARATORS_RE.sub("-", s.lower())


_SEPARATORS_RE = re.compile(r"[-_.]+")


@lru_cache(maxsize=1 << 14)
def _canonical_key(s: str) -> str:
    # Cached: the hook compares each new name with every sibling in its folder, so a push
    # of many environments into one namespace asks for the same keys again and again.
    return _SEPARATORS_RE.sub("-", s.lower())


def env_name_from_path(rel: str) -> EnvName:
    """``envs/a/b.yaml`` -> ``a/b``. Refuses paths outside ``envs/`` or not ending in ``.yaml``."""
    if isinstance(rel, os.PathLike):
        rel = os.fspath(rel)
    if not isinstance(rel, str):
        raise InvalidNameError(
            f"expected an environment file path as text, got {type(rel).__name__}",
            rule="invalid-name",
            fix="pass a path relative to the catalog root, e.g. envs/team/env.yaml",
        )
    shape = "environment files are envs/<namespace>/.../<env>.yaml"
    prefix = ENVS_DIR + "/"
    if not rel.startswith(prefix):
        raise InvalidNameError(
            f"{_q(rel)} is not under {prefix}: {shape}",
            file=rel,
            rule="invalid-name",
            fix=f"move it under {prefix} (paths are relative to the catalog root)",
        )
    if not rel.endswith(ENV_FILE_SUFFIX):
        fix = f"name the file <env>{ENV_FILE_SUFFIX}"
        if rel.endswith(".yml"):
            fix = f"rename it to {_q(rel[: -len('.yml')] + ENV_FILE_SUFFIX)}"
        raise InvalidNameError(
            f"{_q(rel)} does not end in {ENV_FILE_SUFFIX}: {shape}",
            file=rel,
            rule="invalid-name",
            fix=fix,
        )
    inner = rel[len(prefix) : -len(ENV_FILE_SUFFIX)]
    try:
        return _parse_name(inner, suggest=True)
    except InvalidNameError as exc:
        raise InvalidNameError(
            f"{_q(rel)} does not name a valid environment: {exc.message}",
            file=rel,
            rule=exc.rule,
            fix=exc.fix,
        ) from None


def interpolate(text: str, env: Mapping[str, str] | None = None) -> str:
    """Expand ``@{VAR}`` from ``env`` (default ``os.environ``), in one pass.

    Each value must be a non-empty fragment of a segment or tag (``[a-z0-9_.-]+``):
    a value cannot add ``/`` segments, a ``:tag``, or anything the grammar refuses.
    Parse the result afterwards.
    """
    text = _require_str(text, "a name to interpolate", "invalid-variable")
    if env is None:
        env = os.environ
    if "@{" not in text:
        return text
    out: list[str] = []
    pos = 0
    while (start := text.find("@{", pos)) >= 0:
        end = text.find("}", start + 2)
        if end < 0:
            _fail(
                f'{_q(text)} has "@{{" at position {start} without a closing "}}"',
                rule="invalid-variable",
                fix='write variables as "@{VAR}"',
            )
        var = text[start + 2 : end]
        if not VAR_NAME_RE.fullmatch(var):
            what = "names no variable" if var == "" else "is not a variable reference"
            _fail(
                f"{_q('@{' + var + '}')} in {_q(text)} {what}: a variable name is letters, "
                'digits and "_", not starting with a digit',
                rule="invalid-variable",
                fix='write variables as "@{VAR}", e.g. "@{TEAM}/env"',
            )
        value = _check_variable_value(var, env.get(var), text)
        out.append(text[pos:start])
        out.append(value)
        pos = end + 1
    out.append(text[pos:])
    return "".join(out)


# -- parsers ----------------------------------------------------------------------------


def _parse_alias(text: object, default_tag: str, *, suggest: bool) -> Alias:
    text = _require_str(text, "an environment name", "invalid-name")
    colon = text.find(":")
    tag_start = colon + 1 if colon >= 0 else None
    _precheck(
        text,
        kind="name",
        text_re=_ALIAS_TEXT_RE,
        allowed='a-z, 0-9, "_", ".", "-", with "/" between segments and ":" before the tag',
        max_len=MAX_REF_LEN,
        rule="invalid-name",
        tag_start=tag_start,
        suggester=_suggester(lambda c: _parse_alias(c, default_tag, suggest=False), suggest),
    )
    if text.count(":") > 1:
        _fail(
            f'{_q(text)} has {text.count(":")} ":"; a name has at most one ":", before the tag',
            rule="invalid-name",
            fix='separate namespaces with "/" and put one ":" before the tag, e.g. "team/env:v1"',
        )
    name_text, sep, tag_text = text.partition(":")
    if sep and not name_text:
        _fail(
            f'{_q(text)} has no name before ":"',
            rule="invalid-name",
            fix=f"put the environment name before the tag, e.g. {_q('team/env' + text)}",
        )
    if sep and not tag_text:
        _fail(
            f'{_q(text)} has nothing after ":"',
            rule="invalid-tag",
            fix=f'drop the ":" for the default tag ({_q(name_text)} means '
            f"{_q(name_text + ':' + DEFAULT_TAG)}) or give a tag, e.g. {_q(name_text + ':v1')}",
        )
    name = _parse_name_part(name_text, whole=text)
    if sep:
        return Alias(name, _check_tag(tag_text, whole=text), explicit_tag=True)
    return Alias(name, default_tag, explicit_tag=False)


def _parse_name(text: object, *, suggest: bool) -> EnvName:
    text = _require_str(text, "an environment name", "invalid-name")
    if ":" in text and _ALIAS_TEXT_RE.fullmatch(text):
        bare = text.partition(":")[0]
        fix = f"give the name alone: {_q(bare)}" if bare else "give the name alone"
        _fail(
            f'{_q(text)} has a ":"; a tag is not allowed here, only an environment name',
            rule="invalid-name",
            fix=fix,
        )
    _precheck(
        text,
        kind="name",
        text_re=_NAME_TEXT_RE,
        allowed='a-z, 0-9, "_", ".", "-", with "/" between segments',
        max_len=MAX_NAME_LEN,
        rule="invalid-name",
        tag_start=None,
        suggester=_suggester(lambda c: _parse_name(c, suggest=False), suggest),
    )
    return _parse_name_part(text, whole=text)


def _parse_tag(text: object, *, suggest: bool) -> str:
    text = _require_str(text, "a tag", "invalid-tag")
    if (":" in text or "/" in text) and _ALIAS_TEXT_RE.fullmatch(text):
        after = text.rpartition(":")[2] if ":" in text else ""
        fix = (
            f"give the tag alone: {_q(after)}"
            if after and TAG_RE.fullmatch(after)
            else 'give the tag alone, e.g. "v1"'
        )
        _fail(
            f'{_q(text)} is not a tag: a tag has no "/" or ":" (those belong to the full name)',
            rule="invalid-tag",
            fix=fix,
        )
    _precheck(
        text,
        kind="tag",
        text_re=_TAG_TEXT_RE,
        allowed='a-z, 0-9, "_", ".", "-"',
        max_len=MAX_TAG_LEN,
        rule="invalid-tag",
        tag_start=0,
        suggester=_suggester(lambda c: _parse_tag(c, suggest=False), suggest),
    )
    return _check_tag(text, whole=None)


def _parse_id(text: object, *, suggest: bool) -> EnvId:
    text = _require_str(text, "a resolved id", "invalid-id")
    m = ENV_ID_RE.fullmatch(text)
    if m:
        return EnvId(m.group(1), m.group(2))
    if text == "":
        _fail(f"empty id: {_ID_SHAPE}", rule="invalid-id", fix="give the complete id")
    stripped = "".join(text.split())
    if stripped != text:
        pos, ch = next((i, c) for i, c in enumerate(text) if c.isspace())
        fix = "remove the whitespace"
        if suggest and ENV_ID_RE.fullmatch(stripped.lower()):
            fix = f"use {_q(stripped.lower(), None)}"
        _fail(
            f"{_q(text)} contains whitespace ({_q(ch)} at position {pos}); {_ID_SHAPE}",
            rule="invalid-id",
            fix=fix,
        )
    _diagnose_id(text)
    _fail(f"{_q(text)} is not a resolved id: {_ID_SHAPE}", rule="invalid-id")


def _diagnose_id(text: str) -> NoReturn:
    """Raise the most specific ``invalid-id`` error for ``text`` (not a valid id)."""
    fix = "copy the complete id: both halves, 40 characters each"
    if text.count(":") != 1:
        n = text.count(":")
        what = 'has no ":"' if n == 0 else f'has {n} ":"'
        _fail(f"{_q(text)} {what}; {_ID_SHAPE}", rule="invalid-id", fix=fix)
    if ENV_ID_RE.fullmatch(text.lower()):
        _fail(
            f"{_q(text)} has upper-case hex; {_ID_SHAPE}: did you mean {_q(text.lower(), None)}?",
            rule="invalid-id",
            fix=f"use {_q(text.lower(), None)}",
        )
    req, full = text.split(":")
    for label, half in (("req_id", req), ("full_id", full)):
        bad = next((c for c in half if c not in "0123456789abcdefABCDEF"), None)
        if bad is not None:
            _fail(
                f"{_q(text)} is not a resolved id: its {label} has {_q(bad)}, which is not a "
                f"hex digit; {_ID_SHAPE}",
                rule="invalid-id",
                fix=fix,
            )
    for label, half in (("req_id", req), ("full_id", full)):
        if len(half) != HEX_ID_LEN:
            _fail(
                f"{_q(text)} is not a resolved id: its {label} has {len(half)} characters; "
                f"{_ID_SHAPE}",
                rule="invalid-id",
                fix=fix,
            )
    # Right lengths, hex only, so the remaining problem is case.
    _fail(
        f"{_q(text)} has upper-case hex; {_ID_SHAPE}: did you mean {_q(text.lower(), None)}?",
        rule="invalid-id",
        fix=f"use {_q(text.lower(), None)}",
    )


def _looks_like_id(text: str) -> bool:
    """A ``hex:hex`` pair long enough that it can only be meant as a resolved id (also a
    long pair with a stray non-hex letter in one half: a mistyped id, not an env name)."""
    if text.count(":") != 1 or "/" in text:
        return False
    req, full = text.split(":")
    req_hex = _ANY_HEX_RE.fullmatch(req) is not None
    full_hex = _ANY_HEX_RE.fullmatch(full) is not None
    if req_hex and full_hex:
        return max(len(req), len(full)) >= 32
    return (
        (req_hex or full_hex)
        and min(len(req), len(full)) >= 32
        and req.isascii()
        and req.isalnum()
        and full.isascii()
        and full.isalnum()
    )


def _parse_name_part(name_text: str, *, whole: str) -> EnvName:
    """Structure of the part before ``:`` (characters already checked)."""
    tidy = None
    if name_text.startswith("/") or name_text.endswith("/") or "//" in name_text:
        tidy = _valid_alias_or_none(_tidy_slashes(whole))
    if name_text.startswith("/"):
        _fail(
            f'{_q(whole)} starts with "/"; names are relative to the catalog, not absolute paths'
            + _did_you_mean(whole, tidy),
            rule="invalid-name",
            fix=_fix_for(tidy, 'drop the leading "/"'),
        )
    if name_text.endswith("/"):
        _fail(
            f'{_q(whole)} ends with "/"' + _did_you_mean(whole, tidy),
            rule="invalid-name",
            fix=_fix_for(tidy, 'drop the trailing "/"'),
        )
    segments = tuple(name_text.split("/"))
    if "" in segments:
        _fail(
            f'{_q(whole)} has an empty segment ("//")' + _did_you_mean(whole, tidy),
            rule="invalid-name",
            fix=_fix_for(tidy, 'use a single "/" between segments'),
        )
    _check_segments(segments, whole)
    return EnvName(segments)


def _check_segments(segments: tuple[object, ...], whole: str) -> None:
    if (
        0 < len(segments) <= MAX_DEPTH
        and len(whole) <= MAX_NAME_LEN
        and all(type(s) is str and is_valid_segment(s) for s in segments)
    ):
        return  # valid: skip the step-by-step checks that explain a refusal
    if not segments:
        _fail(
            f"empty name: an environment name looks like {_NAME_SHAPE}",
            rule="invalid-name",
            fix='give a name such as "team/env"',
        )
    if len(segments) > MAX_DEPTH:
        _fail(
            f"{_q(whole)} has {len(segments)} segments; a name has at most {MAX_DEPTH}",
            rule="invalid-name",
            fix="use a shallower namespace",
        )
    for seg in segments:
        _check_segment(seg, whole)
    if len(whole) > MAX_NAME_LEN:
        _fail(
            f"{_q(whole)} is {len(whole)} characters long; a name (without its tag) is at most "
            f"{MAX_NAME_LEN}",
            rule="invalid-name",
            fix="use shorter segments or fewer of them",
        )


def _check_segment(seg: object, whole: str) -> None:
    if not isinstance(seg, str):
        _fail(
            f"a name segment must be text, not {type(seg).__name__}",
            rule="invalid-name",
            fix='build names from text with parse_env_name("team/env")',
        )
    where = f"segment {_q(seg)} of {_q(whole)}" if whole != seg else _q(seg)
    if seg == "":
        _fail(f"{where} is empty", rule="invalid-name", fix="give every segment a name")
    if seg in (".", ".."):
        _fail(
            f'{_q(whole)} has a {_q(seg)} segment; a name is not a path and cannot contain "." '
            'or ".." (it would point outside its folder in the catalog)',
            rule="invalid-name",
            fix=f"remove the {_q(seg)} segment and write the name out in full",
        )
    if not _SEGMENT_CHARS_RE.fullmatch(seg):
        if seg[0] in "-_.":
            cand = _replace_segment(whole, seg, seg.lstrip("-_."))
            _fail(
                f"{where} starts with {_q(seg[0])}; a segment starts with a lower-case letter "
                "or digit" + _did_you_mean(whole, cand),
                rule="invalid-name",
                fix=_fix_for(cand, "start the segment with a letter or digit"),
            )
        # Only reached when an EnvName is built from bad segments directly.
        pos, ch = next((i, c) for i, c in enumerate(seg) if c not in _SEGMENT_CHARSET)
        _fail(
            f"{where} has {_q(ch)} at position {pos}, which is not allowed; segments use "
            'a-z, 0-9, "_", ".", "-"',
            rule="invalid-name",
            fix='build names from text with parse_env_name("team/env")',
        )
    if len(seg) > MAX_SEGMENT_LEN:
        _fail(
            f"{where} is {len(seg)} characters long; a segment is at most {MAX_SEGMENT_LEN}",
            rule="invalid-name",
            fix="use a shorter segment",
        )
    if is_40hex(seg):
        _fail(
            f"{where} is 40 hex characters, which is reserved for resolved ids; {_ID_SHAPE}",
            rule="invalid-name",
            fix="pick a name that is not 40 hex characters, or give the complete resolved id",
        )
    if seg.endswith(RESERVED_SEGMENT_SUFFIXES):
        suffix = next(s for s in RESERVED_SEGMENT_SUFFIXES if seg.endswith(s))
        cand = _replace_segment(whole, seg, seg[: -len(suffix)])
        _fail(
            f"{where} ends with {_q(suffix)}, which is reserved for the catalog's own files "
            f'(env "a/b" is {ENVS_DIR}/a/b{ENV_FILE_SUFFIX}, so no env may need a folder '
            f"named b{ENV_FILE_SUFFIX})" + _did_you_mean(whole, cand),
            rule="invalid-name",
            fix=_fix_for(cand, f"drop the {_q(suffix)} suffix"),
        )


_SEGMENT_CHARSET = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def _replace_segment(whole: str, seg: str, better: str) -> str | None:
    """``whole`` with every segment equal to ``seg`` replaced, if the result is valid."""
    if not better:
        return None
    name, sep, tag = whole.partition(":")
    name = "/".join(better if s == seg else s for s in name.split("/"))
    return _valid_alias_or_none(name + sep + tag)


def _valid_alias_or_none(text: str) -> str | None:
    try:
        _parse_alias(text, DEFAULT_TAG, suggest=False)
    except InvalidNameError:
        return None
    return text


def _check_tag(tag: object, *, whole: str | None) -> str:
    """Validate a tag's grammar and length; ``whole`` is the alias text it came from."""
    if not isinstance(tag, str):
        _fail(
            f"a tag must be text, not {type(tag).__name__}",
            rule="invalid-tag",
            fix='give a tag such as "v1"',
        )
    if TAG_RE.fullmatch(tag):
        return tag
    where = f"tag {_q(tag)} of {_q(whole)}" if whole is not None else f"tag {_q(tag)}"
    if tag == "":
        _fail(f"{where} is empty", rule="invalid-tag", fix='give a tag such as "v1"')
    if tag in (".", ".."):
        _fail(
            f'{where} is not allowed: "." and ".." would point outside the environment\'s folder',
            rule="invalid-tag",
            fix='pick a tag that starts with a letter or digit, e.g. "v1"',
        )
    if _TAG_TEXT_RE.fullmatch(tag) and tag[0] in "-_.":
        better = tag.lstrip("-_.")
        if whole is not None:
            cand = _valid_alias_or_none(whole.partition(":")[0] + ":" + better)
        else:
            cand = better if TAG_RE.fullmatch(better) else None
        _fail(
            f"{where} starts with {_q(tag[0])}; a tag starts with a lower-case letter or digit"
            + _did_you_mean(whole or tag, cand),
            rule="invalid-tag",
            fix=_fix_for(cand, "start the tag with a letter or digit"),
        )
    if _TAG_TEXT_RE.fullmatch(tag):
        _fail(
            f"{where} is {len(tag)} characters long; a tag is at most {MAX_TAG_LEN}",
            rule="invalid-tag",
            fix="use a shorter tag",
        )
    pos, ch = next((i, c) for i, c in enumerate(tag) if c not in _SEGMENT_CHARSET)
    _fail(
        f"{where} has {_q(ch)} at position {pos}, which is not allowed; tags use "
        'a-z, 0-9, "_", ".", "-"',
        rule="invalid-tag",
        fix='give a tag such as "v1"',
    )


# -- character checks and suggestions -----------------------------------------------------


def _precheck(
    text: str,
    *,
    kind: str,
    text_re: re.Pattern[str],
    allowed: str,
    max_len: int,
    rule: str,
    tag_start: int | None,
    suggester: Callable[[str], str | None],
) -> None:
    """Whole-text checks: empty, length, then characters (non-ASCII, whitespace, upper
    case, anything else outside the grammar), each with a suggested correction."""

    def rule_at(pos: int) -> str:
        return "invalid-tag" if tag_start is not None and pos >= tag_start else rule

    def kinds_at(pos: int) -> str:
        return "tags" if rule_at(pos) == "invalid-tag" else "names"

    if text == "":
        _fail(
            f"empty {kind}: "
            + (f"an environment name looks like {_NAME_SHAPE}" if kind == "name" else 'e.g. "v1"'),
            rule=rule,
            fix='give a name such as "team/env"' if kind == "name" else 'give a tag such as "v1"',
        )
    if len(text) > max_len:
        _fail(
            f"{_q(text)} is {len(text)} characters long; "
            + (
                f"a name is at most {MAX_NAME_LEN} characters and a tag at most {MAX_TAG_LEN}"
                if kind == "name"
                else f"a tag is at most {MAX_TAG_LEN} characters"
            ),
            rule=rule,
            fix=f"use a shorter {kind}",
        )
    if text_re.fullmatch(text):
        return
    ref = re.search(r"@\{[^}]*\}?", text)
    if ref:
        _fail(
            f"{_q(text)} has an unexpanded variable {_q(ref.group())}",
            rule=rule_at(ref.start()),
            fix='expand "@{VAR}" variables (interpolate) before parsing the name',
        )
    for pos, ch in enumerate(text):
        if ord(ch) > 127:
            cand = suggester(text)
            _fail(
                f"{_q(text)} has a non-ASCII character {_q(ch)} ({_char_name(ch)}) at position "
                f"{pos}; {kinds_at(pos)} are plain ASCII" + _did_you_mean(text, cand),
                rule=rule_at(pos),
                fix=_fix_for(cand, f"retype it using only {allowed}"),
            )
    for pos, ch in enumerate(text):
        if ch.isspace():
            cand = suggester(text)
            _fail(
                f"{_q(text)} contains whitespace ({_q(ch)} at position {pos}); "
                f"{kinds_at(pos)} have no spaces, tabs or newlines" + _did_you_mean(text, cand),
                rule=rule_at(pos),
                fix=_fix_for(cand, "remove the whitespace"),
            )
    for pos, ch in enumerate(text):
        if "A" <= ch <= "Z":
            cand = suggester(text)
            _fail(
                f"{_q(text)} has upper case; {kinds_at(pos)} are lower case"
                + _did_you_mean(text, cand),
                rule=rule_at(pos),
                fix=_fix_for(cand, "use lower case"),
            )
    pos, ch = next((i, c) for i, c in enumerate(text) if not text_re.fullmatch(c))
    hint = ""
    fix = f"use only {allowed}"
    if ch == "\\":
        cand = suggester(text)
        hint = ' (use "/" between segments)' + _did_you_mean(text, cand)
        fix = _fix_for(cand, 'use "/" between segments')
    elif kind == "tag" and ch in "/:":
        hint = ' (a tag has no "/" or ":")'
    _fail(
        f"{_q(text)} has {_q(ch)} at position {pos}, which is not allowed; "
        f"{kinds_at(pos)} use only {allowed}{hint}",
        rule=rule_at(pos),
        fix=fix,
    )


def _suggester(parse: Callable[[str], object], enabled: bool) -> Callable[[str], str | None]:
    """A function returning a corrected spelling of a text that ``parse`` accepts, if any."""

    def suggest(text: str) -> str | None:
        if not enabled:
            return None
        cand = _normalise_candidate(text)
        if cand == text or not cand:
            return None
        try:
            parse(cand)
        except InvalidNameError:
            return None
        return cand

    return suggest


def _normalise_candidate(text: str) -> str:
    """Best guess at what a mistyped name meant: ASCII, lower case, no stray whitespace."""
    c = unicodedata.normalize("NFKC", text)
    c = c.translate(_CONFUSABLES)
    c = c.strip().lower().replace("\\", "/")
    c = re.sub(r"\s*([/:])\s*", r"\1", c)
    c = re.sub(r"\s+", "-", c)
    c = re.sub(r"(^|[/:])[-_.]+", r"\1", c)
    return _tidy_slashes(c)


def _tidy_slashes(text: str) -> str:
    """Collapse ``//``, drop leading/trailing ``/`` (around the tag too)."""
    name, sep, tag = text.partition(":")
    name = re.sub(r"/{2,}", "/", name).strip("/")
    return name + sep + tag


def _did_you_mean(text: str, cand: str | None) -> str:
    return f": did you mean {_q(cand, None)}?" if cand and cand != text else ""


def _fix_for(cand: str | None, otherwise: str) -> str:
    return f"use {_q(cand, None)}" if cand else otherwise


def _check_variable_value(var: str, value: object, text: str) -> str:
    """``value`` if it is a valid fragment of a segment or tag, else a clear error."""
    ref = "@{" + var + "}"
    where = f"{ref} in {_q(text)}"
    if value is None:
        _fail(
            f"{where}: variable {var} is not set",
            rule="unset-variable",
            fix=f"set {var} in the environment (e.g. export {var}=ranking) or write the name out",
        )
    if not isinstance(value, str):
        _fail(
            f"{where}: variable {var} is {type(value).__name__}, not text",
            rule="invalid-variable",
            fix=f"set {var} to text",
        )
    if value == "":
        _fail(
            f"{where}: variable {var} is empty",
            rule="unset-variable",
            fix=f"set {var} to a non-empty value or write the name out",
        )
    if _FRAGMENT_RE.fullmatch(value):
        return value
    shown = f"{where}: {var} is {_q(value)}"
    rule = "invalid-variable"
    if "/" in value:
        _fail(
            f'{shown}, which contains "/"; a variable fills in part of one segment or tag and '
            "cannot add segments",
            rule=rule,
            fix=f'set {var} to a single segment, or write the "/" in the name itself',
        )
    if ":" in value:
        _fail(
            f'{shown}, which contains ":"; a variable cannot add or change a tag',
            rule=rule,
            fix=f'set {var} without ":", or write the ":tag" in the name itself',
        )
    if any(ord(c) > 127 for c in value):
        _fail(
            f"{shown}, which has non-ASCII characters; names are plain ASCII",
            rule=rule,
            fix=f'set {var} using only a-z, 0-9, "_", ".", "-"',
        )
    if any(c.isspace() for c in value):
        _fail(
            f"{shown}, which contains whitespace",
            rule=rule,
            fix=f"set {var} without spaces or newlines",
        )
    if _FRAGMENT_RE.fullmatch(value.lower()):
        _fail(
            f"{shown}, which has upper case; names are lower case: did you mean "
            f"{_q(value.lower())}?",
            rule=rule,
            fix=f"set {var}={value.lower()}",
        )
    bad = next(c for c in value if not _FRAGMENT_RE.fullmatch(c))
    _fail(
        f"{shown}, which has {_q(bad)}; a variable's value may use only a-z, 0-9, "
        '"_", ".", "-" (values are not expanded again)',
        rule=rule,
        fix=f'set {var} using only a-z, 0-9, "_", ".", "-"',
    )


# -- helpers ----------------------------------------------------------------------------


def _fail(message: str, *, rule: str, fix: str | None = None) -> NoReturn:
    raise InvalidNameError(message, rule=rule, fix=fix)


def _require_str(value: object, what: str, rule: str) -> str:
    if isinstance(value, str):
        return str(value)
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:39] + "…"
    raise InvalidNameError(
        f"expected {what} as text, got {type(value).__name__} {shown}",
        rule=rule,
        fix=f"pass {what} as a string",
    )


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def _q(value: object, limit: int | None = 100) -> str:
    """Double-quote a text for a message, escaping what would not print, truncating long ones
    (suggestions pass ``limit=None``: they are meant to be copied)."""
    s = value if isinstance(value, str) else repr(value)
    if limit is not None and len(s) > limit:
        s = s[: limit - 10] + "…" + s[-9:]
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() and not (ch.isspace() and ch != " "):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".rstrip()
