"""What changed between two revisions of a catalog, tag by tag, with package diffs.

Shared by ``envctl diff --rev A --rev B`` and ``envctl pr-summary``. Only environments
whose env file or locks differ are read (from ``git diff --name-only`` when both sides
are in the same repository), so the cost follows the change, not the catalog.

One :class:`TagChange` per changed tag, the first that applies of:

- ``removed``; ``added`` (a new tag: a concrete tag is compared with the tag it was
  bumped from, see :func:`~envctl.report.sides.predecessor`);
- ``moved`` (a pointer: the old target's lock against the new target's);
- ``retired``; ``respecified`` (its spec changed: a rolling tag, or a pending tag
  being fixed; ``envctl check`` says whether that is allowed);
- ``relocked`` (a new lock for a tag that had one: a rolling tag re-resolved);
- ``locked`` (a pending tag got its first lock).

JSON shape of :meth:`CatalogDiff.to_dict` (keys always present, in this order)::

    {"old": "main (0a1b2c3d4e5f)", "new": "work tree",
     "envs_added": ["team/new"], "envs_removed": [],
     "changes": [{"alias": "team/app:stable", "env": "team/app", "tag": "stable",
                  "change": "added" | "removed" | "moved" | "retired" | "respecified"
                            | "relocked" | "locked",
                  "kind": "immutable" | "pointer" | "rolling",
                  "state": "pending" | "frozen" | "retired" | "rolling" | "pointer" | null,
                  "old_target": "v1" | null, "new_target": "v2" | null,
                  "compared_with": "team/app:v1" | null,
                  "requested": {"added": [...], "removed": [...]} | null,
                  "packages": ENV_DIFF | null,          # see envctl.report.diff
                  "note": str | null,
                  "provisional": bool}],                # lock resolved, not committed
     "errors": ["envs/x.yaml at main: ..."]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from envctl.catalog import ENVS_DIR, LOCKS_DIR, Catalog, GitSource, WorkTreeSource
from envctl.errors import EnvctlError
from envctl.names import (
    ENV_FILE_SUFFIX,
    LOCK_FILE_SUFFIX,
    META_FILE_SUFFIX,
    Alias,
    EnvName,
    env_name_from_path,
    parse_env_name,
)
from envctl.report.diff import EnvDiff, diff_locks
from envctl.report.sides import lock_of, predecessor
from envctl.spec import ConcreteTag, EnvFile, PointerTag, base_alias

__all__ = ["CatalogDiff", "RequestedDiff", "TagChange", "catalog_diff", "changed_env_names"]

#: ``compared_with`` when a tag's new lock is compared with its own previous one.
PREVIOUS_LOCK = "previous lock"

ChangeKind = Literal["added", "removed", "moved", "retired", "respecified", "relocked", "locked"]


@dataclass(frozen=True)
class RequestedDiff:
    """Requested items (``conda::numpy >=1.26``, ``pypi::requests==2.32.3``,
    ``platform::osx-arm64``...) that one spec has and the other has not."""

    added: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": list(self.added), "removed": list(self.removed)}


@dataclass(frozen=True)
class TagChange:
    alias: Alias
    change: ChangeKind
    kind: Literal["immutable", "pointer", "rolling"]
    state: str | None = None
    old_target: str | None = None
    new_target: str | None = None
    compared_with: str | None = None
    requested: RequestedDiff | None = None
    packages: EnvDiff | None = None
    note: str | None = None
    #: Its lock is not committed: a CI job resolved it in the work tree (PR dry run).
    provisional: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": str(self.alias),
            "env": str(self.alias.name),
            "tag": self.alias.tag,
            "change": self.change,
            "kind": self.kind,
            "state": self.state,
            "old_target": self.old_target,
            "new_target": self.new_target,
            "compared_with": self.compared_with,
            "requested": self.requested.to_dict() if self.requested is not None else None,
            "packages": self.packages.to_dict() if self.packages is not None else None,
            "note": self.note,
            "provisional": self.provisional,
        }


@dataclass
class CatalogDiff:
    old: str
    new: str
    envs_added: list[str] = field(default_factory=list)
    envs_removed: list[str] = field(default_factory=list)
    changes: list[TagChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "envs_added": list(self.envs_added),
            "envs_removed": list(self.envs_removed),
            "changes": [c.to_dict() for c in self.changes],
            "errors": list(self.errors),
        }


# -- which environments changed ---------------------------------------------------------------


def _name_of(path: str) -> EnvName | None:
    """The environment an ``envs/`` or ``locks/`` path belongs to (None: not one)."""
    try:
        if path.startswith(ENVS_DIR + "/") and path.endswith(ENV_FILE_SUFFIX):
            return env_name_from_path(path)
        if path.startswith(LOCKS_DIR + "/") and path.endswith((LOCK_FILE_SUFFIX,
                                                                META_FILE_SUFFIX)):
            return parse_env_name(path[len(LOCKS_DIR) + 1 :].rsplit("/", 1)[0])
    except EnvctlError:
        return None
    return None


def changed_env_names(old: Catalog, new: Catalog) -> list[EnvName]:
    """Environments whose file or locks differ between the two catalogs."""
    from envctl.git import run_git

    a, b = old.source, new.source
    paths: list[str]
    if isinstance(a, GitSource) and isinstance(b, GitSource) and a.repo == b.repo \
            and a.subdir == b.subdir:
        out = run_git(a.repo, ["diff", "--name-only", "-z", "--no-renames", a.rev, b.rev, "--",
                               a.subdir + ENVS_DIR, a.subdir + LOCKS_DIR]).stdout
        cut = len(a.subdir)
        paths = [p[cut:] for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
    elif isinstance(a, GitSource) and isinstance(b, WorkTreeSource):
        # ``-C root`` with --relative: paths come relative to the catalog folder.
        tracked = run_git(b.root, ["diff", "--name-only", "-z", "--relative", "--no-renames",
                                   a.rev, "--", ENVS_DIR, LOCKS_DIR]).stdout
        untracked = run_git(b.root, ["ls-files", "-z", "--others", "--exclude-standard",
                                     "--", ENVS_DIR, LOCKS_DIR]).stdout
        paths = [p for p in (tracked + b"\0" + untracked).decode("utf-8", "surrogateescape")
                 .split("\0") if p]
    else:
        paths = sorted({e.path for s in (a, b) for prefix in (ENVS_DIR, LOCKS_DIR)
                        for e in s.entries(prefix) if e.kind == "file"
                        and a.read(e.path) != b.read(e.path)})
    return sorted({n for n in map(_name_of, paths) if n is not None})


# -- the diff ---------------------------------------------------------------------------------


def _env(catalog: Catalog, name: EnvName, errors: list[str]) -> EnvFile | None:
    if not catalog.has_env(name):
        return None
    try:
        return catalog.env(name)
    except EnvctlError as exc:
        errors.append(f"{name.env_file} in {catalog.source.label}: {exc.message}")
        return None


def catalog_diff(old: Catalog, new: Catalog, *, old_label: str, new_label: str,
                 names: list[EnvName] | None = None) -> CatalogDiff:
    """Every tag change between ``old`` and ``new`` (only ``names`` when given)."""
    result = CatalogDiff(old_label, new_label)
    for name in names if names is not None else changed_env_names(old, new):
        before, after = _env(old, name, result.errors), _env(new, name, result.errors)
        if (before is None and old.has_env(name)) or (after is None and new.has_env(name)):
            continue  # unreadable on a side (reported): its tags did not really vanish
        if before is None and after is None:
            continue
        if before is None and not old.has_env(name):
            result.envs_added.append(str(name))
        if after is None and not new.has_env(name):
            result.envs_removed.append(str(name))
        old_tags = dict(before.tags) if before else {}
        new_tags = dict(after.tags) if after else {}
        for tag in [*new_tags, *(t for t in old_tags if t not in new_tags)]:
            change = _tag_change(old, new, Alias(name, tag), old_tags.get(tag),
                                 new_tags.get(tag), result.errors)
            if change is not None:
                result.changes.append(change)
    return result


def _kind(catalog: Catalog, tag: str, spec: object) -> Literal["immutable", "pointer",
                                                                "rolling"]:
    if isinstance(spec, PointerTag):
        return "pointer"
    return "rolling" if catalog.is_mutable(tag) else "immutable"


def _state(catalog: Catalog, alias: Alias) -> str | None:
    try:
        return catalog.info(alias).state
    except EnvctlError:
        return None


def _tag_change(old: Catalog, new: Catalog, alias: Alias, a: object, b: object,
                errors: list[str]) -> TagChange | None:
    try:
        return _tag_change_unsafe(old, new, alias, a, b)
    except EnvctlError as exc:
        # One broken tag must not hide the rest of a PR's changes.
        errors.append(f"{alias}: {exc.message}")
        return None


def _tag_change_unsafe(old: Catalog, new: Catalog, alias: Alias, a: object,
                       b: object) -> TagChange | None:
    if b is None:
        return TagChange(alias, "removed", _kind(old, alias.tag, a), state=None,
                         old_target=a.points_to if isinstance(a, PointerTag) else None)
    kind = _kind(new, alias.tag, b)
    state = _state(new, alias)
    if isinstance(b, PointerTag):
        old_target = a.points_to if isinstance(a, PointerTag) else None
        if a is not None and old_target == b.points_to:
            return None
        packages = None
        note = None
        if old_target is not None:
            packages, note = _try_diff(old, Alias(alias.name, old_target),
                                       new, Alias(alias.name, b.points_to))
        if a is not None and old_target is None:  # a concrete tag became a pointer
            return TagChange(alias, "respecified", kind, state, new_target=b.points_to,
                             note=f"now points to {b.points_to}")
        return TagChange(alias, "added" if a is None else "moved", kind, state,
                         old_target=old_target, new_target=b.points_to,
                         compared_with=str(Alias(alias.name, old_target)) if old_target
                         else None, packages=packages, note=note)
    assert isinstance(b, ConcreteTag)
    if a is None or isinstance(a, PointerTag):
        return _added(new, alias, b, kind, state, was_pointer=a is not None)
    old_lock, new_lock = old.lock_bytes(alias), new.lock_bytes(alias)
    spec_changed = a != b
    lock_changed = old_lock != new_lock
    if not spec_changed and not lock_changed:
        return None
    requested = _requested(a, b) if spec_changed else None
    if spec_changed and b.retired and not a.retired:
        return TagChange(alias, "retired", kind, state, requested=requested,
                         note=b.retired)
    if lock_changed and old_lock is not None and new_lock is not None:
        packages, note = _try_diff(old, alias, new, alias)
        change: ChangeKind = "respecified" if spec_changed else "relocked"
        return TagChange(alias, change, kind, state, compared_with=PREVIOUS_LOCK,
                         requested=requested, packages=packages, note=note)
    if spec_changed:
        if state == "frozen":
            note = "frozen: its lock cannot change; add a new tag instead"
        elif new_lock is None:
            note = "pending: packages are known once CI locks it"
        else:
            note = "its lock is from the old spec until CI resolves it again"
        return TagChange(alias, "respecified", kind, state, requested=requested, note=note)
    if new_lock is None:  # the lock was deleted; the check reports it
        return TagChange(alias, "relocked", kind, state, note="its lock was removed")
    base = predecessor(new, alias)
    if base is None:
        return TagChange(alias, "locked", kind, state, note="first lock")
    packages, note = _try_diff(new, base, new, alias)
    return TagChange(alias, "locked", kind, state, compared_with=str(base), packages=packages,
                     note=note)


def _added(new: Catalog, alias: Alias, spec: ConcreteTag, kind: Literal["immutable",
           "pointer", "rolling"], state: str | None, *, was_pointer: bool) -> TagChange:
    base = predecessor(new, alias)
    change: ChangeKind = "respecified" if was_pointer else "added"
    if base is None:
        return TagChange(alias, change, kind, state, requested=_requested(None, spec),
                         note=_pending_note(new, alias))
    packages, note = (None, _pending_note(new, alias))
    if new.lock_bytes(alias) is not None:
        packages, note = _try_diff(new, base, new, alias)
    extends = spec.extends is not None and base_alias(alias, spec.extends) == base
    requested = (_requested(None, spec) if extends
                 else _requested_between(new, base, new, alias))
    return TagChange(alias, change, kind, state, compared_with=str(base), requested=requested,
                     packages=packages, note=note)


def _pending_note(catalog: Catalog, alias: Alias) -> str | None:
    if catalog.lock_bytes(alias) is None:
        return "pending: packages are known once CI locks it"
    return None


def _try_diff(old: Catalog, a: Alias, new: Catalog, b: Alias) -> tuple[EnvDiff | None,
                                                                       str | None]:
    """The package diff of two tags' locks, or why there is none (a side is pending)."""
    try:
        old_lock = lock_of(old, a)
    except EnvctlError:
        old_lock = None
    try:
        new_lock = lock_of(new, b)
    except EnvctlError:
        new_lock = None
    if new_lock is None:
        return None, f"{b.tag} is pending: packages are known once CI locks it"
    if old_lock is None:
        return None, f"{a} has no lock to compare with"
    return diff_locks(old_lock, new_lock, old_label=str(a), new_label=str(b)), None


# -- requested items --------------------------------------------------------------------------


def _norm_conda(text: str) -> str:
    from envctl.spec import normalize_conda_spec

    try:
        return normalize_conda_spec(text)
    except (EnvctlError, ValueError):
        return text


def _norm_pypi(text: str) -> str:
    from envctl.spec import normalize_pypi_requirement

    try:
        return normalize_pypi_requirement(text)
    except (EnvctlError, ValueError):
        return text


def requested_items(spec: ConcreteTag | None) -> list[str]:
    """What a tag's own spec asks for, one comparable string per item."""
    if spec is None:
        return []
    items = [f"conda::{_norm_conda(d)}" for d in spec.dependencies]
    items += [f"pypi::{_norm_pypi(r)}" for r in spec.pypi]
    for platform, target in sorted(spec.target.items()):
        items += [f"conda::{_norm_conda(d)} ({platform})" for d in target.dependencies]
        items += [f"pypi::{_norm_pypi(r)} ({platform})" for r in target.pypi]
    items += [f"channel::{c}" for c in spec.channels or []]
    items += [f"platform::{p}" for p in spec.platforms or []]
    for platform, packages in sorted(spec.virtual_packages.items()):
        items += [f"virtual::{name}={version} ({platform})"
                  for name, version in sorted(packages.items())]
    return items


def _requested(a: ConcreteTag | None, b: ConcreteTag | None) -> RequestedDiff:
    before, after = requested_items(a), requested_items(b)
    return RequestedDiff(added=[i for i in after if i not in before],
                         removed=[i for i in before if i not in after])


def _requested_between(old: Catalog, a: Alias, new: Catalog, b: Alias) -> RequestedDiff | None:
    try:
        sa, sb = old.tag(a), new.tag(b)
    except EnvctlError:
        return None
    if not isinstance(sa, ConcreteTag) or not isinstance(sb, ConcreteTag):
        return None
    return _requested(sa, sb)
