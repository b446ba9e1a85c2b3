"""Edit environment files the way a careful person would: ``new``, ``tag`` and ``bump``.

An environment file is human-owned, so an edit changes only what it must: the file is
validated before it is edited, loaded round-trip (comments, key order, quotes and style
kept, every scalar a string), extended with block-style content appended at the end of
``tags:`` in the file's own indentation, validated again and replaced atomically.

The modules, each small:

- :mod:`envctl.edit.yamlstyle`: string-only round-trip YAML, quoting of retypable
  scalars, indentation detection, the prelude ruamel would drop.
- :mod:`envctl.edit.document`: one env file open for editing: load, add a tag, save
  (validated, atomic, refused if the file changed meanwhile).
- :mod:`envctl.edit.checks`: what an edit checks before writing.
- :mod:`envctl.edit.envyml`: reading a conda environment.yml (``new --from``).
- :mod:`envctl.edit.newtag`, :mod:`envctl.edit.pointers`, :mod:`envctl.edit.bumping`: the
  operations ``new`` (and ``extend``), ``tag`` and ``bump``.

This package's public API is what it exports here.
"""

from __future__ import annotations

from envctl.edit.bumping import BumpResult, PointerMove, bump
from envctl.edit.envyml import ImportedEnv, read_environment_yml
from envctl.edit.newtag import new_tag
from envctl.edit.pointers import set_pointer
from envctl.edit.yamlstyle import Indent, detect_indent, needs_quotes

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
