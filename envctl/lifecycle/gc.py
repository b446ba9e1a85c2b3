"""Garbage collection of the artifact store: mark, then sweep after a grace period.

Each run:

1. **Live set.** Roots are what :mod:`envctl.lifecycle.reachability` keeps from the
   catalog's history, every alias record that is not dead (retired or deleted tags),
   and the environments of run records younger than ``keep_days``. Closure goes
   through the store's own records: a live alias keeps the environment records it
   names, a live environment record keeps its lock and packages.
2. **Mark.** Every other object of the four kinds (``aliases/``, ``envs/``, ``locks/``,
   ``pkgs/``) is garbage; the run writes them to a mark (``gc/marks/<time>-<id>.json``)
   with its time. Nothing else in the store (``runs/``, ``gc/``, stray files) is touched.
3. **Sweep.** A garbage object is deleted only if it was garbage in the newest mark
   that is older than the grace period *and* in every mark since (continuously
   unreferenced), it is garbage now, and its bytes were written before that mark
   (so an upload in flight, or an object re-uploaded since, is never collected).
   Any surviving record — live, or garbage still waiting out its grace (a CI upload
   whose commit back has not landed yet) — spares what it names.
4. **Order.** Aliases, then environment records, then locks, then packages; each phase
   re-lists the records of the phase before, so one written meanwhile spares what it
   names. A crash between any two deletions leaves no record pointing at a missing
   object: what a record names goes only after the record.

Marks older than the one a run used are removed after a successful sweep. Run one gc
at a time (a scheduled CI job): two concurrent runs are safe for the store's content,
but may each remove marks the other is using, which only delays collection.

What no grace period can see: a CI run that *reuses* an object already in the store
(write-once puts of the same bytes change nothing, so its age stays old) while that
object is garbage, e.g. a rolling tag re-resolving to an environment gc dropped. If gc
deletes it between CI's upload step and its commit back, the commit names a missing
object; CI's own upload check catches it when it writes the record after the delete,
and ``envctl verify`` reports it in any case. Running gc and CI in one concurrency
group closes the window.

The functions return reports and raise :class:`~envctl.errors.EnvctlError`; nothing
here prints.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from envctl.errors import EnvctlError, StoreError
from envctl.lifecycle.reachability import DAY, Reachability
from envctl.store.base import (
    LOCK_SUFFIX,
    MissingObjectError,
    ObjectInfo,
    Store,
    env_record_key,
    lock_key,
    package_key,
)

Kind = Literal["alias", "env", "lock", "package"]
PHASES: tuple[Kind, ...] = ("alias", "env", "lock", "package")
PREFIXES: dict[Kind, str] = {"alias": "aliases/", "env": "envs/", "lock": "locks/",
                             "package": "pkgs/"}
MARKS_PREFIX = "gc/marks/"
RUNS_PREFIX = "runs/"
MARK_VERSION = "1"
HOUR = 3600.0
WORKERS = 8

_ENV_KEY = re.compile(r"envs/[a-z0-9-]+/[0-9a-f]{40}/[0-9a-f]{40}\.json")
_LOCK_KEY = re.compile(r"locks/[0-9a-f]{64}" + re.escape(LOCK_SUFFIX))
_PKG_KEY = re.compile(r"pkgs/[0-9a-f]{64}/[^/]+")


def kind_of(key: str) -> Kind | None:
    """Which of gc's four kinds ``key`` is; None for anything gc must leave alone."""
    if key.startswith("aliases/") and key.endswith(".json"):
        return "alias"
    if _ENV_KEY.fullmatch(key):
        return "env"
    if _LOCK_KEY.fullmatch(key):
        return "lock"
    if _PKG_KEY.fullmatch(key):
        return "package"
    return None


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Garbage:
    """An unreferenced object: what gc marks, and deletes once it is ripe."""

    key: str
    kind: Kind
    size: int
    modified: float

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "size": self.size,
                "modified": iso(self.modified)}


@dataclass(frozen=True)
class Mark:
    key: str
    created_at: float
    rev: str | None
    garbage: frozenset[str]


@dataclass
class GcReport:
    rev: str
    store: str
    now: datetime
    dry_run: bool
    grace_hours: float
    objects: int = 0  # objects of the four kinds in the store
    bytes: int = 0
    garbage: list[Garbage] = field(default_factory=list)  # this run's mark
    deletable: list[Garbage] = field(default_factory=list)  # ripe: deleted unless dry run
    deleted: list[Garbage] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # garbage key -> why not yet
    spared: dict[str, str] = field(default_factory=dict)  # ripe key -> which record names it
    mark_key: str | None = None
    marks_pruned: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reach: Reachability | None = None

    @property
    def garbage_bytes(self) -> int:
        return sum(g.size for g in self.garbage)

    @property
    def deletable_bytes(self) -> int:
        return sum(g.size for g in self.deletable)

    @property
    def deleted_bytes(self) -> int:
        return sum(g.size for g in self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rev": self.rev,
            "store": self.store,
            "now": self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dry_run": self.dry_run,
            "grace_hours": self.grace_hours,
            "retention": self.reach.retention.model_dump() if self.reach else None,
            "objects": self.objects,
            "bytes": self.bytes,
            "garbage": [g.to_dict() | {"waiting": self.waiting.get(g.key),
                                       "spared": self.spared.get(g.key)}
                        for g in self.garbage],
            "garbage_bytes": self.garbage_bytes,
            "deletable": [g.key for g in self.deletable],
            "deletable_bytes": self.deletable_bytes,
            "deleted": [g.key for g in self.deleted],
            "deleted_bytes": self.deleted_bytes,
            "mark": self.mark_key,
            "marks_pruned": self.marks_pruned,
            "positions": [v.to_dict() for v in self.reach.verdicts] if self.reach else [],
            "warnings": self.warnings,
        }


# -- records and marks ------------------------------------------------------------------


def _refs_of(store: Store, key: str, kind: str) -> set[str]:
    """The keys a record names (an alias: env records; an env: lock and packages)."""
    from envctl.store import records

    data = store.get_bytes(key)
    where = store.describe(key)
    if kind == "alias":
        alias = records.load_alias_record(data, where=where)
        return {env_record_key(p, t.req_id, t.full_id) for p, t in alias.platforms.items()}
    if kind == "env":
        env = records.load_env_record(data, where=where)
        return {lock_key(env.lock_sha256)} | {
            package_key(p.sha256, p.filename) for p in env.packages
        }
    from envctl.runs import RunRecord  # kind == "run"

    try:
        run = RunRecord.model_validate(json.loads(data))
    except ValueError as exc:  # JSON and pydantic errors are ValueErrors
        raise StoreError(f"not a run record: {exc}", file=where, rule="invalid-record") from None
    return {env_record_key(run.platform, run.req_id, run.full_id)}


def read_refs(
    store: Store, keys: Iterable[str], kind: str, *, workers: int = WORKERS
) -> tuple[dict[str, set[str]], dict[str, str]]:
    """``(refs, errors)`` for many records, read in parallel. A record deleted meanwhile
    names nothing; one that cannot be read is an error (its references are unknown)."""
    refs: dict[str, set[str]] = {}
    errors: dict[str, str] = {}
    keys = list(keys)
    if not keys:
        return refs, errors

    def one(key: str) -> tuple[str, set[str] | None, str | None]:
        try:
            return key, _refs_of(store, key, kind), None
        except MissingObjectError:
            return key, set(), None
        except EnvctlError as exc:
            return key, None, exc.message

    with ThreadPoolExecutor(max_workers=min(workers, len(keys))) as pool:
        for key, found, error in pool.map(one, keys):
            if found is None:
                errors[key] = error or "unreadable"
            else:
                refs[key] = found
    return refs, errors


def load_marks(store: Store) -> tuple[list[Mark], list[str]]:
    """Every mark in the store, oldest first, and problems with unreadable ones."""
    marks: list[Mark] = []
    problems: list[str] = []
    for key in store.list(MARKS_PREFIX):
        try:
            raw = json.loads(store.get_bytes(key))
            if raw.get("version") != MARK_VERSION:
                raise ValueError(f"mark version {raw.get('version')!r} is not {MARK_VERSION!r}")
            created = datetime.fromisoformat(str(raw["created_at"]).replace("Z", "+00:00"))
            marks.append(Mark(key, created.timestamp(), raw.get("rev"),
                              frozenset(raw["garbage"])))
        except MissingObjectError:
            continue
        except (EnvctlError, ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(
                f"gc mark {store.describe(key)} is unreadable ({exc}); nothing is deleted "
                "while it is there: delete it by hand (it only delays collection)"
            )
    marks.sort(key=lambda m: (m.created_at, m.key))
    return marks, problems


def _mark_bytes(garbage: list[Garbage], now: float, rev: str) -> bytes:
    data = {
        "version": MARK_VERSION,
        # Full precision: an object written in the same second as the mark is not older.
        "created_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        "rev": rev,
        "garbage": {g.key: {"size": g.size, "modified": iso(g.modified)} for g in garbage},
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _write_mark(store: Store, garbage: list[Garbage], now: float, rev: str) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    key = f"{MARKS_PREFIX}{stamp}-{uuid.uuid4().hex[:12]}.json"
    store.put_bytes(key, _mark_bytes(garbage, now, rev))
    return key


# -- planning ---------------------------------------------------------------------------


@dataclass
class _Plan:
    inventory: dict[str, ObjectInfo]
    kinds: dict[str, Kind]
    refs: dict[str, set[str]]  # record key -> what it names
    unreadable: dict[str, str]
    garbage: list[Garbage]
    sweep: set[str]


def _inventory(store: Store) -> tuple[dict[str, ObjectInfo], dict[str, Kind]]:
    inventory: dict[str, ObjectInfo] = {}
    kinds: dict[str, Kind] = {}
    for kind in PHASES:
        for info in store.list_info(PREFIXES[kind]):
            if kind_of(info.key) == kind:
                inventory[info.key] = info
                kinds[info.key] = kind
    return inventory, kinds


def _run_roots(store: Store, now: float, keep_days: float, report: GcReport) -> set[str]:
    """Environments of run records younger than ``keep_days`` (pathspecs are aliases)."""
    young = [i.key for i in store.list_info(RUNS_PREFIX)
             if i.key.endswith(".json") and now - i.modified < keep_days * DAY]
    refs, errors = read_refs(store, young, "run")
    for key, error in sorted(errors.items()):
        report.warnings.append(f"run record {key} is unreadable ({error}); ignored")
    return set().union(*refs.values()) if refs else set()


def _ripeness(
    garbage: list[Garbage], marks: list[Mark], cutoff: float, ripe_from: float
) -> tuple[set[str], dict[str, str], Mark | None]:
    """Which garbage is ripe (see the module docstring), why the rest waits, and the mark
    that made it ripe. ``ripe_from``: when an object first marked now becomes ripe."""
    ripe_mark = next((m for m in reversed(marks) if m.created_at <= cutoff), None)
    later = [m for m in marks if ripe_mark is not None and m.created_at > ripe_mark.created_at]
    ripe: set[str] = set()
    waiting: dict[str, str] = {}
    for item in garbage:
        if ripe_mark is None or item.key not in ripe_mark.garbage:
            waiting[item.key] = f"first marked now: deletable by a run from {iso(ripe_from)}"
        elif any(item.key not in m.garbage for m in later):
            waiting[item.key] = "referenced again after it was marked"
        elif item.modified > ripe_mark.created_at:
            # The mark is older than the grace period, so this also means "written less
            # than a grace period ago": a re-upload since the mark is never collected.
            waiting[item.key] = f"written at {iso(item.modified)}, after it was marked"
        else:
            ripe.add(item.key)
    return ripe, waiting, ripe_mark


def _spare(plan: _Plan, report: GcReport, *, blocked: set[Kind]) -> None:
    """Take out of the sweep whatever a surviving record names, until nothing changes."""
    sweep = plan.sweep
    for key in sorted(k for k in sweep if plan.kinds[k] in blocked):
        sweep.discard(key)
        report.spared[key] = "an unreadable record might name it"
    changed = True
    while changed:
        changed = False
        for key, named in plan.refs.items():
            if key in sweep:
                continue  # a record that goes protects nothing
            for target in sorted(named & sweep):
                sweep.discard(target)
                report.spared[target] = f"named by {key}"
                changed = True


def plan_gc(
    store: Store, reach: Reachability, *, now: datetime, grace_hours: float, report: GcReport
) -> _Plan:
    """Work out the live set, the garbage and what is ripe; fills ``report``."""
    t_now = now.timestamp()
    grace = grace_hours * HOUR
    inventory, kinds = _inventory(store)
    report.objects, report.bytes = len(inventory), sum(i.size for i in inventory.values())
    marks, mark_problems = load_marks(store)
    report.warnings.extend(mark_problems)

    aliases = sorted(k for k, kind in kinds.items() if kind == "alias")
    envs = sorted(k for k, kind in kinds.items() if kind == "env")
    refs, unreadable = read_refs(store, aliases, "alias")
    env_refs, env_unreadable = read_refs(store, envs, "env")
    refs.update(env_refs)
    unreadable.update(env_unreadable)
    for key, error in sorted(unreadable.items()):
        report.warnings.append(f"{store.describe(key)} is unreadable: {error}")

    # The live set: the roots, then closure through live records.
    live_aliases = {k for k in aliases if k not in reach.dead_aliases}
    env_roots = set(reach.env_keys) | _run_roots(store, t_now, reach.retention.keep_days, report)
    for key in live_aliases:
        env_roots |= refs.get(key, set())
    live_envs = {k for k in envs if k in env_roots}
    content_roots = set(reach.lock_keys) | set(reach.package_keys)
    for key in live_envs:
        content_roots |= refs.get(key, set())
    live = live_aliases | live_envs | content_roots
    garbage = [Garbage(k, kinds[k], inventory[k].size, inventory[k].modified)
               for k in sorted(inventory) if k not in live]

    ripe, report.waiting, ripe_mark = _ripeness(garbage, marks, t_now - grace, t_now + grace)
    if mark_problems:
        for key in ripe:
            report.waiting[key] = "an unreadable gc mark blocks deletion"
        ripe = set()
    plan = _Plan(inventory, kinds, refs, unreadable, garbage, ripe)
    # A surviving record that cannot be read may name anything of the kinds after it.
    blocked: set[Kind] = set()
    if any(k in unreadable and k not in ripe for k in aliases):
        blocked |= {"env", "lock", "package"}
    if any(k in unreadable and k not in ripe for k in envs):
        blocked |= {"lock", "package"}
    _spare(plan, report, blocked=blocked)
    report.garbage = garbage
    report.deletable = [g for g in garbage if g.key in plan.sweep]
    if ripe_mark is not None:
        report.marks_pruned = [m.key for m in marks if m.created_at < ripe_mark.created_at]
    return plan


# -- sweeping ---------------------------------------------------------------------------

Progress = Callable[[int, int, str], None]


def _protect_new_records(store: Store, kind: Kind, plan: _Plan, report: GcReport) -> bool:
    """Re-list one kind of record; any written since planning spares what it names.

    Returns False when such a record cannot be read (then the later phases must stop).
    """
    fresh = [info.key for info in store.list_info(PREFIXES[kind])
             if kind_of(info.key) == kind and (
                 info.key not in plan.inventory
                 or info.modified != plan.inventory[info.key].modified)]
    refs, errors = read_refs(store, fresh, kind)
    for key, error in errors.items():
        report.warnings.append(f"{store.describe(key)}, written during gc, is unreadable "
                               f"({error}); gc stopped before deleting what it might name")
    for key, named in refs.items():
        plan.refs[key] = named
        for target in sorted(named & plan.sweep):
            plan.sweep.discard(target)
            report.spared[target] = f"named by {key}, written during gc"
    return not errors


def _delete_all(store: Store, keys: list[str], on_done: Callable[[str], None],
                workers: int) -> None:
    """Delete ``keys`` in parallel; on the first failure, start no more and re-raise."""
    if not keys:
        return
    pool = ThreadPoolExecutor(max_workers=min(workers, len(keys)))
    try:
        futures = {pool.submit(store.delete, key): key for key in keys}
        for future in as_completed(futures):
            future.result()
            on_done(futures[future])
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def sweep(store: Store, plan: _Plan, report: GcReport, *, progress: Progress | None = None,
          workers: int = WORKERS) -> None:
    """Delete the ripe garbage, phase by phase (records before what they name)."""
    by_key = {g.key: g for g in plan.garbage}
    lock = threading.Lock()
    total = len(plan.sweep)

    def done(key: str) -> None:
        with lock:
            report.deleted.append(by_key[key])
            count = len(report.deleted)
        if progress is not None:
            progress(count, total, key)

    try:
        for phase in PHASES:
            if phase == "env" and not _protect_new_records(store, "alias", plan, report):
                break
            if phase in ("lock", "package") and not _protect_new_records(
                store, "env", plan, report
            ):
                break
            keys = sorted(k for k in plan.sweep if plan.kinds[k] == phase)
            _delete_all(store, keys, done, workers)
    except EnvctlError as exc:
        raise StoreError(
            f"gc stopped after deleting {len(report.deleted)} of {total} objects: {exc.message}",
            file=exc.file,
            rule="gc-interrupted",
            fix="nothing still referenced was deleted (records go before what they name); "
            "fix the cause and run envctl gc again",
        ) from exc
    report.deleted.sort(key=lambda g: g.key)


def collect(
    store: Store,
    reach: Reachability,
    *,
    now: datetime,
    grace_hours: float,
    dry_run: bool = False,
    progress: Progress | None = None,
    workers: int = WORKERS,
) -> GcReport:
    """One gc run: plan, write this run's mark, sweep what is ripe, prune old marks.

    ``dry_run`` writes and deletes nothing; the report says what would go.
    """
    report = GcReport(rev=reach.rev, store=store.url, now=now, dry_run=dry_run,
                      grace_hours=grace_hours, reach=reach)
    report.warnings.extend(reach.warnings)
    plan = plan_gc(store, reach, now=now, grace_hours=grace_hours, report=report)
    if dry_run:
        report.marks_pruned = []
        return report
    # The mark goes first: a crash during the sweep still leaves this run's observation.
    report.mark_key = _write_mark(store, plan.garbage, now.timestamp(), reach.rev)
    sweep(store, plan, report, progress=progress, workers=workers)
    for key in report.marks_pruned:
        store.delete(key)
    return report
