"""What the catalog's git history still references, under the retention policy.

A tag's *position* is the lock it resolves to: its own lock for a concrete tag, its
target's for a pointer. Walking the protected branch's first-parent history (only the
commits that touch ``envs/`` or ``locks/``) gives each tag a timeline of positions.
Then, with ``retention:`` from catalog.yaml (or the gc options):

- every live tag's current position is kept: immutable tags stay forever, until they
  are ``retired:``; a retired tag's current position is not kept by that tag;
- an earlier position (a mutable tag that moved, a rolling tag re-resolved) is kept
  while it is among the tag's ``keep_last`` most recent earlier positions or was
  superseded less than ``keep_days`` ago; a deleted tag's positions only for
  ``keep_days`` (there is nothing left to roll back);
- a kept position keeps its lock (``locks/<sha256>``), its environment records
  (``envs/<platform>/<req_id>/<full_id>.json``) and every package its lock names, so a
  package shared with any kept environment stays.

Alias records (``aliases/<name>/<tag>.json``) of live tags are kept; those of retired or
deleted tags are *dead*. An alias record for a tag this history never saw is neither:
gc keeps it (the clone may be older than the store) along with what it names.

Nothing here touches the store: the result is a set of keys and reasons, which
:mod:`envctl.lifecycle.gc` combines with what the store's own records reference.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from envctl.catalog import Catalog
from envctl.config import Retention
from envctl.errors import CatalogError, EnvctlError
from envctl.git import BlobReader, run_git
from envctl.lifecycle.catalogs import CatalogAt, RevSource
from envctl.names import LOCK_FILE_SUFFIX, META_FILE_SUFFIX, Alias, EnvName
from envctl.spec import ConcreteTag, PointerTag

DAY = 86400.0


@dataclass(frozen=True)
class Position:
    """What a tag resolved to: a lock (by sha256) and its environment per platform."""

    alias: str  # the concrete tag whose lock this is (a pointer's target)
    lock_sha256: str
    envs: tuple[tuple[str, str, str], ...]  # (platform, req_id, full_id), sorted
    rev: str = field(compare=False)  # a commit where the lock can be read
    lock_path: str = field(compare=False)  # its path in the repository at ``rev``


@dataclass(frozen=True)
class Change:
    """A tag's state from ``at`` (commit time, POSIX seconds) until the next change."""

    at: float
    commit: str
    position: Position | None  # None: pending, or the tag is gone
    retired: bool = False


@dataclass(frozen=True)
class Verdict:
    """One position of one tag, kept or not, and why (for reports and --json)."""

    tag: str
    position: Position
    kept: bool
    why: str

    def to_dict(self) -> dict[str, object]:
        return {
            "tag": self.tag,
            "lock_sha256": self.position.lock_sha256,
            "from": self.position.alias,
            "kept": self.kept,
            "why": self.why,
        }


@dataclass
class Reachability:
    """The store keys the catalog references (each with its reasons), and dead aliases."""

    rev: str
    now: datetime
    retention: Retention
    verdicts: list[Verdict] = field(default_factory=list)
    env_keys: dict[str, set[str]] = field(default_factory=dict)
    lock_keys: dict[str, set[str]] = field(default_factory=dict)
    package_keys: dict[str, set[str]] = field(default_factory=dict)
    live_aliases: dict[str, str] = field(default_factory=dict)  # key -> name:tag
    dead_aliases: dict[str, str] = field(default_factory=dict)  # key -> why
    warnings: list[str] = field(default_factory=list)

    def referenced(self, key: str) -> set[str]:
        """Why ``key`` is kept (empty when the catalog does not keep it)."""
        for table in (self.env_keys, self.lock_keys, self.package_keys):
            if key in table:
                return table[key]
        return set()


# -- history ----------------------------------------------------------------------------


def _touched_envs(paths: Iterable[str], subdir: str) -> set[EnvName]:
    """Environments whose file or locks a commit changed."""
    from envctl.names import env_name_from_path

    names: set[EnvName] = set()
    for raw in paths:
        path = raw[len(subdir) :] if subdir and raw.startswith(subdir) else raw
        try:
            if path.startswith("envs/"):
                names.add(env_name_from_path(path))
            elif path.startswith("locks/") and path.endswith((LOCK_FILE_SUFFIX, META_FILE_SUFFIX)):
                segments = tuple(path.split("/")[1:-1])
                if segments:
                    names.add(EnvName(segments))
        except EnvctlError:
            continue  # not an environment's file: lint reports it, history ignores it
    return names


def _commits(top: Path, rev: str, subdir: str) -> list[tuple[str, float, set[EnvName]]]:
    """First-parent commits up to ``rev`` touching envs/ or locks/, oldest first."""
    prefix = subdir + "/" if subdir else ""
    out = run_git(
        top,
        [
            "log", "--first-parent", "--diff-merges=first-parent", "--reverse", "--root",
            "--no-renames", "--name-only", "--format=%x1e%H %ct", rev, "--",
            f"{prefix}envs", f"{prefix}locks",
        ],
        timeout=600,
    ).stdout.decode("utf-8", "surrogateescape")
    commits = []
    for record in out.split("\x1e")[1:]:
        head, *paths = record.strip("\n").split("\n")
        sha, _, seconds = head.partition(" ")
        commits.append((sha, float(seconds), _touched_envs((p for p in paths if p), prefix)))
    return commits


def _position(cat: Catalog, alias: Alias, rev: str, subdir: str) -> Position | None:
    """The lock ``alias`` (a concrete tag) has at this revision, None while pending."""
    meta = cat.meta(alias)
    if meta is None:
        return None
    envs = tuple(sorted((p, m.req_id, m.full_id) for p, m in meta.platforms.items()))
    lock_path = f"{subdir}/{alias.lock_path}" if subdir else str(alias.lock_path)
    return Position(str(alias), meta.lock_sha256, envs, rev, lock_path)


def _env_state(
    cat: Catalog, name: EnvName, rev: str, subdir: str
) -> dict[str, tuple[Position | None, bool]]:
    """``{tag: (position, retired)}`` of one environment at one revision."""
    if not cat.has_env(name):
        return {}
    env = cat.env(name)
    state: dict[str, tuple[Position | None, bool]] = {}
    for tag, spec in env.tags.items():
        if isinstance(spec, PointerTag):
            target = env.tags.get(spec.points_to)
            position = (
                _position(cat, Alias(name, spec.points_to), rev, subdir)
                if isinstance(target, ConcreteTag)
                else None
            )
            state[tag] = (position, False)
        else:
            state[tag] = (_position(cat, Alias(name, tag), rev, subdir), bool(spec.retired))
    return state


def tag_timelines(at: CatalogAt) -> tuple[dict[str, list[Change]], list[str]]:
    """Every tag's changes of position on the protected branch, oldest first.

    Returns ``({"name:tag": [Change, ...]}, warnings)``. A revision whose env file or
    meta does not parse leaves that environment as it was (and is reported).
    """
    assert at.top is not None and at.rev is not None
    timelines: dict[str, list[Change]] = {}
    known: dict[EnvName, set[str]] = {}
    warnings: list[str] = []
    blobs = BlobReader(at.top)
    try:
        for sha, when, names in _commits(at.top, at.rev, at.subdir):
            cat = Catalog(RevSource(blobs, at.top, sha, at.subdir))
            for name in sorted(names):
                try:
                    state = _env_state(cat, name, sha, at.subdir)
                except EnvctlError as exc:
                    warnings.append(f"{sha[:12]}: {name} is unreadable ({exc.message}); skipped")
                    continue
                present = set(state)
                for tag in known.get(name, set()) - present:
                    state[tag] = (None, False)  # the tag (or the whole file) was deleted
                known[name] = present
                for tag, (position, retired) in state.items():
                    line = timelines.get(f"{name}:{tag}")
                    if line is None:
                        if position is None and not retired:
                            continue  # pending from the start: nothing to remember yet
                        line = timelines[f"{name}:{tag}"] = []
                    elif (line[-1].position, line[-1].retired) == (position, retired):
                        continue
                    line.append(Change(when, sha, position, retired))
    finally:
        blobs.close()
    return timelines, warnings


# -- retention --------------------------------------------------------------------------


def judge(tag: str, changes: list[Change], retention: Retention, now: float,
          *, deleted: bool = False) -> list[Verdict]:
    """Which positions of one tag retention keeps (see the module docstring).

    A ``deleted`` tag has no "last positions" to roll back to: only ``keep_days`` holds
    its former positions.
    """
    verdicts: list[Verdict] = []
    last = changes[-1]
    if last.position is not None:
        if last.retired:
            verdicts.append(Verdict(tag, last.position, False, "retired"))
        else:
            verdicts.append(Verdict(tag, last.position, True, "current"))
    # When each earlier position stopped being current (the latest time, if it recurs).
    superseded: dict[Position, float] = {}
    for before, after in itertools.pairwise(changes):
        if before.position is not None and before.position != last.position:
            superseded[before.position] = max(superseded.get(before.position, 0.0), after.at)
    ranked = sorted(superseded.items(), key=lambda item: -item[1])
    for rank, (position, until) in enumerate(ranked):
        age_days = (now - until) / DAY
        since = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d")
        if rank < retention.keep_last and not deleted:
            why = f"earlier position #{rank + 1} (keep_last {retention.keep_last})"
            verdicts.append(Verdict(tag, position, True, why))
        elif age_days < retention.keep_days:
            why = f"current until {since} (keep_days {retention.keep_days:g})"
            verdicts.append(Verdict(tag, position, True, why))
        else:
            why = f"superseded {since}, beyond keep_last and keep_days"
            verdicts.append(Verdict(tag, position, False, why))
    return verdicts


def reachability(at: CatalogAt, *, now: datetime, retention: Retention | None = None,
                 lock_bytes: dict[str, bytes] | None = None) -> Reachability:
    """What the protected branch references at ``now`` under ``retention`` (by default
    catalog.yaml's, read at the protected revision).

    ``lock_bytes`` (sha256 -> bytes) is filled with every kept lock read, for callers
    that need them again. Raises when a kept lock cannot be read: gc must never guess.
    """
    from envctl.resolve.lockfile import read_lock
    from envctl.store.base import alias_key, env_record_key, lock_key, package_key, sha256_bytes

    if at.top is None or at.rev is None:
        raise CatalogError(
            f"{at.root} is not in a git repository",
            rule="not-a-repo",
            fix="gc reads the catalog's git history; run it in a clone of the catalog",
        )
    retention = retention or at.catalog.config.retention
    reach = Reachability(rev=at.rev, now=now, retention=retention)
    timelines, reach.warnings = tag_timelines(at)
    seconds = now.timestamp()
    kept: dict[Position, list[str]] = {}
    for tag, changes in sorted(timelines.items()):
        name, _, tag_name = tag.rpartition(":")
        key = alias_key(name, tag_name)
        last = changes[-1]
        deleted = last.position is None and _deleted(at.catalog, tag)
        if last.retired:
            reach.dead_aliases[key] = f"{tag} is retired"
        elif deleted:
            reach.dead_aliases[key] = f"{tag} was deleted"
        else:
            reach.live_aliases[key] = tag
        for verdict in judge(tag, changes, retention, seconds, deleted=deleted):
            reach.verdicts.append(verdict)
            if verdict.kept:
                kept.setdefault(verdict.position, []).append(f"{tag}: {verdict.why}")
    blobs = BlobReader(at.top)
    cache = lock_bytes if lock_bytes is not None else {}
    try:
        for position, whys in kept.items():
            for platform, req_id, full_id in position.envs:
                reach.env_keys.setdefault(env_record_key(platform, req_id, full_id),
                                          set()).update(whys)
            reach.lock_keys.setdefault(lock_key(position.lock_sha256), set()).update(whys)
            data = cache.get(position.lock_sha256)
            if data is None:
                data = blobs.read(f"{position.rev}:{position.lock_path}")
                if data is None or sha256_bytes(data) != position.lock_sha256:
                    raise CatalogError(
                        f"{position.lock_path} at {position.rev[:12]} is missing or does not "
                        f"match its meta's lock_sha256 {position.lock_sha256}",
                        file=position.lock_path,
                        tag=position.alias,
                        rule="unreadable-lock",
                        fix="gc cannot tell which packages this kept lock needs; repair the "
                        "history or pass --rev at a sound commit",
                    )
                cache[position.lock_sha256] = data
            lock = read_lock(data, file=position.lock_path)
            for package in lock.packages:
                if not package.sha256:
                    continue  # policy refuses such locks; nothing content-addressed to keep
                pkg = package_key(package.sha256, package.filename)
                reach.package_keys.setdefault(pkg, set()).update(whys)
    finally:
        blobs.close()
    return reach


def _deleted(tip: Catalog, tag: str) -> bool:
    """Whether ``name:tag`` is absent from the tip (pending tags still exist)."""
    from envctl.names import parse_alias

    alias = parse_alias(tag)
    try:
        return alias.tag not in tip.env(alias.name).tags
    except EnvctlError:
        return not tip.has_env(alias.name)
