"""Values of options that several commands share, parsed once: ``--exclude-newer`` and the
default of ``--by`` (who resolves)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RESOLVED_BY_ENV", "now", "parse_exclude_newer", "resolved_by"]

RESOLVED_BY_ENV = "ENVCTL_RESOLVED_BY"


def now() -> datetime:
    """The current time in UTC to the second, as recorded in metas."""
    return datetime.now(UTC).replace(microsecond=0)


def resolved_by(root: Path) -> str:
    """Who resolves: $ENVCTL_RESOLVED_BY (CI sets it), else git's user, else the login name."""
    explicit = os.environ.get(RESOLVED_BY_ENV)
    if explicit:
        return explicit
    from envctl.git import run_git

    for key in ("user.email", "user.name"):
        proc = run_git(root, ["config", "--get", key], check=False)
        value = proc.stdout.decode("utf-8", "replace").strip()
        if proc.returncode == 0 and value:
            return value
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def parse_exclude_newer(text: str | None) -> Any:
    """``--exclude-newer``: None (the option not given) -> the resolver's AUTO; ``now``;
    ``none`` (no cut-off) -> None; else an ISO time with a zone."""
    from envctl.errors import EnvctlError
    from envctl.resolve.api import AUTO
    from envctl.resolve.history import parse_iso

    if text is None:
        return AUTO
    lowered = text.strip().lower()
    if lowered == "now":
        return now()
    if lowered == "none":
        return None
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise EnvctlError(
            f"--exclude-newer {text!r} is not a time: {exc}",
            rule="invalid-option",
            fix="give an ISO time with a zone (2024-05-01T00:00:00Z), 'now' or 'none'",
        ) from None
