"""``full_id``: the solved half of an environment id ``req_id:full_id``.

``req_id`` (what was asked) lives in :mod:`envctl.spec`; ``full_id`` (what was
got) is defined here. Both are 40-hex sha1. Changing how either is computed is a
breaking change for every consumer that recorded one: tests pin expected values.

This module is on the hook's path: standard library only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Protocol

_SHA256 = re.compile(r"[0-9a-f]{64}")

#: Bumped only together with every pinned id in the tests (and a migration note).
FULL_ID_VERSION = "1"


class HasFileHash(Protocol):
    @property
    def filename(self) -> str: ...

    @property
    def sha256(self) -> str: ...


def file_entry(filename: str, sha256: str) -> str:
    """``<filename>#<sha256>``: one installed file, named and content-addressed."""
    if not filename or "/" in filename or "\n" in filename:
        raise ValueError(f"not a package file name: {filename!r}")
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"{filename}: sha256 must be 64 lower-case hex characters")
    return f"{filename}#{sha256}"


def full_id_of_entries(platform: str, entries: Iterable[str]) -> str:
    """sha1 of ``platform`` and the sorted ``filename#sha256`` entries, one per line.

    The text hashed is ``"<platform>\\n" + "".join(sorted(entry + "\\n"))``: order-free
    (a lockfile may list packages in any order) and unambiguous (no entry holds a newline).
    """
    text = platform + "\n" + "".join(f"{entry}\n" for entry in sorted(set(entries)))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def full_id(platform: str, packages: Iterable[HasFileHash]) -> str:
    """``full_id`` of every package (conda and PyPI) a lock installs on ``platform``."""
    return full_id_of_entries(platform, (file_entry(p.filename, p.sha256) for p in packages))
