"""Environments on this machine: named ones and the cache of environments by id.

- ``$ENVCTL_HOME/envs/<name>``: made by ``envctl create REF --name NAME``; the user
  chose the name and owns its life.
- ``$ENVCTL_HOME/by-id/<full_id>``: made on demand by ``envctl run``, the Python API
  and ``@named_env``; one per set of packages (the full_id covers the platform and
  every file), shared by every alias and request that resolves to it.

Each holds ``conda-meta/envctl.json`` (see :mod:`envctl.materialize`) once complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from envctl.errors import EnvctlError, InvalidNameError, NotFoundError
from envctl.materialize import PrefixRecord, envctl_home, read_record
from envctl.names import is_40hex

ENVS_DIR = "envs"
BY_ID_DIR = "by-id"

# Like a conda env name: one path segment that is safe in a shell and on any filesystem.
_LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

Kind = Literal["named", "by-id"]


def check_local_name(name: str) -> str:
    """``name`` if it can name a local environment, else :class:`InvalidNameError`."""
    if not isinstance(name, str) or not _LOCAL_NAME.fullmatch(name):
        raise InvalidNameError(
            f"{name!r} cannot name a local environment",
            rule="invalid-local-name",
            fix="use letters, digits and ._- (up to 64, not starting with . or -), e.g. 'ds-v1'",
        )
    return name


def envs_dir(home: Path | None = None) -> Path:
    return (home or envctl_home()) / ENVS_DIR


def named_prefix(name: str, home: Path | None = None) -> Path:
    """Where the named local environment ``name`` lives (it may not exist yet)."""
    return envs_dir(home) / check_local_name(name)


def by_id_prefix(full_id: str, home: Path | None = None) -> Path:
    """Where the cached environment of ``full_id`` lives (it may not exist yet)."""
    if not is_40hex(full_id):
        raise InvalidNameError(f"{full_id!r} is not a full_id", rule="invalid-id")
    return (home or envctl_home()) / BY_ID_DIR / full_id


@dataclass(frozen=True)
class LocalEnv:
    name: str
    kind: Kind
    prefix: Path
    record: PrefixRecord | None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        rec = self.record
        return {
            "name": self.name,
            "kind": self.kind,
            "prefix": str(self.prefix),
            "alias": rec.alias if rec else None,
            "id": rec.env_id if rec else None,
            "platform": rec.platform if rec else None,
            "created_at": rec.created_at if rec else None,
            "complete": rec is not None,
            "problem": self.problem,
        }


def list_envs(home: Path | None = None, *, include_cached: bool = True) -> list[LocalEnv]:
    """Named environments (sorted by name), then cached ones (by full_id).

    A directory without a record is listed as incomplete: a create that was killed
    (a failed create leaves nothing, a killed process may leave its temp directory,
    which starts with '.' and is not listed).
    """
    home = home or envctl_home()
    found: list[LocalEnv] = []
    roots: list[tuple[Kind, Path]] = [("named", envs_dir(home))]
    if include_cached:
        roots.append(("by-id", home / BY_ID_DIR))
    for kind, root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            if path.name.startswith(".") or not path.is_dir():
                continue
            try:
                record = read_record(path)
                problem = None if record is not None else "incomplete (no conda-meta/envctl.json)"
            except EnvctlError as exc:
                record, problem = None, exc.message
            found.append(LocalEnv(path.name, kind, path, record, problem))
    return found


def find_named(name: str, home: Path | None = None) -> LocalEnv:
    """The named local environment ``name``; NotFoundError naming the ones that exist."""
    prefix = named_prefix(name, home)
    record = read_record(prefix) if prefix.is_dir() else None
    if record is None:
        known = [e.name for e in list_envs(home, include_cached=False)]
        raise NotFoundError(
            f"no local environment named {name!r}",
            file=str(prefix),
            fix=f"local environments: {', '.join(known)}" if known
            else "create one with 'envctl create NAME:TAG --name LOCAL'",
        )
    return LocalEnv(name, "named", prefix, record)
