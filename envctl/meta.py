"""``locks/<env>/<tag>.meta.yaml``: what was resolved, by whom and when. Written only by CI
(or ``envctl resolve`` in a work tree, for CI to check and commit).

Written as indented JSON under a YAML comment line: still a YAML document (JSON is a
subset of YAML), so every YAML reader, older envctl and ``yamlio.load`` included, reads it
the same, while :func:`load_meta` reads it about six times faster than YAML. That is what
makes ``envctl lint`` of 67,000 metas fit in seconds. Metas written as block YAML by
earlier versions stay valid (committed metas are byte-for-byte frozen) and take the YAML
path.

Versioned. Per platform it records ``req_id``, ``full_id`` and the fully expanded
request, so a later change of catalog defaults never changes a frozen id. Times
and identity are passed in by the caller (never ``datetime.now()`` or the user
name inside a model), so the same inputs give the same bytes.

``pypi_exclude_newer: false`` records that the PyPI part was solved without the tag's
``exclude_newer`` (the catalog's or the tag's opt-out, for an index without upload
times). It is written only then: every other meta keeps the bytes it always had.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import Field, field_validator

from envctl import yamlio
from envctl.errors import EnvctlError
from envctl.models import Hex40, Key, Sha256, StrictModel, YamlBool, validate
from envctl.names import is_valid_tag
from envctl.spec import Request

META_VERSION = "1"


class PlatformMeta(StrictModel):
    req_id: Hex40
    full_id: Hex40
    request: Request


class Meta(StrictModel):
    version: str = META_VERSION
    alias: str
    base: str | None = Field(default=None, description="the alias this tag extends, if any")
    exclude_newer: str | None = None
    pypi_exclude_newer: YamlBool = Field(
        default=True,
        description="false when the PyPI part was solved without exclude_newer "
        "(pypi_exclude_newer / pypi_options.exclude_newer); written only then",
    )
    resolved_at: str
    resolved_by: str
    envctl_version: str
    tools: dict[Key, str] = Field(
        default_factory=dict, description="solver versions, e.g. py-rattler and uv"
    )
    lock_sha256: Sha256
    platforms: dict[str, PlatformMeta] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != META_VERSION:
            raise ValueError(
                f"meta version {value!r} is newer than this envctl understands; upgrade envctl"
            )
        return value

    def env_ids(self) -> dict[str, str]:
        """``{platform: "req_id:full_id"}``."""
        return {p: f"{m.req_id}:{m.full_id}" for p, m in self.platforms.items()}


def parse_meta(data: object, *, file: str) -> Meta:
    """Validate an already loaded meta document (see :func:`load_meta` for bytes)."""
    return validate(Meta, data, file=file)


def load_meta(data: bytes, *, file: str) -> Meta:
    """A meta from its bytes, with exactly the meaning YAML gives them.

    The JSON fast path is only a shortcut: whatever it does not take (block YAML, a
    duplicate key, a number where YAML would read a string, an escape YAML reads
    differently) goes through :mod:`envctl.yamlio`, whose errors name the line.
    """
    raw = fast_json(data)
    if raw is not None:
        try:
            return parse_meta(raw, file=file)
        except EnvctlError:
            pass  # e.g. a hand-written 1 for "1": YAML reads it as a string
    return parse_meta(yamlio.load(data, file=file), file=file)


def fast_json(data: bytes) -> Any | None:
    """The document when ``data`` is what :func:`dump_meta` writes for an ASCII meta: comment
    lines, then a JSON object. None when only the YAML loader may decide.

    It takes only bytes YAML reads as the same mapping, or that the model refuses either
    way: a number or ``true`` where YAML reads a string (the model wants strings, so such a
    meta is read again as YAML), nesting past yamlio's depth (no meta is that deep). So the
    meaning of a meta never depends on which path read it; ``tests/fuzz/test_meta_fuzz.py``
    checks it.
    """
    if len(data) > yamlio.MAX_BYTES:
        return None  # yamlio refuses it, naming the limit
    body = data[_HEADER.match(data).end():]  # type: ignore[union-attr]  # (always matches)
    # Printable ASCII and newlines only: no encodings to guess, no control bytes, no
    # character YAML takes for a line break (CR, NEL, LS, PS); no \u escape (YAML refuses
    # lone surrogates and does not join pairs); no line break or space before a key's
    # colon (YAML wants a flow key on one line, and the colon right after it).
    if (not body.startswith(b"{") or body.translate(None, _ASCII_TEXT)
            or b"\\u" in body or _SPACE_BEFORE_COLON.search(body)):
        return None
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):  # also duplicate and overlong keys
        return None


#: Comment lines as dump_meta writes them (printable ASCII): YAML ends a comment at more
#: line breaks than "\n", and a comment must not hide a second reading of the file.
_HEADER = re.compile(rb"(?:#[\x20-\x7e]*\n)*")
_ASCII_TEXT = bytes([0x0A, *range(0x20, 0x7F)])
_SPACE_BEFORE_COLON = re.compile(rb'"[ \n]+:')
#: YAML reads a flow mapping key of at most 1,024 characters.
_MAX_KEY = 1000


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")  # yamlio names both lines
    if any(len(key) > _MAX_KEY for key in out):
        raise ValueError("key too long for YAML")
    return out


def dump_meta(meta: Meta) -> bytes:
    """Deterministic bytes: fields in model order, platforms sorted, as indented JSON (a
    YAML document too) under a comment line. ``pypi_exclude_newer`` appears only when false."""
    data = meta.model_dump(mode="json")
    if meta.pypi_exclude_newer:
        # Written only when false, so that every meta written before the field existed,
        # and every meta since with the cut-off applied, has the same bytes.
        del data["pypi_exclude_newer"]
    data["platforms"] = {p: data["platforms"][p] for p in sorted(data["platforms"])}
    tag = meta.alias.rsplit(":", 1)[-1]
    # The comment is outside any quoting: only a valid tag may appear in it, or a tag
    # with a newline could end the comment and inject keys.
    lock_hint = f" The lockfile is {tag}.conda-lock.yml" if is_valid_tag(tag) else ""
    header = f"# Resolved by envctl; do not edit.{lock_hint}\n"
    text = json.dumps(data, indent=2, ensure_ascii=False)
    # What YAML may not hold raw (non-printables) or reads as a line break inside quotes
    # is escaped; not all of non-ASCII (ensure_ascii), whose surrogate pairs for characters
    # beyond U+FFFF YAML does not read. An escape sends the file down fast_json's YAML path.
    text = _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return (header + text + "\n").encode("utf-8")


_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
