"""The jinja2 environments reports render with: sandboxed, templates beside this module.

HTML autoescapes everything (descriptions, commit messages and package names come from
pull requests). Markdown has no autoescape in jinja2, so every value that is not ours
goes through the ``md`` filter, which neutralises HTML and the characters that would
break a table cell or start formatting. jinja2 is imported only when a report renders.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

TEMPLATES = Path(__file__).parent / "templates"

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~])")


def md(value: object) -> str:
    """Text safe inside a markdown table cell or paragraph (GitHub flavour)."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def code(value: object) -> str:
    """Inline code that survives any content: the fence is longer than any backtick run
    inside, and a pipe (which would end a table cell even inside code) is escaped."""
    text = ("" if value is None else str(value)).replace("\n", " ").replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def short(sha: object, length: int = 12) -> str:
    return str(sha or "")[:length]


@lru_cache(maxsize=2)
def environment(kind: Literal["html", "md"]) -> SandboxedEnvironment:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=kind == "html",
        undefined=StrictUndefined,  # a typo in a template is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md
    env.filters["code"] = code
    env.filters["short"] = short
    return env


def render(template: str, **context: object) -> str:
    kind: Literal["html", "md"] = "html" if template.endswith(".html.j2") else "md"
    text = environment(kind).get_template(template).render(**context)
    if kind == "md":
        # Templates stay readable with generous blank lines; markdown needs at most one.
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    return text
