"""Shared pydantic base, field types and JSON form, and the one place that turns a
ValidationError into file:line errors."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from envctl.errors import CatalogError, MultipleErrors
from envctl.names import is_40hex

M = TypeVar("M", bound=BaseModel)

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored); instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _hex40(value: str) -> str:
    if not is_40hex(value):
        raise ValueError("must be 40 lower-case hex characters")
    return value


def _sha256(value: str) -> str:
    if _SHA256_RE.fullmatch(value) is None:
        raise ValueError("must be 64 lower-case hex characters")
    return value


#: One half of an environment id (``req_id`` or ``full_id``): 40 lower-case hex characters.
Hex40 = Annotated[str, AfterValidator(_hex40)]
#: A sha256 digest: 64 lower-case hex characters.
Sha256 = Annotated[str, AfterValidator(_sha256)]

_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


def _yaml_bool(value: object) -> bool:
    # yamlio hands every scalar over as a string. pydantic's lax bool would also take
    # "yes", "off", "1" or "n"; only YAML 1.2's booleans are taken, so that a file
    # means the same to every YAML reader (YAML 1.1 reads "no" as false, 1.2 as a string).
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"must be true or false, not {value[:40]!r}")
    raise ValueError("must be true or false")


#: A mapping key short enough for any YAML reader: a flow-style key (as in the JSON metas
#: are written in) may be at most 1,024 characters long.
Key = Annotated[str, Field(max_length=200)]

#: A boolean as YAML 1.2 spells it (``true``/``false``), from YAML (a string) or JSON.
YamlBool = Annotated[bool, BeforeValidator(_yaml_bool)]


def dump_json(model: BaseModel) -> bytes:
    """Deterministic JSON bytes: sorted keys, two-space indent, one trailing newline."""
    text = json.dumps(model.model_dump(mode="json"), indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """Best line for a pydantic error location, walking the loader's line maps.

    The safe loader returns mappings/lists that remember where each key/item
    was; the deepest location we can still find is the most helpful.
    """
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            key_lines = getattr(node, "key_lines", None) or {}
            line = key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            item_lines = getattr(node, "item_lines", None) or []
            if part < len(item_lines):
                line = item_lines[part]
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str):
            continue  # a union's discriminator tag ("concrete") or "[key]": not in the data
        else:
            break
    return line


def _display_loc(data: Any, loc: tuple[Any, ...]) -> str:
    """``tags.v2.extends`` rather than pydantic's ``tags.v2.concrete.extends``.

    Parts that are not in the data (a union's discriminator tag, ``[key]``) are dropped,
    except a final missing key, which names what is required.
    """
    parts: list[str] = []
    node = data
    for i, part in enumerate(loc):
        text = str(part)
        if text.startswith("function-") or text == "[key]":
            continue
        if isinstance(node, dict) and isinstance(part, str):
            if part in node:
                node = node[part]
            elif i < len(loc) - 1:
                continue
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        parts.append(text)
    return ".".join(parts)


def _describe(error: dict[str, Any], data: Any) -> str:
    loc = _display_loc(data, tuple(error["loc"]))
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{loc}: {msg}" if loc else msg


def validate(model: type[M], data: Any, *, file: str, fix: str | None = None) -> M:
    """Validate ``data`` into ``model``; every problem becomes a CatalogError with file:line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            CatalogError(
                _describe(err, data),
                file=file,
                line=line_of(data, tuple(err["loc"])),
                rule="schema",
                fix=fix,
            )
            for err in exc.errors(include_url=False)
        ]
        if len(errors) == 1:
            raise errors[0] from None
        raise MultipleErrors(errors, f"{file}: {len(errors)} schema problems") from None
